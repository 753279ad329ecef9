"""The asyncio protocol of one TCP (or TLS) connection: bytes in, back-pressure out.

It owns no state of its own beyond its transport: everything goes straight to
the client, so a message costs one ``data_received`` call for however many
operations the read carried.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from kubefox.natsio.auth import ServerAddress
from kubefox.natsio.errors import ConnectionClosedError

if TYPE_CHECKING:
    from kubefox.natsio.client import Client


class Connection(asyncio.Protocol):
    """One connection to one server; the client swaps in a new one on reconnect."""

    def __init__(self, client: Client, loop: asyncio.AbstractEventLoop) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        #: Done once the socket is gone (``connection_lost``).
        self.closed: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport: create_connection only makes those.
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.client._received(self, data)

    def eof_received(self) -> bool:
        return False  # close our side too: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        self.client._lost(self, exc)

    def pause_writing(self) -> None:
        self.client._pause_writing(self)

    def resume_writing(self) -> None:
        self.client._resume_writing(self)


class Handshake:
    """The futures one connection attempt waits on: the server's INFO, then our PING's PONG."""

    __slots__ = ("info", "pong")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.info: asyncio.Future[dict[str, Any]] = loop.create_future()
        self.pong: asyncio.Future[None] = loop.create_future()

    def fail(self, exc: Exception) -> None:
        for future in (self.info, self.pong):
            if not future.done():
                future.set_exception(exc)
                # Whichever is not awaited must not warn "exception never retrieved".
                future.exception()


def upgraded(transport: asyncio.Transport | None, address: ServerAddress) -> asyncio.Transport:
    """The TLS transport ``start_tls`` returned (``None`` only for a transport closed meanwhile)."""
    if transport is None:
        raise ConnectionClosedError(f"connection to {address} closed during the TLS handshake")
    return transport


def names(servers: list[ServerAddress]) -> str:
    """The servers, for a message."""
    return ", ".join(str(server) for server in servers)
