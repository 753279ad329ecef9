"""A bound socket and a uvicorn server that leaves signals alone, for every role that serves HTTP.

The socket is bound here rather than by uvicorn, so a taken port is a
:class:`PortUnavailableError` (not uvicorn's ``sys.exit``) and port 0 is read
back before serving. uvicorn's signal handling is off because the process's
entry point owns signals and stops each role itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn

from kubefox.core.errors import PortUnavailableError


class QuietServer(uvicorn.Server):
    """uvicorn that leaves signals to the entry point and sets ``started`` once it serves."""

    def __init__(self, config: uvicorn.Config, started: asyncio.Event) -> None:
        super().__init__(config)
        self._serving = started

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self._serving.set()


def bind(host: str, port: int, *, backlog: int = 128) -> socket.socket:
    """A listening, non-blocking socket on ``host:port`` (0: a free port).

    Raises:
        PortUnavailableError: the address cannot be bound.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise PortUnavailableError(f"cannot listen on {host}:{port}: {exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)  # noqa: FBT003 - the socket API's own signature
    except OSError as exc:
        sock.close()
        raise PortUnavailableError(f"cannot listen on {host}:{port}: {exc}") from exc
    return sock


def url_of(sock: socket.socket, *, scheme: str = "http") -> str:
    """``http://host:port`` (or another ``scheme``) of a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"
