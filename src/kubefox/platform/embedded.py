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
import contextlib
import json
import socket
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit

import structlog

from kubefox.adapters.http import HttpServer, HttpsrvSettings
from kubefox.api import ApiServer, ApiSettings, create_app
from kubefox.broker import Broker, BrokerSettings
from kubefox.core.errors import KubeFoxError
from kubefox.operator import LocalScheduler, Operator, OperatorSettings, wait_available
from kubefox.platform.settings import PlatformSettings
from kubefox.publish import PublishResult, publish
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
from kubefox.store.instances import InstanceRegistry
from kubefox.store.jetstream import JetStreamStore
from kubefox.store.jetstream_objects import JetStreamArtifactStore
from kubefox.store.natsd import EmbeddedNatsServer
from kubefox.store.typed import TypedStore

log = structlog.get_logger(__name__)

#: File in the state directory recording where each part listens (removed on stop).
ENDPOINTS_FILE = "endpoints.json"
#: File in the state directory remembering the ports chosen last time (kept on stop).
PORTS_FILE = "ports.json"


class EmbeddedPlatform:
    """Every part of one platform on this machine, started and stopped together."""

    def __init__(self, settings: PlatformSettings, *, api: ApiSettings | None = None) -> None:
        self.settings = settings
        # Library code never reads the environment: defaults unless the entry point passed some.
        self._api_settings = api or ApiSettings.model_construct(host=settings.http_host)
        self._api: ApiServer | None = None
        self.state_dir = Path(settings.state_dir).resolve()
        self.nats = EmbeddedNatsServer(self.state_dir / "nats", port=settings.nats_port)
        self._store: JetStreamStore | None = None
        self._artifacts: JetStreamArtifactStore | None = None
        self._registry: InstanceRegistry | None = None
        self._operator: Operator | None = None
        self._scheduler: LocalScheduler | None = None
        self._brokers: list[Broker] = []
        self._http: HttpServer | None = None
        self._view: ResourceView | None = None
        self._operator_view: ResourceView | None = None
        self._runner: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._ready = asyncio.Event()

    # -- what callers use -------------------------------------------------------------

    @property
    def store(self) -> JetStreamStore:
        """The raw resource store; valid between :meth:`start` and :meth:`stop`."""
        return _started(self._store)

    @property
    def resources(self) -> TypedStore:
        """Typed access to the platform's namespace of the resource store."""
        return TypedStore(self.store, namespace=self.settings.namespace)

    @property
    def artifacts(self) -> JetStreamArtifactStore:
        """The component artifact store (JetStream object store)."""
        return _started(self._artifacts)

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
    def http_url(self) -> str:
        """Base URL of httpsrv, e.g. ``http://127.0.0.1:8080``."""
        return _started(self._http).url

    @property
    def api_url(self) -> str:
        """Base URL of the control-plane API, e.g. ``http://127.0.0.1:8081``."""
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
            "brokers": len(self._brokers),
            "stateDir": str(self.state_dir),
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
        await self.nats.start()
        try:
            await self._open_stores()
            await self._ensure_platform_resource()
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
        (self.state_dir / PORTS_FILE).write_text(json.dumps({"http": http_port, "api": api_port}))
        log.info("platform.started", **self.endpoints())

    async def stop(self) -> None:
        """Stop everything :meth:`start` started, in reverse order. Idempotent."""
        self._stop.set()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await runner
        for closer in (self._registry, self._artifacts, self._store):
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer.aclose()
        self._registry = self._artifacts = self._store = None
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

    async def _open_stores(self) -> None:
        s = self.settings
        self._store = await JetStreamStore.connect(self.nats.url, bucket=s.bucket)
        self._artifacts = await JetStreamArtifactStore.connect(
            self.nats.url, bucket=s.artifacts_bucket
        )
        self._registry = await InstanceRegistry.connect(
            self.nats.url, bucket=s.instances_bucket, platform=s.name, ttl=s.instance_ttl
        )

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
            shutdown_grace=s.shutdown_grace,
        )
        return operator, broker, http

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
        self._scheduler = LocalScheduler.from_settings(operator_settings, self.artifacts)
        self._operator_view = ResourceView(store, namespace=self.settings.namespace)
        self._operator = Operator(
            operator_settings,
            store=store,
            artifacts=self.artifacts,
            scheduler=self._scheduler,
            registry=self.registry,
            view=self._operator_view,
        )
        self._view = ResourceView(store, namespace=self.settings.namespace)
        router = Router(self._view, platform=self.settings.name)
        self._brokers = [
            Broker(broker_settings, router=router) for _ in range(self.settings.brokers)
        ]
        self._http = HttpServer(http_settings, router=router)
        async with asyncio.TaskGroup() as tasks:
            view_task = tasks.create_task(self._view.run(), name="router-view")
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
                self._api = self._api_server()
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
            # every role drains within its own grace; this bound only guards a stuck one
            _, stuck = await asyncio.wait(roles, timeout=self.settings.shutdown_grace * 2)
            for task in (*stuck, view_task):
                task.cancel()

    def _api_server(self) -> ApiServer:
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
        )
        return ApiServer(api, app, closing=closing)

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


def _yaml_files(path: Path) -> list[tuple[Path, str]]:
    files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")]) if path.is_dir() else [path]
    return [(file, file.read_text()) for file in files]


def _stopped_while_starting() -> None:
    raise KubeFoxError("the platform stopped while starting; see the log above")


def _started(part: _T | None) -> _T:
    if part is None:
        raise RuntimeError("the platform is not started")
    return part
