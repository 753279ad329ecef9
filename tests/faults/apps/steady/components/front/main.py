"""The steady front: answers with its process id, slowly if asked, or through ``back``."""

import asyncio
import os

from kubefox.kit import Kit, Kontext, Response

kit = Kit()
back = kit.component("back")


@kit.route("Path(`/{{.Vars.subPath}}/ok`)")
async def ok(k: Kontext) -> Response:
    """Answer at once with this process's id."""
    return k.text(f"front {os.getpid()}")


@kit.route("Path(`/{{.Vars.subPath}}/slow`)")
async def slow(k: Kontext) -> Response:
    """Answer after ``ms`` milliseconds (query), with this process's id."""
    await asyncio.sleep(int(k.query("ms") or "1000") / 1000)
    return k.text(f"front {os.getpid()}")


@kit.route("Path(`/{{.Vars.subPath}}/chain`)")
async def chain(k: Kontext) -> Response:
    """Ask ``back`` (through the broker) and answer with both process ids."""
    reply = await k.request(back)
    return k.text(f"front {os.getpid()} {reply.text}")


if __name__ == "__main__":
    kit.start()
