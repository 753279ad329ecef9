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
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING

import structlog
import uvicorn

from kubefox.adapters.http.app import HttpAdapter, adapter_identity
from kubefox.adapters.http.builtin import LiveInstances
from kubefox.adapters.http.nats import NatsClient, NatsRequester, close, connect
from kubefox.adapters.http.settings import HttpsrvSettings
from kubefox.core.errors import UnavailableError
from kubefox.recording.jetstream import JetStreamRecordings
from kubefox.recording.recorder import Recorder
from kubefox.router import ResourceView, Router
from kubefox.serving import QuietServer, bind, url_of
from kubefox.serving.protocol import guarded_protocol
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
    ) -> None:
        self.settings = settings
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
        self._uvicorn: QuietServer | None = None
        self._stopping = False
        self._running = False

    @property
    def url(self) -> str:
        """``http://<host>:<port>`` the server listens on; known once :attr:`started` is set."""
        if self._url is None:
            raise RuntimeError("the server is not listening yet")
        return self._url

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
        sock = bind(settings.host, settings.port, backlog=_BACKLOG)
        try:
            self._url = url_of(sock)
            client = self._client
            if client is None:
                client = await connect(settings.nats_url, name=f"kubefox-httpsrv {self.source.key}")
            try:
                await self._run(client, sock)
            finally:
                if self._client is None:
                    await close(client)
        finally:
            sock.close()
            self.started.clear()
            log.info("httpsrv.stopped", adapter=self.source.key)

    async def _run(self, client: NatsClient, sock: socket.socket) -> None:
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
                await self._serve(router, NatsRequester(client), sock, recorder)
            finally:
                if follower is not None:
                    follower.cancel()
                if recorder is not None:
                    recorder.stop()

    async def _serve(
        self,
        router: Router,
        requester: NatsRequester,
        sock: socket.socket,
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
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=sock.getsockname()[1],
            loop="uvloop",
            http=guarded_protocol(
                header_timeout=settings.header_timeout,
                body_timeout=settings.body_timeout,
                max_head_size=settings.max_head_size,
            ),
            ws="none",
            lifespan="off",
            interface="asgi3",
            access_log=False,
            log_config=None,
            proxy_headers=False,  # translate honours X-Forwarded-* itself
            server_header=False,
            backlog=_BACKLOG,
            limit_concurrency=settings.max_connections,
            # uvicorn annotates these seconds as int but waits any float.
            timeout_graceful_shutdown=settings.shutdown_grace,  # type: ignore[arg-type]
        )
        server = QuietServer(config, self.started)
        self._uvicorn = server
        server.should_exit = self._stopping
        log.info("httpsrv.starting", url=self._url, adapter=self.source.key)
        try:
            await server.serve(sockets=[sock])
        finally:
            self._uvicorn = None

    def stop(self) -> None:
        """Stop accepting, let in-flight requests finish within the grace; idempotent.

        Safe to call from a signal handler; :meth:`run` returns once done.
        """
        self._stopping = True
        server = self._uvicorn
        if server is not None:
            server.should_exit = True
