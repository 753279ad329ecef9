"""The API as a service: uvicorn serving :func:`~kubefox.api.app.create_app` until stopped.

The socket and the signal-free uvicorn come from :mod:`kubefox.serving`, as
for httpsrv and the OTLP receiver: a taken port is a ``PortUnavailableError``,
port 0 is read back before serving, and the entry point calls
:meth:`ApiServer.stop`.
"""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette

from kubefox.api.settings import ApiSettings
from kubefox.serving.server import AsgiServer


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
        self._closing = closing
        self._server = AsgiServer(
            label="API",
            log_name="api",
            host=settings.host,
            port=settings.port,
            shutdown_grace=settings.shutdown_grace,
            header_timeout=settings.header_timeout,
            body_timeout=settings.body_timeout,
            max_head_size=settings.max_head_size,
        )
        #: Set once the server accepts requests (after :attr:`url` is known).
        self.started = self._server.started

    @property
    def url(self) -> str:
        """``http://<host>:<port>``; known once :attr:`started` is set."""
        return self._server.url

    async def run(self) -> None:
        """Serve until :meth:`stop` and in-flight requests are done (once per server).

        Raises:
            PortUnavailableError: the address cannot be bound.
        """
        await self._server.run(self.app)

    def stop(self) -> None:
        """Stop accepting, end open watches, let requests finish within the grace; idempotent."""
        self._closing.set()
        self._server.stop()
