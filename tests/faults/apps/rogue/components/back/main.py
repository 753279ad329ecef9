"""A component whose replies break the wire protocol, as a buggy SDK or a hostile process would.

The handlers are ordinary; the transport under the Kit misbehaves on the way
out, chosen by the reply's content (the mode the request asked for):

* ``never``: the handler never returns, so nothing is ever answered;
* ``twice``: the reply is sent, then a second, different one;
* ``garbage``: random bytes instead of an event;
* ``empty``: an empty message;
* ``huge``: 6 MiB of bytes, more than the 5 MiB event limit;
* ``bad-error``: an ``io.kubefox.error`` event whose content is not an error document;
* anything else: answered normally.
"""

import asyncio
import os
import signal
import sys

from kubefox.core import codec
from kubefox.core.events import TYPE_ERROR
from kubefox.kit import Kit, KitSettings, Kontext, Receiver, Response, Transport

kit = Kit()
HUGE = 6 * 1024 * 1024


async def _misbehave(k: Kontext, mode: str) -> Response:
    if mode == "never":
        await asyncio.sleep(3600)
    return k.text(mode)


@kit.route("Path(`/{{.Vars.subPath}}/back/{mode}`)")
async def direct(k: Kontext) -> Response:
    """Called by httpsrv: the mode is in the path."""
    return await _misbehave(k, k.param("mode") or "ok")


@kit.default
async def called(k: Kontext) -> Response:
    """Called by another component: the mode is in the query."""
    return await _misbehave(k, k.query("mode") or "ok")


class Misbehaving:
    """The Kit's NATS transport, except for what it sends as replies."""

    def __init__(self, inner: Transport) -> None:
        self._inner = inner

    async def respond(self, reply: str, data: bytes, *, alone: bool = False) -> None:
        event = codec.decode(data)
        mode = event.content.decode(errors="replace")
        if mode == "twice":
            await self._inner.respond(reply, data)
            second = codec.encode(event.reply(source=event.source, content=b"second"))
            await self._inner.respond(reply, second)
        elif mode == "garbage":
            await self._inner.respond(reply, os.urandom(512))
        elif mode == "empty":
            await self._inner.respond(reply, b"")
        elif mode == "huge":
            await self._inner.respond(reply, b"\x00" * HUGE)
        elif mode == "bad-error":
            error = event.reply(source=event.source, type=TYPE_ERROR, content=b"{not json")
            await self._inner.respond(reply, codec.encode(error))
        else:
            await self._inner.respond(reply, data)

    async def subscribe(self, subject: str, *, queue: str, receiver: Receiver) -> None:
        await self._inner.subscribe(subject, queue=queue, receiver=receiver)

    async def unsubscribe(self) -> None:
        await self._inner.unsubscribe()

    async def request(self, subject: str, data: bytes, *, timeout: float) -> bytes:  # noqa: ASYNC109
        return await self._inner.request(subject, data, timeout=timeout)

    async def register(self, key: str, record: bytes) -> None:
        await self._inner.register(key, record)

    async def deregister(self, key: str) -> None:
        await self._inner.deregister(key)

    async def wait_disconnected(self) -> None:
        await self._inner.wait_disconnected()

    async def wait_connected(self) -> None:
        await self._inner.wait_connected()

    async def close(self) -> None:
        await self._inner.close()


async def main() -> None:
    """Serve like ``kit.start()`` would, over the misbehaving transport."""
    from kubefox.kit._natsio import connect  # the Kit's own NATS transport, wrapped

    settings = KitSettings.from_environ(os.environ)
    transport = Misbehaving(await connect(settings))
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, kit.stop)
    await kit.run(settings, transport=transport)


if __name__ == "__main__":
    if "--export" in sys.argv:
        kit.start()  # prints the definition and exits
    asyncio.run(main())
