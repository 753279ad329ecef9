"""The API as a service: uvicorn serving :func:`~kubefox.api.app.create_app` until stopped.

The socket and the signal-free uvicorn come from :mod:`kubefox.serving`, as
for httpsrv and the OTLP receiver: a taken port is a ``PortUnavailableError``,
port 0 is read back before serving, and the entry point calls
:meth:`ApiServer.stop`.

With TLS the API serves HTTPS only: with the context it is handed (the
embedded platform's, reloaded when the platform's CA renews the certificate)
or with the certificate files of its settings, which it then watches and
reloads when they change.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.applications import Starlette

from kubefox.api.settings import ApiSettings
from kubefox.serving import AsgiServer, ServerTls


class ApiServer:
    """Serves the control-plane API until :meth:`stop`.

    Args:
        settings: where to listen and the limits.
        app: the application (:func:`~kubefox.api.app.create_app`).
        closing: the event the application's watch streams end on; set on stop.
        tls: serve HTTPS with this context, reloaded by the caller when its
            certificate rotates; unset: the settings' certificate files if any.

    Raises:
        InvalidError: the settings' certificate files do not load.
    """

    def __init__(
        self,
        settings: ApiSettings,
        app: Starlette,
        *,
        closing: asyncio.Event,
        tls: ServerTls | None = None,
    ) -> None:
        self.settings = settings
        self.app = app
        self._closing = closing
        self._watch_tls = False
        if tls is None and settings.tls_cert_file is not None and settings.tls_key_file is not None:
            tls = ServerTls(settings.tls_cert_file, settings.tls_key_file)
            self._watch_tls = True  # nobody else knows when these files change
        self.tls = tls
        self._server = AsgiServer(
            label="API",
            log_name="api",
            host=settings.host,
            port=settings.port,
            shutdown_grace=settings.shutdown_grace,
            header_timeout=settings.header_timeout,
            body_timeout=settings.body_timeout,
            max_head_size=settings.max_head_size,
            tls=tls,
        )
        #: Set once the server accepts requests (after :attr:`url` is known).
        self.started = self._server.started

    @property
    def url(self) -> str:
        """``http(s)://<host>:<port>``; known once :attr:`started` is set."""
        return self._server.url

    async def run(self) -> None:
        """Serve until :meth:`stop` and in-flight requests are done (once per server).

        Raises:
            PortUnavailableError: the address cannot be bound.
        """
        watcher: asyncio.Task[None] | None = None
        if self._watch_tls and self.tls is not None:
            watcher = asyncio.create_task(self.tls.watch(), name="api-tls-watch")
        try:
            await self._server.run(self.app)
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher

    def stop(self) -> None:
        """Stop accepting, end open watches, let requests finish within the grace; idempotent."""
        self._closing.set()
        self._server.stop()
