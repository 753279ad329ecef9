"""The API as a service: uvicorn serving :func:`~kubefox.api.app.create_app` until stopped.

As httpsrv does, the socket is bound here rather than by uvicorn, so a taken
port is a :class:`PortUnavailableError` (not uvicorn's ``sys.exit``) and port
0 is read back before serving; uvicorn's signal handling is off, because the
entry point owns signals and calls :meth:`ApiServer.stop`. (httpsrv's copy of
these few lines lives in ``kubefox.adapters``, a sibling the API may not import.)
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import structlog
import uvicorn
from starlette.applications import Starlette

from kubefox.api.settings import ApiSettings
from kubefox.core.errors import PortUnavailableError

log = structlog.get_logger(__name__)


class _Uvicorn(uvicorn.Server):
    """uvicorn that leaves signals to the entry point and reports when it serves."""

    def __init__(self, config: uvicorn.Config, started: asyncio.Event) -> None:
        super().__init__(config)
        self._serving = started

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self._serving.set()


def bind(host: str, port: int) -> socket.socket:
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
        sock.listen(128)
        sock.setblocking(False)  # noqa: FBT003 - the socket API's own signature
    except OSError as exc:
        sock.close()
        raise PortUnavailableError(f"cannot listen on {host}:{port}: {exc}") from exc
    return sock


class ApiServer:
    """Serves the control-plane API until :meth:`stop`.

    Args:
        settings: where to listen and the limits.
        app: the application (:func:`~kubefox.api.app.create_app`).
        closing: the event the application's watch streams end on; set on stop.
    """

    def __init__(self, settings: ApiSettings, app: Starlette, *, closing: asyncio.Event) -> None:
        self.settings = settings
        self.app = app
        #: Set once the server accepts requests (after :attr:`url` is known).
        self.started = asyncio.Event()
        self._closing = closing
        self._url: str | None = None
        self._uvicorn: _Uvicorn | None = None
        self._stopping = False
        self._running = False

    @property
    def url(self) -> str:
        """``http://<host>:<port>``; known once :attr:`started` is set."""
        if self._url is None:
            raise RuntimeError("the API server is not listening yet")
        return self._url

    async def run(self) -> None:
        """Serve until :meth:`stop` and in-flight requests are done (once per server).

        Raises:
            PortUnavailableError: the address cannot be bound.
        """
        if self._running:
            raise RuntimeError("the API server has already run")
        self._running = True
        settings = self.settings
        sock = bind(settings.host, settings.port)
        try:
            host, port = sock.getsockname()[:2]
            self._url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
            config = uvicorn.Config(
                self.app,
                host=settings.host,
                port=port,
                loop="none",
                http="h11",
                ws="none",
                lifespan="off",
                access_log=False,
                log_config=None,
                server_header=False,
                # uvicorn annotates these seconds as int but waits any float.
                timeout_graceful_shutdown=settings.shutdown_grace,  # type: ignore[arg-type]
            )
            server = _Uvicorn(config, self.started)
            self._uvicorn = server
            server.should_exit = self._stopping
            log.info("api.starting", url=self._url)
            await server.serve(sockets=[sock])
        finally:
            self._uvicorn = None
            sock.close()
            self.started.clear()
            log.info("api.stopped")

    def stop(self) -> None:
        """Stop accepting, end open watches, let requests finish within the grace; idempotent."""
        self._stopping = True
        self._closing.set()
        server = self._uvicorn
        if server is not None:
            server.should_exit = True
