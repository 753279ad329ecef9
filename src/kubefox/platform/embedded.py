"""The embedded platform: nats-server, the store and every role, on one machine.

``fox up``, ``make run`` and the tests start the same object, so what a
developer runs on a laptop is what the tests exercise. Start-up order: the
server, the stores, the Platform resource, then the roles (operator, router
view, broker, httpsrv); shutdown is the reverse, each part within its grace.

The roles run as tasks of this process, each with its own NATS connection, as
they would as separate processes; component instances are child processes
started by the operator's local scheduler.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import socket
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar
from urllib.parse import urlsplit

import structlog

from kubefox.adapters.http import HttpServer, HttpsrvSettings
from kubefox.api import ApiServer, ApiSettings, create_app
from kubefox.broker import Broker, BrokerSettings
from kubefox.core.errors import KubeFoxError
from kubefox.core.nats_options import NatsConnectOptions
from kubefox.operator import (
    InstanceSpec,
    LocalScheduler,
    Operator,
    OperatorSettings,
    wait_available,
)
from kubefox.operator.local import READY_TIMEOUT
from kubefox.platform.security import PlatformSecurity, new_identity
from kubefox.platform.settings import PlatformSettings
from kubefox.publish import PublishResult, publish
from kubefox.recording.jetstream import JetStreamRecordings
from kubefox.resources import (
    AppDeployment,
    Condition,
    ConditionReason,
    ConditionStatus,
    ConditionType,
    Platform,
    PlatformStatus,
    Resource,
    load_yaml,
)
from kubefox.router import ResourceView, Router
from kubefox.security.certificates import CertificateFiles, CertificateRotator, PlatformRole
from kubefox.serving import ServerTls, certificate_names
from kubefox.store.instance_records import InstanceRecord
from kubefox.store.instances import InstanceRegistry
from kubefox.store.jetstream import JetStreamStore
from kubefox.store.jetstream_objects import JetStreamArtifactStore
from kubefox.store.natsd import EmbeddedNatsServer
from kubefox.store.secrets import ResourceSecrets
from kubefox.store.typed import TypedStore
from kubefox.telemetry import TelemetrySettings, TelemetryStore, default_store_url

if TYPE_CHECKING:
    from kubefox.telemetry.roles import RoleTelemetry
    from kubefox.telemetry.server import TelemetryServer

log = structlog.get_logger(__name__)

#: File in the state directory recording where each part listens (removed on stop).
ENDPOINTS_FILE = "endpoints.json"
#: File in the state directory remembering the ports chosen last time (kept on stop).
PORTS_FILE = "ports.json"
#: Prefix of the telemetry variables the operator gives every component process.
KIT_TELEMETRY_PREFIX = "KUBEFOX_KIT_TELEMETRY_"


class EmbeddedPlatform:
    """Every part of one platform on this machine, started and stopped together."""

    def __init__(self, settings: PlatformSettings, *, api: ApiSettings | None = None) -> None:
        self.settings = settings
        # Library code never reads the environment: defaults unless the entry point passed some.
        self._api_settings = api or ApiSettings.model_construct(host=settings.http_host)
        self._api: ApiServer | None = None
        self.state_dir = Path(settings.state_dir).resolve()
        self.nats = EmbeddedNatsServer(
            self.state_dir / "nats", port=settings.nats_port, threads=settings.nats_threads or None
        )
        self._store: JetStreamStore | None = None
        self._artifacts: JetStreamArtifactStore | None = None
        self._registry: InstanceRegistry | None = None
        self._recordings: JetStreamRecordings | None = None
        self._secrets: ResourceSecrets | None = None
        self._operator: Operator | None = None
        self._scheduler: LocalScheduler | None = None
        self._brokers: list[Broker] = []
        self._http: HttpServer | None = None
        self._view: ResourceView | None = None
        self._operator_view: ResourceView | None = None
        self._runner: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._ready = asyncio.Event()
        self._telemetry_store: TelemetryStore | None = None
        self._otlp: TelemetryServer | None = None
        self._otlp_task: asyncio.Task[None] | None = None
        self._telemetry: dict[str, RoleTelemetry] = {}
        self._log_forwarder: Any = None
        self._component_env: dict[str, str] = {}
        self._security: PlatformSecurity | None = None
        self._nats_rotator: CertificateRotator | None = None
        self._nats_rotation: asyncio.Task[None] | None = None
        #: Rotators of the HTTPS servers' certificates (httpsrv, the API), run by the roles.
        self._serving_rotators: list[CertificateRotator] = []

    # -- what callers use -------------------------------------------------------------

    @property
    def security(self) -> PlatformSecurity:
        """Secrets backend, CA and NATS credentials; valid from :meth:`start` to :meth:`stop`."""
        return _started(self._security)

    async def nats_options(self, name: str = "kubefox-platform") -> NatsConnectOptions:
        """How a platform-side client (a test, a tool) connects: the platform admin user."""
        return await self.security.nats_options(PlatformRole.API, name=name)

    @property
    def store(self) -> JetStreamStore:
        """The raw resource store; valid between :meth:`start` and :meth:`stop`."""
        return _started(self._store)

    @property
    def resources(self) -> TypedStore:
        """Typed access to the platform's namespace of the resource store.

        Secrets of Environments, VirtualEnvironments and manifests go to the
        platform's secrets backend; the store keeps the mask.
        """
        return TypedStore(self.store, namespace=self.settings.namespace, secrets=self._secrets)

    @property
    def artifacts(self) -> JetStreamArtifactStore:
        """The component artifact store (JetStream object store)."""
        return _started(self._artifacts)

    def _live_instances(self) -> Iterable[tuple[str, str, str]]:
        """``(app, component, hash)`` of every registered instance (httpsrv's health event)."""
        registry = self._registry
        if registry is None:
            return ()
        return [(record.app, record.name, record.hash) for record in registry.records()]

    @property
    def registry(self) -> InstanceRegistry:
        """Live component instance registrations."""
        return _started(self._registry)

    @property
    def scheduler(self) -> LocalScheduler:
        """The local process supervisor running component instances."""
        return _started(self._scheduler)

    @property
    def view(self) -> ResourceView:
        """The resource view the router (httpsrv and broker) routes with."""
        return _started(self._view)

    @property
    def telemetry(self) -> TelemetryStore:
        """The telemetry store (spans and log lines of every role and component)."""
        return _started(self._telemetry_store)

    @property
    def otlp_url(self) -> str | None:
        """Base URL of the embedded OTLP/HTTP receiver; ``None`` with telemetry off."""
        otlp = self._otlp
        return otlp.url if otlp is not None and otlp.started.is_set() else None

    def metrics_text(self) -> str:
        """The platform process's metrics in Prometheus' text format (also ``GET /metrics``)."""
        role = self._telemetry.get("platform")
        return role.prometheus.render() if role is not None and role.prometheus else ""

    async def flush_telemetry(self, within: float = 10.0) -> None:
        """Export every span, log line and metric the roles hold now (tests, ``fox trace``)."""
        for role in self._telemetry.values():
            await role.providers.aflush(within)

    @property
    def http_url(self) -> str:
        """Base URL of httpsrv, e.g. ``http://127.0.0.1:8080``."""
        return _started(self._http).url

    @property
    def https_url(self) -> str | None:
        """Base URL of httpsrv's HTTPS listener; ``None`` with security off.

        Its certificate comes from the platform's CA (``security.ca_file``).
        """
        return _started(self._http).https_url

    @property
    def api_url(self) -> str:
        """Base URL of the control-plane API: ``https://...`` with security on, else ``http://``."""
        return _started(self._api).url

    def endpoints(self) -> dict[str, Any]:
        """Where each part listens (also written to ``endpoints.json`` in the state dir)."""
        return {
            "platform": self.settings.name,
            "namespace": self.settings.namespace,
            "nats": self.nats.url,
            "http": self._http.url
            if self._http is not None and self._http.started.is_set()
            else None,
            "api": self._api.url if self._api is not None and self._api.started.is_set() else None,
            "otlp": self.otlp_url,
            "brokers": len(self._brokers),
            "stateDir": str(self.state_dir),
            **self._tls_endpoints(),
        }

    def _tls_endpoints(self) -> dict[str, Any]:
        """The HTTPS URL of httpsrv and the CA file clients verify with; none if security is off."""
        security = self._security
        if security is None or not security.enabled:
            return {}
        http = self._http
        serving = http is not None and http.started.is_set()
        return {
            "https": http.https_url if http is not None and serving else None,
            "caFile": str(security.ca_file),
        }

    async def apply_yaml(self, text: str, *, source: str = "<input>") -> list[Resource]:
        """Load every resource in ``text`` and apply it (create or update)."""
        typed = self.resources
        return [await typed.apply(resource) for resource in load_yaml(text, source=source)]

    async def apply_path(self, path: Path) -> list[Resource]:
        """Apply a YAML file, or every ``*.yaml``/``*.yml`` file of a directory, in name order."""
        files = await asyncio.to_thread(_yaml_files, path)
        applied: list[Resource] = []
        for file, text in files:
            applied.extend(await self.apply_yaml(text, source=str(file)))
        return applied

    async def publish(
        self,
        app_dir: Path,
        *,
        version: str | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> PublishResult:
        """Publish the app at ``app_dir`` (see :func:`kubefox.publish.publish`)."""
        return await publish(
            app_dir,
            store=self.resources,
            artifacts=self.artifacts,
            version=version,
            progress=progress,
        )

    async def wait_available(self, name: str, *, within: float = 60.0) -> AppDeployment:
        """Wait until AppDeployment ``name`` has every component running and registered.

        Every write made before the call is seen first, so a deployment just
        updated is judged by its new generation, not by the status of the old one.
        """
        view = _started(self._operator_view)
        async with asyncio.timeout(within):
            # After a restart the stored statuses are the last run's until the
            # operator's first pass has written this run's.
            await _started(self._operator).wait_reconciled()
            await view.wait_for_revision(await self.store.revision())
        return await wait_available(view, name, timeout=within)

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Start everything; return once httpsrv answers. Undo what started on failure."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            await self._start_nats()
            await self._open_stores()
            await self._ensure_platform_resource()
            await self._start_telemetry()
            self._runner = asyncio.create_task(self._run_roles(), name="kubefox-platform")
            ready = asyncio.create_task(self._ready.wait())
            done, _ = await asyncio.wait({ready, self._runner}, return_when=asyncio.FIRST_COMPLETED)
            if self._runner in done:
                ready.cancel()
                self._runner.result()  # raises what stopped the roles
                _stopped_while_starting()
        except BaseException:
            await self.stop()
            raise
        (self.state_dir / ENDPOINTS_FILE).write_text(json.dumps(self.endpoints(), indent=2))
        http_port = urlsplit(self.http_url).port
        api_port = urlsplit(self.api_url).port
        https_port = urlsplit(self.https_url).port if self.https_url else None
        (self.state_dir / PORTS_FILE).write_text(
            json.dumps({"http": http_port, "https": https_port, "api": api_port})
        )
        log.info("platform.started", **self.endpoints())

    async def stop(self) -> None:
        """Stop everything :meth:`start` started, in reverse order. Idempotent."""
        self._stop.set()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await runner
        await self._stop_telemetry()
        for closer in (self._recordings, self._registry, self._artifacts, self._store):
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer.aclose()
        self._registry = self._artifacts = self._store = self._recordings = None
        self._secrets = None
        if self._nats_rotator is not None:
            self._nats_rotator.stop()
        if self._nats_rotation is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._nats_rotation
        self._nats_rotator = self._nats_rotation = None
        if self._security is not None:
            await self._security.aclose()
            self._security = None
        await self.nats.stop(self.settings.shutdown_grace)
        with contextlib.suppress(FileNotFoundError):
            (self.state_dir / ENDPOINTS_FILE).unlink()
        log.info("platform.stopped")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- internals ----------------------------------------------------------------------

    async def _start_nats(self) -> None:
        """Open the security backend, start nats-server (TLS and operator mode with security on)."""
        security = self._security = await PlatformSecurity.open(
            self.settings, state_dir=self.state_dir
        )
        self._nats_rotator = await security.configure_nats(self.nats)
        await self.nats.start()
        await security.attach(self.nats.url)
        if self._nats_rotator is not None:
            self._nats_rotation = asyncio.create_task(
                self._nats_rotator.run(), name="nats-certificate-rotation"
            )

    async def _open_stores(self) -> None:
        s = self.settings
        security = self.security
        self._store = await JetStreamStore.connect(
            await security.nats_options(PlatformRole.OPERATOR, name="kubefox-store"),
            bucket=s.bucket,
        )
        self._artifacts = await JetStreamArtifactStore.connect(
            await security.nats_options(PlatformRole.OPERATOR, name="kubefox-artifacts"),
            bucket=s.artifacts_bucket,
        )
        self._registry = await InstanceRegistry.connect(
            await security.nats_options(PlatformRole.OPERATOR, name="kubefox-operator-registry"),
            bucket=s.instances_bucket,
            platform=s.name,
            ttl=s.instance_ttl,
        )
        self._recordings = await JetStreamRecordings.connect(
            await security.nats_options(PlatformRole.API, name="kubefox-recordings"),
            platform=s.name,
        )
        # Secrets of resources go to the platform's secrets backend; the store keeps masks.
        self._secrets = ResourceSecrets(security.backend, tenant=self.settings.tenant)

    # -- telemetry ----------------------------------------------------------------------

    async def _start_telemetry(self) -> None:
        """Open the telemetry store, serve OTLP into it, build every role's telemetry.

        Sampling comes from the settings; the Platform resource's
        ``spec.telemetry.traces.export: false`` turns tracing off (read at start).
        """
        s = self.settings
        if not s.telemetry:
            return
        from kubefox.telemetry import open_telemetry_store
        from kubefox.telemetry.log_export import OtelLogForwarder
        from kubefox.telemetry.roles import role_telemetry
        from kubefox.telemetry.server import TelemetryServer

        self._telemetry_store = await open_telemetry_store(
            s.telemetry_store or default_store_url(self.state_dir)
        )
        self._otlp = TelemetryServer(self._telemetry_store, host="127.0.0.1")
        self._otlp_task = asyncio.create_task(self._otlp.run(), name="otlp-receiver")
        started = asyncio.create_task(self._otlp.started.wait())
        await asyncio.wait({started, self._otlp_task}, return_when=asyncio.FIRST_COMPLETED)
        if self._otlp_task.done():
            started.cancel()
            self._otlp_task.result()  # raises why it could not serve
        traces = True
        with contextlib.suppress(LookupError, KubeFoxError):
            platform = await self.resources.get(Platform, s.name)
            traces = platform.spec.telemetry.traces.export
        base = TelemetrySettings(
            sampling_ratio=s.telemetry_sampling_ratio,
            embedded_endpoint=self._otlp.url,
            endpoint=s.telemetry_endpoint,
            traces=traces,
        )
        platform_only = TelemetrySettings(
            sampling_ratio=s.telemetry_sampling_ratio,
            embedded_endpoint=self._otlp.url,
            endpoint=s.telemetry_endpoint,
            traces=traces,
            logs=False,
            metrics=False,
        )
        # One provider for the process's metrics and log lines; one tracer per role,
        # so each role's spans name their service.
        self._telemetry = {
            "platform": role_telemetry(
                dataclasses.replace(base, traces=False),
                role="platform",
                platform=s.name,
                prometheus=True,
            ),
            # httpsrv and the broker run here: their spans go straight into the store
            "httpsrv": role_telemetry(
                platform_only, role="httpsrv", platform=s.name, store=self._telemetry_store
            ),
            "broker": role_telemetry(
                platform_only, role="broker", platform=s.name, store=self._telemetry_store
            ),
        }
        self._component_env = base.to_environ(KIT_TELEMETRY_PREFIX)
        self._log_forwarder = OtelLogForwarder(
            self._telemetry["platform"].providers.logger("kubefox.platform")
        )
        _insert_log_processor(self._log_forwarder)

    def _telemetry_gauges(self) -> None:
        role = self._telemetry.get("platform")
        if role is None or role.metrics is None:
            return
        from kubefox.telemetry.metrics import IN_FLIGHT, INSTANCES

        def in_flight() -> Iterable[tuple[float, Mapping[str, Any]]]:
            adapter = self._http.adapter if self._http is not None else None
            yield (adapter.in_flight if adapter is not None else 0), {"hop": "httpsrv"}
            yield sum(broker.in_flight for broker in self._brokers), {"hop": "broker"}

        def instances() -> Iterable[tuple[float, Mapping[str, Any]]]:
            registry = self._registry
            if registry is None:
                return
            counts = collections.Counter(
                (record.app, record.name, record.hash) for record in registry.records()
            )
            for (app, name, hash_), count in sorted(counts.items()):
                yield count, {"app": app, "component": name, "hash": hash_}

        role.metrics.gauge(IN_FLIGHT, "Requests being handled right now, per hop.", in_flight)
        role.metrics.gauge(INSTANCES, "Registered component instances, per version.", instances)

    async def _stop_telemetry(self) -> None:
        """Roles first (done by now), then the providers, the receiver, the store."""
        if self._log_forwarder is not None:
            _remove_log_processor(self._log_forwarder)
            self._log_forwarder = None
        roles, self._telemetry = self._telemetry, {}
        for role in roles.values():
            with contextlib.suppress(Exception):
                await role.aclose()
        if self._otlp is not None:
            self._otlp.stop()
        if self._otlp_task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._otlp_task, self.settings.shutdown_grace)
        self._otlp = self._otlp_task = None
        if self._telemetry_store is not None:
            with contextlib.suppress(Exception):
                await self._telemetry_store.aclose()
            self._telemetry_store = None

    async def _ensure_platform_resource(self) -> None:
        """The Platform resource carries the event timeout and size httpsrv enforces."""
        typed = self.resources
        try:
            await typed.get(Platform, self.settings.name)
        except LookupError:
            platform = Platform.model_validate(
                {"metadata": {"name": self.settings.name}, "spec": {}}
            )
            with contextlib.suppress(KubeFoxError):  # lost a race with another writer
                await typed.create(platform)

    def _role_settings(self) -> tuple[OperatorSettings, BrokerSettings, HttpsrvSettings]:
        s = self.settings
        url = self.nats.url
        operator = OperatorSettings(
            platform=s.name,
            namespace=s.namespace,
            nats_url=url,
            bucket=s.bucket,
            artifacts_bucket=s.artifacts_bucket,
            instances_bucket=s.instances_bucket,
            work_dir=self.state_dir / "operator",
            instance_ttl=s.instance_ttl,
            stop_grace=s.shutdown_grace,
            log_format=s.log_format,
            log_level=s.log_level,
        )
        broker = BrokerSettings(
            platform=s.name,
            namespace=s.namespace,
            nats_url=url,
            bucket=s.bucket,
            shutdown_grace=s.shutdown_grace,
        )
        http = HttpsrvSettings(
            platform=s.name,
            namespace=s.namespace,
            nats_url=url,
            bucket=s.bucket,
            host=s.http_host,
            port=s.http_port or self._remembered_port("http"),
            tls_port=s.https_port or self._remembered_port("https"),
            shutdown_grace=s.shutdown_grace,
        )
        return operator, broker, http

    async def _connecting_as(self, role: PlatformRole, settings: _RoleSettings) -> _RoleSettings:
        """``settings`` with a NATS user of its own for ``role`` (a fresh identity)."""
        options = await self.security.nats_options(role, identity=new_identity())
        return settings.model_copy(
            update={
                "nats_url": options.url,
                "nats_ca_file": options.ca_file,
                "nats_creds_file": options.creds_file,
                "nats_inbox_prefix": options.inbox_prefix,
            }
        )

    def _remembered_port(self, part: str) -> int:
        """Last run's port of ``part`` if it is still free, so printed URLs keep working; else 0."""
        try:
            port = int(json.loads((self.state_dir / PORTS_FILE).read_text())[part])
        except (OSError, ValueError, KeyError, TypeError):
            return 0
        with socket.socket() as probe:
            try:
                probe.bind((self.settings.http_host, port))
            except OSError:
                return 0
        return port

    async def _run_roles(self) -> None:
        operator_settings, broker_settings, http_settings = self._role_settings()
        store = self.store
        self._scheduler = LocalScheduler.from_settings(
            operator_settings,
            self.artifacts,
            credentials=self.security.components,
            readiness=self._registered,
        )
        self._operator_view = ResourceView(store, namespace=self.settings.namespace)
        self._operator = Operator(
            operator_settings,
            store=store,
            artifacts=self.artifacts,
            scheduler=self._scheduler,
            registry=self.registry,
            view=self._operator_view,
            component_env=self._component_env,
            secrets=self._secrets,
        )
        self._view = ResourceView(store, namespace=self.settings.namespace)
        router = Router(self._view, platform=self.settings.name)
        broker_telemetry = self._telemetry.get("broker")
        http_telemetry = self._telemetry.get("httpsrv")
        platform_telemetry = self._telemetry.get("platform")
        metrics = platform_telemetry.metrics if platform_telemetry is not None else None
        self._brokers = [
            Broker(
                await self._connecting_as(PlatformRole.BROKER, broker_settings),
                router=router,
                tracer=broker_telemetry.tracer if broker_telemetry is not None else None,
                metrics=metrics,
                resource_secrets=self._secrets,
            )
            for _ in range(self.settings.brokers)
        ]
        self._http = HttpServer(
            await self._connecting_as(PlatformRole.HTTPSRV, http_settings),
            router=router,
            tracer=http_telemetry.tracer if http_telemetry is not None else None,
            metrics=metrics,
            live=self._live_instances,
            tls=await self._serving_tls(PlatformRole.HTTPSRV),
        )
        api_tls = await self._serving_tls(PlatformRole.API)
        self._telemetry_gauges()
        self.security.count_refusals(metrics)
        async with asyncio.TaskGroup() as tasks:
            view_task = tasks.create_task(self._view.run(), name="router-view")
            for rotator in self._serving_rotators:
                tasks.create_task(rotator.run(), name=f"{rotator.spec.common_name}-rotation")
            roles = [tasks.create_task(self._operator.run(), name="operator")]
            await self._view.wait_ready()
            roles += [
                tasks.create_task(broker.run(), name=f"broker-{index}")
                for index, broker in enumerate(self._brokers)
            ]
            http_task = tasks.create_task(self._http.run(), name="httpsrv")
            roles.append(http_task)
            started = tasks.create_task(self._http.started.wait(), name="httpsrv-started")
            await asyncio.wait({started, http_task}, return_when=asyncio.FIRST_COMPLETED)
            if started.done():
                self._api = self._api_server(api_tls)
                api_task = tasks.create_task(self._api.run(), name="api")
                roles.append(api_task)
                await asyncio.wait(
                    {tasks.create_task(self._api.started.wait()), api_task},
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if not api_task.done():
                    await self._mark_platform_available()
                    self._ready.set()
            else:
                started.cancel()
            await self._stop.wait()
            log.info("platform.stopping")
            self._http.stop()
            if self._api is not None:
                self._api.stop()
            for broker in self._brokers:
                broker.stop()
            self._operator.stop()
            for rotator in self._serving_rotators:
                rotator.stop()
            # every role drains within its own grace; this bound only guards a stuck one
            _, stuck = await asyncio.wait(roles, timeout=self.settings.shutdown_grace * 2)
            for task in (*stuck, view_task):
                task.cancel()

    async def _registered(self, spec: InstanceSpec, instance_id: str) -> None:
        """Return once process ``instance_id`` of ``spec`` has registered: it takes events.

        The scheduler's readiness check at a credential renewal; the Kit registers
        after it has subscribed to its component's subject.
        """

        def registered(records: list[InstanceRecord]) -> bool:
            return any(
                (record.id, record.app, record.name, record.hash)
                == (instance_id, spec.app, spec.component, spec.hash)
                for record in records
            )

        await self.registry.wait_for(registered, timeout=READY_TIMEOUT)

    async def _serving_tls(self, role: PlatformRole) -> ServerTls | None:
        """``role``'s HTTPS context with a certificate from the platform's CA; ``None`` if off.

        The context is reloaded in place at each renewal (new handshakes get
        the new certificate, open connections keep theirs); the rotator runs
        with the roles.
        """
        security = self.security
        if not security.enabled:
            return None
        tls: ServerTls | None = None

        async def reload(files: CertificateFiles) -> None:
            if tls is not None:
                await tls.on_rotated(files)

        hostnames, addresses = certificate_names(self.settings.http_host)
        rotator = await security.certificate(
            role, hostnames=hostnames, ip_addresses=addresses, on_rotated=reload
        )
        tls = ServerTls.from_files(rotator.files)
        self._serving_rotators.append(rotator)
        return tls

    def _api_server(self, tls: ServerTls | None = None) -> ApiServer:
        api = self._api_settings
        if not api.port:
            api = api.model_copy(update={"port": self._remembered_port("api")})
        closing = asyncio.Event()
        app = create_app(
            store=self.store,
            artifacts=self.artifacts,
            view=self.view,
            platform=self.settings.name,
            namespace=self.settings.namespace,
            settings=api,
            registry=self.registry,
            scheduler=self._scheduler,
            endpoints=self.endpoints,
            closing=closing,
            telemetry=self._telemetry_store,
            metrics=self.metrics_text if "platform" in self._telemetry else None,
            recordings=self._recordings,
            secrets=self._secrets,
        )
        return ApiServer(api, app, closing=closing, tls=tls)

    async def _mark_platform_available(self) -> None:
        """Every role serves: say so on the Platform resource, as upstream's operator does."""
        typed = self.resources
        with contextlib.suppress(KubeFoxError):
            platform = await typed.get(Platform, self.settings.name)
            platform.status = PlatformStatus(
                conditions=[
                    Condition(
                        type=ConditionType.AVAILABLE,
                        status=ConditionStatus.TRUE,
                        reason=ConditionReason.PLATFORM_COMPONENTS_AVAILABLE,
                        message="Platform Components are available.",
                        observed_generation=platform.metadata.generation,
                    )
                ]
            )
            await typed.update(platform)


_T = TypeVar("_T")
_RoleSettings = TypeVar("_RoleSettings", BrokerSettings, HttpsrvSettings)


def _insert_log_processor(processor: Any) -> None:
    """Add ``processor`` to structlog's chain, before the renderer (the last one).

    The entry point configured logging before the platform existed; the
    processor list is shared by every logger, so changing it in place reaches
    loggers already made.
    """
    processors = structlog.get_config()["processors"]
    processors.insert(max(0, len(processors) - 1), processor)


def _remove_log_processor(processor: Any) -> None:
    processors = structlog.get_config()["processors"]
    with contextlib.suppress(ValueError):
        processors.remove(processor)


def _yaml_files(path: Path) -> list[tuple[Path, str]]:
    files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")]) if path.is_dir() else [path]
    return [(file, file.read_text()) for file in files]


def _stopped_while_starting() -> None:
    raise KubeFoxError("the platform stopped while starting; see the log above")


def _started(part: _T | None) -> _T:
    if part is None:
        raise RuntimeError("the platform is not started")
    return part
