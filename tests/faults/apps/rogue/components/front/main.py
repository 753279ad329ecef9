"""A well-behaved component that passes on whatever its rogue dependency answers."""

from kubefox.kit import Kit, Kontext, Response

kit = Kit()
back = kit.component("back")


@kit.route("Path(`/{{.Vars.subPath}}/front/{mode}`)")
async def relay(k: Kontext) -> Response:
    """Ask the back component to misbehave in ``mode`` and pass its reply on."""
    reply = await k.request(back, query={"mode": k.param("mode") or "ok"})
    return k.respond(reply)


if __name__ == "__main__":
    kit.start()
