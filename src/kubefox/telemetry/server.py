"""The OTLP receiver as a service: uvicorn serving :class:`OtlpReceiver` until stopped.

Shaped like httpsrv's ``HttpServer``: the socket is bound here (a taken port
is a :class:`PortUnavailableError`, port 0 is read back before serving),
uvicorn's signal handling is off because the entry point owns signals, and
:meth:`TelemetryServer.stop` is idempotent and signal-safe. The store is the
caller's: the server neither opens nor closes it.
"""

from __future__ import annotations

import asyncio

import structlog
import uvicorn

from kubefox.serving import QuietServer, bind, url_of
from kubefox.serving.protocol import guarded_protocol
from kubefox.telemetry.protocol import TelemetryStore
from kubefox.telemetry.receiver import DEFAULT_MAX_BODY_SIZE, ASGIApp, OtlpReceiver

log = structlog.get_logger(__name__)


class TelemetryServer:
    """Serves OTLP/HTTP (``/v1/traces``, ``/v1/logs``) into ``store`` until :meth:`stop`.

    Args:
        store: where received spans and logs go (the caller opens and closes it).
        host: address to bind; loopback by default.
        port: port to bind; 0 picks a free one.
        max_body_size: largest request body, in bytes, compressed or not.
        shutdown_grace: seconds in-flight exports get to finish on stop.
    """

    def __init__(
        self,
        store: TelemetryStore,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        shutdown_grace: float = 5.0,
    ) -> None:
        #: The ASGI app served; wrap it before :meth:`run` to add middleware.
        self.app: ASGIApp = OtlpReceiver(store, max_body_size=max_body_size)
        self.host = host
        self.port = port
        self.shutdown_grace = shutdown_grace
        #: Set once the server accepts requests (after :attr:`url` is known).
        self.started = asyncio.Event()
        self._url: str | None = None
        self._uvicorn: QuietServer | None = None
        self._stopping = False
        self._running = False

    @property
    def url(self) -> str:
        """``http://<host>:<port>``, the OTLP base URL; known once :attr:`started` is set.

        Exporters append ``/v1/traces`` and ``/v1/logs``.
        """
        if self._url is None:
            raise RuntimeError("the telemetry server is not listening yet")
        return self._url

    async def run(self) -> None:
        """Serve until :meth:`stop` is called and in-flight exports are done (once per server).

        Raises:
            PortUnavailableError: the address cannot be bound.
        """
        if self._running:
            raise RuntimeError("the telemetry server has already run")
        self._running = True
        sock = bind(self.host, self.port)
        try:
            self._url = url_of(sock)
            config = uvicorn.Config(
                self.app,
                host=self.host,
                port=sock.getsockname()[1],
                # the guards httpsrv has; bodies may be as large as the receiver allows
                http=guarded_protocol(
                    header_timeout=10.0, body_timeout=30.0, max_head_size=64 * 1024
                ),
                ws="none",
                lifespan="off",
                interface="asgi3",
                access_log=False,
                log_config=None,
                server_header=False,
                # uvicorn annotates these seconds as int but waits any float.
                timeout_graceful_shutdown=self.shutdown_grace,  # type: ignore[arg-type]
            )
            server = QuietServer(config, self.started)
            self._uvicorn = server
            server.should_exit = self._stopping
            log.info("otlp_receiver.starting", url=self._url)
            await server.serve(sockets=[sock])
        finally:
            self._uvicorn = None
            sock.close()
            self.started.clear()
            log.info("otlp_receiver.stopped")

    def stop(self) -> None:
        """Stop accepting and let in-flight exports finish within the grace; idempotent.

        Safe to call from a signal handler; :meth:`run` returns once done.
        """
        self._stopping = True
        server = self._uvicorn
        if server is not None:
            server.should_exit = True
