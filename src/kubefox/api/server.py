"""The API as a service: uvicorn serving :func:`~kubefox.api.app.create_app` until stopped.

The socket and the signal-free uvicorn come from :mod:`kubefox.serving`, as
for httpsrv and the OTLP receiver: a taken port is a ``PortUnavailableError``,
port 0 is read back before serving, and the entry point calls
:meth:`ApiServer.stop`.
"""

from __future__ import annotations

import asyncio

import structlog
import uvicorn
from starlette.applications import Starlette

from kubefox.api.settings import ApiSettings
from kubefox.serving import QuietServer, bind, url_of
from kubefox.serving.protocol import guarded_protocol

log = structlog.get_logger(__name__)


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
        self._uvicorn: QuietServer | None = None
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
            self._url = url_of(sock)
            config = uvicorn.Config(
                self.app,
                host=settings.host,
                port=sock.getsockname()[1],
                loop="none",
                # the guards httpsrv has: a slow or endless request head cannot hold a connection
                http=guarded_protocol(
                    header_timeout=settings.header_timeout,
                    body_timeout=settings.body_timeout,
                    max_head_size=settings.max_head_size,
                ),
                ws="none",
                lifespan="off",
                access_log=False,
                log_config=None,
                server_header=False,
                # uvicorn annotates these seconds as int but waits any float.
                timeout_graceful_shutdown=settings.shutdown_grace,  # type: ignore[arg-type]
            )
            server = QuietServer(config, self.started)
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
