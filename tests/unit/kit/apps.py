"""The hello-world components (reference §9.1) built with the Kit, shared by the kit tests."""

from __future__ import annotations

from kubefox.kit import Dependency, Kit, Kontext, Response


def frontend() -> tuple[Kit, Dependency]:
    """The frontend: one route that asks the backend whom to greet."""
    kit = Kit()
    backend = kit.component("backend")

    @kit.route("Path(`/{{.Vars.subPath}}/hello`)")
    async def hello(k: Kontext) -> Response:
        reply = await k.request(backend)
        msg = f"👋 Hello {reply.text}!"
        k.log.info("greeted", msg=msg)
        return k.accepts(
            json={"msg": msg},
            html=(
                f"<html><head><title>Hello KubeFox</title></head><body><h1>{msg}</h1></body></html>"
            ),
            text=msg,
        )

    return kit, backend


def backend() -> Kit:
    """The backend: a default handler answering with the ``who`` env var."""
    kit = Kit()
    who = kit.env_var("who", required=True)

    @kit.default
    async def default(k: Kontext) -> Response:
        return k.text(k.env_str(who) or "World")

    return kit
