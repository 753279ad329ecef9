"""The OTLP receiver as a service: uvicorn serving :class:`OtlpReceiver` until stopped.

Shaped like httpsrv's ``HttpServer``: the socket is bound here (a taken port
is a :class:`PortUnavailableError`, port 0 is read back before serving),
uvicorn's signal handling is off because the entry point owns signals, and
:meth:`TelemetryServer.stop` is idempotent and signal-safe. The store is the
caller's: the server neither opens nor closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import structlog
import uvicorn

from kubefox.core.errors import PortUnavailableError
from kubefox.telemetry.protocol import TelemetryStore
from kubefox.telemetry.receiver import DEFAULT_MAX_BODY_SIZE, ASGIApp, OtlpReceiver

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


def _bind(host: str, port: int) -> socket.socket:
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
        self._uvicorn: _Uvicorn | None = None
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
        sock = _bind(self.host, self.port)
        try:
            host, port = sock.getsockname()[:2]
            self._url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
            config = uvicorn.Config(
                self.app,
                host=self.host,
                port=port,
                ws="none",
                lifespan="off",
                interface="asgi3",
                access_log=False,
                log_config=None,
                server_header=False,
                # uvicorn annotates these seconds as int but waits any float.
                timeout_graceful_shutdown=self.shutdown_grace,  # type: ignore[arg-type]
            )
            server = _Uvicorn(config, self.started)
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
