"""A component with one well-behaved route and two that misbehave on purpose."""

import asyncio

from kubefox.kit import Kit, Kontext, Response

kit = Kit()


@kit.route("Path(`/{{.Vars.subPath}}/ok`)")
async def ok(k: Kontext) -> Response:
    """Answer at once."""
    return k.text("ok")


@kit.route("Path(`/{{.Vars.subPath}}/boom`)")
async def boom(k: Kontext) -> Response:
    """Fail with an exception the platform must not leak."""
    raise RuntimeError("secret internal detail")


@kit.route("Path(`/{{.Vars.subPath}}/slow`)")
async def slow(k: Kontext) -> Response:
    """Take far longer than any deadline."""
    await asyncio.sleep(3600)
    return k.text("too late")


if __name__ == "__main__":
    kit.start()
