"""The OTLP receiver as a service: uvicorn serving :class:`OtlpReceiver` until stopped.

Served by :class:`kubefox.serving.AsgiServer`, as the control-plane API is: a
taken port is a ``PortUnavailableError``, port 0 is read back before serving,
uvicorn's signal handling is off because the entry point owns signals, and
:meth:`TelemetryServer.stop` is idempotent and signal-safe. The store is the
caller's: the server neither opens nor closes it.
"""

from __future__ import annotations

from kubefox.serving.server import AsgiServer
from kubefox.telemetry.protocol import TelemetryStore
from kubefox.telemetry.receiver import DEFAULT_MAX_BODY_SIZE, ASGIApp, OtlpReceiver


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
        self._server = AsgiServer(
            label="telemetry",
            log_name="otlp_receiver",
            host=host,
            port=port,
            shutdown_grace=shutdown_grace,
        )
        #: Set once the server accepts requests (after :attr:`url` is known).
        self.started = self._server.started

    @property
    def url(self) -> str:
        """``http://<host>:<port>``, the OTLP base URL; known once :attr:`started` is set.

        Exporters append ``/v1/traces`` and ``/v1/logs``.
        """
        return self._server.url

    async def run(self) -> None:
        """Serve until :meth:`stop` is called and in-flight exports are done (once per server).

        Raises:
            PortUnavailableError: the address cannot be bound.
        """
        await self._server.run(self.app)

    def stop(self) -> None:
        """Stop accepting and let in-flight exports finish within the grace; idempotent.

        Safe to call from a signal handler; :meth:`run` returns once done.
        """
        self._server.stop()
