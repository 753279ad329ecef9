"""The Kit's public API under mypy --strict: decorators keep handler types, results are typed.

mypy checks this file with the rest of ``tests``; pytest runs it too, so the
example is also known to work.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, assert_type

from kubefox.kit import (
    Dependency,
    EnvVar,
    EnvVarType,
    Kit,
    KitSettings,
    Kontext,
    KubeFoxError,
    Reply,
    Response,
    Transport,
    Value,
)

kit = Kit()
who = kit.env_var("who", required=True)
count = kit.env_var("count", type=EnvVarType.NUMBER)
backend = kit.component("backend")
hasura = kit.http_adapter("hasura")

assert_type(who, EnvVar)
assert_type(backend, Dependency)
assert_type(hasura, Dependency)


@kit.route("Path(`/{{.Vars.subPath}}/hello`)")
async def hello(k: Kontext) -> Response:
    reply = await k.request(backend)
    assert_type(reply, Reply)
    assert_type(reply.text, str)
    assert_type(reply.status_code, int)
    msg = f"👋 Hello {reply.text}!"
    k.log.info("greeted", msg=msg)
    return k.accepts(json={"msg": msg}, html=f"<h1>{msg}</h1>", text=msg)


@kit.route("PathPrefix(`/{{.Vars.subPath}}/hasura`)")
async def proxy(k: Kontext) -> Response:
    try:
        reply = await k.forward(hasura, path=f"/{k.path_suffix}", timeout=2.0)
    except KubeFoxError as exc:
        return k.text(str(exc), status=int(exc.http_status))
    return k.respond(reply)


@kit.default
async def default(k: Kontext) -> Response:
    assert_type(k.env(who), Value)
    assert_type(k.env_str(count), str)
    assert_type(k.header("Accept"), str | None)
    assert_type(k.query_all("q"), list[str])
    assert_type(k.param("id"), str | None)
    assert_type(k.body, bytes)
    assert_type(k.body_json(), Any)
    assert_type(k.remaining(), float)
    return k.text(k.env_str(who) or "World")


def _decorators_keep_handler_types(k: Kontext) -> None:
    """Decorated handlers keep their own type, not just the Handler bound."""
    coroutine: Coroutine[Any, Any, Response] = hello(k)
    coroutine.close()


async def _not_a_handler(k: Kontext) -> str:
    return "a handler must return a Response"


def _misuse_is_a_type_error() -> None:
    """mypy refuses handlers of the wrong shape (the ignores fail if it stops refusing)."""
    Kit().default(_not_a_handler)  # type: ignore[type-var]
    Kit().route("Path(`/`)")(_not_a_handler)  # type: ignore[type-var]
    kit.env_var("x", type="String")  # type: ignore[arg-type]


async def run_with(transport: Transport, settings: KitSettings) -> None:
    """``run`` takes any Transport; ``stop`` is plain and synchronous."""
    await kit.run(settings, transport=transport)
    kit.stop()


def test_the_typed_example_declares_what_it_uses() -> None:
    """The example above builds a valid definition: two routes, a default, two dependencies."""
    definition = kit.definition()

    assert [r["id"] for r in definition["routes"]] == [0, 1]
    assert definition["defaultHandler"] is True
    assert definition["dependencies"] == {
        "backend": {"type": "KubeFox"},
        "hasura": {"type": "HTTPAdapter"},
    }
    assert definition["envVarSchema"] == {
        "who": {"required": True},
        "count": {"type": "Number", "required": False},
    }
