"""httpsrv as a service: NATS, the resource view, the router and uvicorn, run and stopped together.

``HttpServer.run()`` connects to NATS (unless handed a client), follows the
resource store with a :class:`~kubefox.router.ResourceView` (unless handed a
router), and serves :class:`~kubefox.adapters.http.app.HttpAdapter` with
uvicorn (httptools parser, no lifespan, no access log, no websockets).

The listening socket is bound here, not by uvicorn: a port that is taken is
then a :class:`PortUnavailableError` instead of uvicorn's ``sys.exit``, and
port 0 is read back from the socket before serving starts. uvicorn's own
signal handling is switched off: the entry point owns signals and calls
:meth:`HttpServer.stop`. The event loop is the caller's; entry points run it
on uvloop.

With TLS, httpsrv listens twice, as upstream's does (8080 and 8443): plain
HTTP on ``port`` and HTTPS on ``tls_port``, one uvicorn server each over the
same application. The HTTPS listener's ``SSLContext`` is made once and
reloaded in place when the certificate rotates (see
:mod:`kubefox.serving.tls`), so a rotation drops no connection or request.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import TYPE_CHECKING

import structlog

from kubefox.adapters.http.app import HttpAdapter, Requester, adapter_identity
from kubefox.adapters.http.builtin import LiveInstances
from kubefox.adapters.http.nats import (
    NatsClient,
    NatsioRequester,
    NatsRequester,
    close,
    connect,
    connect_requests,
)
from kubefox.adapters.http.settings import HttpsrvSettings
from kubefox.core.errors import UnavailableError
from kubefox.recording.jetstream import JetStreamRecordings
from kubefox.recording.recorder import Recorder
from kubefox.router import ResourceView, Router
from kubefox.serving import QuietServer, ServerTls, asgi_config, bind, url_of
from kubefox.store.jetstream import JetStreamStore

if TYPE_CHECKING:
    from kubefox.telemetry.metrics import HopMetrics
    from kubefox.telemetry.tracing import HopTracer

log = structlog.get_logger(__name__)

_BACKLOG = 2048


async def _open_recorder(client: NatsClient, platform: str, instance: str) -> Recorder | None:
    """The recorder over the JetStream recordings; ``None`` (recording off) if they cannot open."""
    try:
        recordings = await JetStreamRecordings.open(client, platform=platform)
    except UnavailableError as exc:
        log.warning("httpsrv.recording_unavailable", error=str(exc))
        return None
    return Recorder(recordings, observer=instance)


class HttpServer:
    """httpsrv: serves HTTP until :meth:`stop`, routing every request as a genesis event.

    Args:
        settings: the process settings.
        router: routes with this router instead of one over the settings' bucket
            (tests, or an embedded platform that already follows the store).
        client: uses this connected NATS client (the caller keeps owning it)
            instead of connecting to ``settings.nats_url``.
        tracer: traces sampled requests (see :class:`~kubefox.telemetry.tracing.HopTracer`).
        metrics: records every request's duration and outcome.
        live: the live component instances, for the built-in health event.
        tls: also serve HTTPS on ``settings.tls_port`` with this context, which
            the caller reloads when its certificate rotates; unset: with the
            settings' certificate files if any (watched and reloaded on change).

    Raises:
        InvalidError: the settings' certificate files do not load.
    """

    def __init__(
        self,
        settings: HttpsrvSettings,
        *,
        router: Router | None = None,
        client: NatsClient | None = None,
        tracer: HopTracer | None = None,
        metrics: HopMetrics | None = None,
        live: LiveInstances | None = None,
        tls: ServerTls | None = None,
    ) -> None:
        self.settings = settings
        self._watch_tls = False
        if tls is None and settings.tls_cert_file is not None and settings.tls_key_file is not None:
            tls = ServerTls(settings.tls_cert_file, settings.tls_key_file)
            self._watch_tls = True  # nobody else knows when these files change
        #: The HTTPS listener's TLS context; ``None``: plain HTTP only.
        self.tls = tls
        self._live = live
        self.source = adapter_identity()
        self._tracer = tracer
        self._metrics = metrics
        #: The ASGI application once serving (its ``in_flight`` feeds a gauge).
        self.adapter: HttpAdapter | None = None
        #: Set once the server accepts requests (after :attr:`url` is known).
        self.started = asyncio.Event()
        self._router = router
        self._client = client
        self._url: str | None = None
        self._https_url: str | None = None
        self._uvicorn: list[QuietServer] = []
        self._stopping = False
        self._running = False

    @property
    def url(self) -> str:
        """``http://<host>:<port>`` the server listens on; known once :attr:`started` is set."""
        if self._url is None:
            raise RuntimeError("the server is not listening yet")
        return self._url

    @property
    def https_url(self) -> str | None:
        """``https://<host>:<tls_port>`` once :attr:`started` is set; ``None`` without TLS."""
        if self.tls is None:
            return None
        if self._https_url is None:
            raise RuntimeError("the server is not listening yet")
        return self._https_url

    async def run(self) -> None:
        """Serve until :meth:`stop` is called and in-flight requests are done (once per server).

        The port is bound first, so :attr:`url` is known early and requests
        arriving while the resource view catches up wait in the backlog.

        Raises:
            PortUnavailableError: the address cannot be bound.
            UnavailableError: NATS cannot be reached.
        """
        if self._running:
            raise RuntimeError("the server has already run")
        self._running = True
        settings = self.settings
        sockets = [bind(settings.host, settings.port, backlog=_BACKLOG)]
        try:
            self._url = url_of(sockets[0])
            if self.tls is not None:
                sockets.append(bind(settings.host, settings.tls_port, backlog=_BACKLOG))
                self._https_url = url_of(sockets[1], scheme="https")
            client = self._client
            if client is not None:  # the caller's connection carries everything
                await self._run(client, NatsRequester(client), sockets)
                return
            client = await connect(settings.nats_options(name=f"kubefox-httpsrv {self.source.key}"))
            try:
                # Genesis requests get a natsio connection of their own (the hot path);
                # the store and the recordings keep nats-py's, which speaks JetStream.
                requests = await connect_requests(
                    settings.nats_options(name=f"kubefox-httpsrv {self.source.key} requests")
                )
                try:
                    await self._run(client, NatsioRequester(requests), sockets)
                finally:
                    await requests.close()
            finally:
                await close(client)
        finally:
            for sock in sockets:
                sock.close()
            self.started.clear()
            log.info("httpsrv.stopped", adapter=self.source.key)

    async def _run(
        self, client: NatsClient, requester: Requester, sockets: list[socket.socket]
    ) -> None:
        async with asyncio.TaskGroup() as tasks:
            router = self._router
            follower: asyncio.Task[None] | None = None
            if router is None:
                store = await JetStreamStore.open(client, bucket=self.settings.bucket)
                view = ResourceView(store, namespace=self.settings.namespace)
                follower = tasks.create_task(view.run(), name="httpsrv-resource-view")
                await view.wait_ready()
                router = Router(view, platform=self.settings.platform)
            recorder = await _open_recorder(client, self.settings.platform, self.source.id)
            if recorder is not None:
                tasks.create_task(recorder.run(), name="httpsrv-recorder")
            try:
                await self._serve(router, requester, sockets, recorder)
            finally:
                if follower is not None:
                    follower.cancel()
                if recorder is not None:
                    recorder.stop()

    async def _serve(
        self,
        router: Router,
        requester: Requester,
        sockets: list[socket.socket],
        recorder: Recorder | None = None,
    ) -> None:
        settings = self.settings
        app = HttpAdapter(
            router,
            requester,
            platform=settings.platform,
            source=self.source,
            timeout=settings.timeout,
            max_event_size=settings.max_event_size,
            tracer=self._tracer,
            metrics=self._metrics,
            recorder=recorder,
            live=self._live,
        )
        self.adapter = app
        # The plain listener, then the HTTPS one: one uvicorn server per socket
        # (uvicorn applies its one SSL context to every socket it serves).
        listeners = [(sockets[0], None), *((sock, self.tls) for sock in sockets[1:])]
        serving = [asyncio.Event() for _ in listeners]
        servers = [
            QuietServer(
                asgi_config(
                    app,
                    host=settings.host,
                    port=sock.getsockname()[1],
                    shutdown_grace=settings.shutdown_grace,
                    header_timeout=settings.header_timeout,
                    body_timeout=settings.body_timeout,
                    max_head_size=settings.max_head_size,
                    tls=tls,
                    loop="uvloop",
                    proxy_headers=False,  # translate honours X-Forwarded-* itself
                    backlog=_BACKLOG,
                    limit_concurrency=settings.max_connections,
                ),
                started,
            )
            for (sock, tls), started in zip(listeners, serving, strict=True)
        ]
        self._uvicorn = servers
        for server in servers:
            server.should_exit = self._stopping
        log.info(
            "httpsrv.starting", url=self._url, https_url=self._https_url, adapter=self.source.key
        )
        helpers = [asyncio.create_task(self._started_when(serving))]
        if self._watch_tls and self.tls is not None:
            helpers.append(asyncio.create_task(self.tls.watch(), name="httpsrv-tls-watch"))
        try:
            async with asyncio.TaskGroup() as tasks:
                for server, (sock, _) in zip(servers, listeners, strict=True):
                    tasks.create_task(server.serve(sockets=[sock]))
        finally:
            self._uvicorn = []
            for helper in helpers:
                helper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await helper

    async def _started_when(self, events: list[asyncio.Event]) -> None:
        """Set :attr:`started` once every listener serves."""
        for event in events:
            await event.wait()
        self.started.set()

    def stop(self) -> None:
        """Stop accepting, let in-flight requests finish within the grace; idempotent.

        Safe to call from a signal handler; :meth:`run` returns once done.
        """
        self._stopping = True
        for server in self._uvicorn:
            server.should_exit = True
