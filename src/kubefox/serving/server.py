"""One ASGI application served by uvicorn on a socket of its own, until stopped.

The control-plane API and the OTLP receiver are served the same way: bind
first (a taken port is a ``PortUnavailableError``, port 0 is read back before
serving), run uvicorn with the guarded protocol and without its signal
handling, and let :meth:`AsgiServer.stop` (idempotent, signal-safe) drain
in-flight requests within the grace.

With a :class:`~kubefox.serving.tls.ServerTls` the server speaks HTTPS only,
with that context: uvicorn is handed the prebuilt ``SSLContext`` (its
``ssl_context_factory``), so a reload of the context reaches the listening
socket without a restart. :func:`asgi_config` is the one uvicorn configuration
every server here (httpsrv too) starts from.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
import uvicorn

from kubefox.serving.listener import QuietServer, bind, url_of
from kubefox.serving.protocol import guarded_protocol
from kubefox.serving.tls import ServerTls

log = structlog.get_logger(__name__)


def asgi_config(
    app: Any,
    *,
    host: str,
    port: int,
    shutdown_grace: float,
    header_timeout: float,
    body_timeout: float,
    max_head_size: int,
    tls: ServerTls | None = None,
    **options: Any,
) -> uvicorn.Config:
    """The uvicorn configuration for ``app`` on a socket bound beforehand.

    The guarded httptools protocol, no websockets, no lifespan, no access log,
    no ``server`` header; ``tls`` makes it HTTPS with that very context.
    ``options`` are further ``uvicorn.Config`` arguments (``loop``, ``backlog``...).
    """
    context = tls.context if tls is not None else None
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        # the guards httpsrv has: a slow or endless request cannot hold a connection
        http=guarded_protocol(
            header_timeout=header_timeout,
            body_timeout=body_timeout,
            max_head_size=max_head_size,
        ),
        ws="none",
        lifespan="off",
        interface="asgi3",
        access_log=False,
        log_config=None,
        server_header=False,
        # uvicorn annotates these seconds as int but waits any float.
        timeout_graceful_shutdown=shutdown_grace,  # type: ignore[arg-type]
        # The same context object for the server's life: a reload reaches new handshakes.
        ssl_context_factory=None if context is None else lambda _config, _default: context,
        **options,
    )


class AsgiServer:
    """Serves one ASGI app on ``host:port`` once, from :meth:`run` until :meth:`stop`.

    Args:
        label: how errors name the server, e.g. ``API`` ("the API server ...").
        log_name: prefix of its log events, e.g. ``api`` (``api.starting``).
        host: address to bind.
        port: port to bind; 0 picks a free one.
        shutdown_grace: seconds in-flight requests get once stopping has begun.
        header_timeout: seconds a client has to send a request's line and headers.
        body_timeout: seconds a client has to send a request's body.
        max_head_size: largest request line plus headers, in bytes.
        tls: serve HTTPS with this context (whoever rotates its files reloads it).
    """

    def __init__(
        self,
        *,
        label: str,
        log_name: str,
        host: str,
        port: int,
        shutdown_grace: float,
        header_timeout: float = 10.0,
        body_timeout: float = 30.0,
        max_head_size: int = 64 * 1024,
        tls: ServerTls | None = None,
    ) -> None:
        self.label = label
        self.log_name = log_name
        self.host = host
        self.port = port
        self.shutdown_grace = shutdown_grace
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.max_head_size = max_head_size
        self.tls = tls
        #: Set once the server accepts requests (after :attr:`url` is known).
        self.started = asyncio.Event()
        self._url: str | None = None
        self._uvicorn: QuietServer | None = None
        self._stopping = False
        self._running = False

    @property
    def url(self) -> str:
        """``http://<host>:<port>`` (``https://`` with TLS); known once :attr:`started` is set."""
        if self._url is None:
            raise RuntimeError(f"the {self.label} server is not listening yet")
        return self._url

    async def run(self, app: Any) -> None:
        """Serve ``app`` until :meth:`stop` and in-flight requests are done (once per server).

        Raises:
            PortUnavailableError: the address cannot be bound.
        """
        if self._running:
            raise RuntimeError(f"the {self.label} server has already run")
        self._running = True
        sock = bind(self.host, self.port)
        try:
            self._url = url_of(sock, scheme="http" if self.tls is None else "https")
            config = asgi_config(
                app,
                host=self.host,
                port=sock.getsockname()[1],
                shutdown_grace=self.shutdown_grace,
                header_timeout=self.header_timeout,
                body_timeout=self.body_timeout,
                max_head_size=self.max_head_size,
                tls=self.tls,
                loop="none",
            )
            server = QuietServer(config, self.started)
            self._uvicorn = server
            server.should_exit = self._stopping
            log.info(f"{self.log_name}.starting", url=self._url)
            await server.serve(sockets=[sock])
        finally:
            self._uvicorn = None
            sock.close()
            self.started.clear()
            log.info(f"{self.log_name}.stopped")

    def stop(self) -> None:
        """Stop accepting and let in-flight requests finish within the grace; idempotent."""
        self._stopping = True
        server = self._uvicorn
        if server is not None:
            server.should_exit = True
