"""The operator against a real nats-server, with real component processes.

The components are plain Python scripts, not Kit apps, so these tests pin the
operator's side of the contract only: the script reads the ``KUBEFOX_KIT_*``
variables the operator injects, registers in the instances bucket every
second, and deletes its record and exits 0 on SIGTERM. Every test uses its
own platform name and buckets, so tests share the session server safely.
Synchronisation is on events: the view (``wait_available``), the registry
(``wait_for``) and scheduler notifications, and pidfds for process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest

from kubefox.core.errors import UnavailableError
from kubefox.operator import (
    LocalScheduler,
    Operator,
    OperatorSettings,
    instance_key,
)
from kubefox.resources import AppDeployment, ConditionStatus
from kubefox.router.view import ResourceView
from kubefox.store.artifacts import artifact_name
from kubefox.store.instance_records import record_key
from kubefox.store.instances import InstanceRegistry
from kubefox.store.jetstream import JetStreamStore
from kubefox.store.jetstream_objects import JetStreamArtifactStore
from kubefox.store.typed import TypedStore
from tests.unit.operator.helpers import (
    BACKEND_HASH,
    FRONTEND_HASH,
    NAMESPACE,
    Signal,
    app_deployment,
    is_alive,
    tar_gz,
    wait_exited,
)

pytestmark = pytest.mark.integration

APP = "hello-world"
BACKEND = instance_key(APP, "backend", BACKEND_HASH)

#: A component as the operator sees one: registers while it runs, leaves on SIGTERM.
COMPONENT = """
import asyncio, json, os, signal
from datetime import datetime, timezone

import nats


def now() -> None:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


async def main() -> None:
    env = os.environ
    parts = ("PLATFORM", "APP", "NAME", "HASH", "INSTANCE_ID")
    key = ".".join(env["KUBEFOX_KIT_" + part] for part in parts)
    client = await nats.connect(env["KUBEFOX_KIT_NATS_URL"])
    kv = await client.jetstream().key_value(env["KUBEFOX_KIT_INSTANCES_BUCKET"])
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    record = {
        "platform": env["KUBEFOX_KIT_PLATFORM"],
        "app": env["KUBEFOX_KIT_APP"],
        "name": env["KUBEFOX_KIT_NAME"],
        "hash": env["KUBEFOX_KIT_HASH"],
        "id": env["KUBEFOX_KIT_INSTANCE_ID"],
        "pid": os.getpid(),
        "startedAt": now(),
        "definition": {"type": "KubeFox"},
    }
    while not stop.is_set():
        record["heartbeatAt"] = now()
        await kv.put(key, json.dumps(record).encode())
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except asyncio.TimeoutError:
            pass
    await kv.delete(key)
    await client.close()


asyncio.run(main())
"""

#: A component that gives up at once, every time.
CRASHING = "import sys\nprint('cannot start', flush=True)\nsys.exit(1)\n"


@dataclasses.dataclass
class Harness:
    settings: OperatorSettings
    store: JetStreamStore
    typed: TypedStore
    artifacts: JetStreamArtifactStore
    registry: InstanceRegistry
    scheduler: LocalScheduler
    operator: Operator
    changes: Signal
    pids: set[int]

    async def publish(self, component: str, hash_: str, script: str) -> None:
        data = tar_gz({"main.py": script})
        await self.artifacts.put(artifact_name(APP, component, hash_), data)

    def pid_of(self, key: str) -> int | None:
        return next((s.pid for s in self.scheduler.instances() if s.key == key), None)

    def registered_pids(self) -> set[int]:
        return {r.pid for r in self.registry.records() if r.pid is not None}


@contextlib.asynccontextmanager
async def operating(nats_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    """A running operator with its own platform and buckets; stopped at the end."""
    uid = uuid.uuid4().hex[:10]
    settings = OperatorSettings(
        platform=f"p{uid}",
        namespace=NAMESPACE,
        nats_url=nats_url,
        bucket=f"res-{uid}",
        artifacts_bucket=f"art-{uid}",
        instances_bucket=f"inst-{uid}",
        work_dir=tmp_path / "operator",
        instance_ttl=3.0,
        restart_backoff_initial=0.1,
        restart_backoff_max=0.4,
        restart_backoff_reset=5.0,
        failed_after_restarts=3,
        stop_grace=3.0,
        reconcile_debounce=0.02,
        resync_interval=1.0,
    )
    store = await JetStreamStore.connect(nats_url, bucket=settings.bucket)
    artifacts = await JetStreamArtifactStore.connect(nats_url, bucket=settings.artifacts_bucket)
    registry = await InstanceRegistry.connect(
        nats_url,
        bucket=settings.instances_bucket,
        platform=settings.platform,
        ttl=settings.instance_ttl,
    )
    scheduler = LocalScheduler.from_settings(settings, artifacts)
    view = ResourceView(store, namespace=NAMESPACE)
    operator = Operator(
        settings,
        store=store,
        artifacts=artifacts,
        scheduler=scheduler,
        registry=registry,
        view=view,
    )
    changes = Signal()
    pids: set[int] = set()

    def track() -> None:
        pids.update(s.pid for s in scheduler.instances() if s.pid is not None)
        changes()

    scheduler.on_change(track)
    registry.on_change(changes)
    harness = Harness(
        settings,
        store,
        TypedStore(store, namespace=NAMESPACE),
        artifacts,
        registry,
        scheduler,
        operator,
        changes,
        pids,
    )
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(operator.run())
            try:
                yield harness
            finally:
                operator.stop()
    finally:
        await registry.aclose()
        await artifacts.aclose()
        await store.aclose()
    for pid in pids:
        await wait_exited(pid, timeout=1.0)
        assert not is_alive(pid), f"process {pid} outlived the operator"


async def test_component_starts_registers_and_deployment_becomes_available(
    nats_url: str, tmp_path: Path
) -> None:
    """The instance starts and registers; Available=True and Progressing=False/Deployed."""
    async with operating(nats_url, tmp_path) as h:
        await h.publish("backend", BACKEND_HASH, COMPONENT)

        await h.typed.create(app_deployment("dep-a", {"backend": BACKEND_HASH}))
        appdep = await h.operator.wait_available("dep-a", timeout=10)

        assert appdep.status is not None
        assert [(c.type, c.status, c.reason) for c in appdep.status.conditions] == [
            ("Available", ConditionStatus.TRUE, "ComponentsAvailable"),
            ("Progressing", ConditionStatus.FALSE, "ComponentsDeployed"),
        ]
        assert appdep.status.problems == []
        pid = h.pid_of(BACKEND)
        assert pid is not None
        assert h.registered_pids() == {pid}


async def test_killed_instance_is_restarted_and_registers_again(
    nats_url: str, tmp_path: Path
) -> None:
    """SIGKILL: the supervisor starts a new process, which registers under a new pid."""
    async with operating(nats_url, tmp_path) as h:
        await h.publish("backend", BACKEND_HASH, COMPONENT)
        await h.typed.create(app_deployment("dep-a", {"backend": BACKEND_HASH}))
        await h.operator.wait_available("dep-a", timeout=10)
        first = h.pid_of(BACKEND)
        assert first is not None

        os.kill(first, signal.SIGKILL)
        await h.changes.until(
            lambda: (pid := h.pid_of(BACKEND)) not in (None, first) and pid in h.registered_pids(),
            timeout=10,
        )

        (state,) = h.scheduler.instances()
        assert (state.restarts, state.last_exit_code) == (1, -signal.SIGKILL)
        assert not is_alive(first)


async def test_deployments_sharing_a_hash_share_the_process(nats_url: str, tmp_path: Path) -> None:
    """A second deployment of the same hash adds no process; deleting both stops it."""
    async with operating(nats_url, tmp_path) as h:
        await h.publish("backend", BACKEND_HASH, COMPONENT)
        await h.publish("frontend", FRONTEND_HASH, COMPONENT)
        await h.typed.create(app_deployment("dep-a", {"backend": BACKEND_HASH}))
        await h.operator.wait_available("dep-a", timeout=10)
        pid = h.pid_of(BACKEND)

        await h.typed.create(app_deployment("dep-b", {"backend": BACKEND_HASH}))
        await h.operator.wait_available("dep-b", timeout=10)
        assert [(s.key, s.pid) for s in h.scheduler.instances()] == [(BACKEND, pid)]

        await h.typed.delete(AppDeployment, "dep-a")
        # A deployment created after the delete is reconciled after it, too.
        await h.typed.create(
            app_deployment("dep-c", {"backend": BACKEND_HASH, "frontend": FRONTEND_HASH})
        )
        await h.operator.wait_available("dep-c", timeout=10)
        assert h.pid_of(BACKEND) == pid

        await h.typed.delete(AppDeployment, "dep-b")
        await h.typed.delete(AppDeployment, "dep-c")
        await h.changes.until(lambda: h.scheduler.instances() == [], timeout=10)

        assert pid is not None
        await wait_exited(pid)
        await h.registry.wait_for(lambda records: records == [], timeout=5)


async def test_component_that_keeps_exiting_fails_the_deployment(
    nats_url: str, tmp_path: Path
) -> None:
    """Restarted with backoff until the deployment reports ComponentDeploymentFailed."""
    async with operating(nats_url, tmp_path) as h:
        await h.publish("backend", BACKEND_HASH, CRASHING)
        await h.typed.create(app_deployment("dep-a", {"backend": BACKEND_HASH}))

        with pytest.raises(UnavailableError) as failed:
            await h.operator.wait_available("dep-a", timeout=10)

        assert failed.value.cause == "AppDeployment dep-a failed: ComponentDeploymentFailed"
        appdep = await h.typed.get(AppDeployment, "dep-a")
        assert appdep.status is not None
        assert [(c.status, c.reason) for c in appdep.status.conditions] == [
            (ConditionStatus.FALSE, "ComponentUnavailable"),
            (ConditionStatus.FALSE, "ComponentDeploymentFailed"),
        ]
        assert [p.type for p in appdep.status.problems] == [
            "DeploymentUnavailable",
            "DeploymentFailed",
        ]
        (state,) = h.scheduler.instances()
        assert state.restarts >= 3
        assert state.last_exit_code == 1
        log = tmp_path / "operator" / "logs" / f"{APP}-backend-{BACKEND_HASH[:7]}.log"
        assert "cannot start" in log.read_text()


async def test_missing_artifact_is_reported_then_picked_up(nats_url: str, tmp_path: Path) -> None:
    """No artifact: a problem on the deployment; once published, the component runs."""
    async with operating(nats_url, tmp_path) as h:
        await h.typed.create(app_deployment("dep-a", {"backend": BACKEND_HASH}))
        with pytest.raises(UnavailableError) as failed:
            await h.operator.wait_available("dep-a", timeout=10)
        problem = failed.value.details["problems"][0]
        assert problem["type"] == "DeploymentNotFound"
        assert problem["message"] == (
            f'Component artifact "{artifact_name(APP, "backend", BACKEND_HASH)}" not found.'
        )

        await h.publish("backend", BACKEND_HASH, COMPONENT)

        await h.changes.until(lambda: h.registered_pids() != set(), timeout=10)
        await h.operator.wait_available("dep-a", timeout=10)


async def test_stopping_the_operator_leaves_no_process(nats_url: str, tmp_path: Path) -> None:
    """After the operator stops, none of the processes it started is alive."""
    async with operating(nats_url, tmp_path) as h:
        await h.publish("backend", BACKEND_HASH, COMPONENT)
        await h.publish("frontend", FRONTEND_HASH, COMPONENT)
        await h.typed.create(
            app_deployment("dep-a", {"backend": BACKEND_HASH, "frontend": FRONTEND_HASH})
        )
        await h.operator.wait_available("dep-a", timeout=10)
        pids = {s.pid for s in h.scheduler.instances()}
        assert len(pids) == 2

    for pid in pids:
        assert pid is not None
        assert not is_alive(pid)


@contextlib.asynccontextmanager
async def following_registry(nats_url: str, *, ttl: float) -> AsyncIterator[InstanceRegistry]:
    """An InstanceRegistry on a fresh bucket, followed for the block."""
    uid = uuid.uuid4().hex[:10]
    registry = await InstanceRegistry.connect(
        nats_url, bucket=f"inst-{uid}", platform="demo", ttl=ttl
    )
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(registry.run())
            await registry.wait_ready()
            try:
                yield registry
            finally:
                await registry.aclose()
    finally:
        await registry.aclose()


async def put_record(nats_url: str, bucket: str, key: str, data: bytes) -> None:
    client = await nats.connect(nats_url)
    try:
        kv = await client.jetstream().key_value(bucket)
        await kv.put(key, data)
    finally:
        await client.close()


async def test_registry_sees_its_platform_only_and_forgets_stale_records(nats_url: str) -> None:
    """Records of other platforms are ignored; one not refreshed within the TTL expires."""
    async with following_registry(nats_url, ttl=0.5) as registry:
        bucket = registry.bucket
        ours = record_key("demo", APP, "backend", BACKEND_HASH, "inst1")
        await put_record(nats_url, bucket, record_key("other", APP, "x", BACKEND_HASH, "i"), b"{}")
        await put_record(nats_url, bucket, ours, b'{"pid": 12}')

        records = await registry.wait_for(lambda rs: [r.key for r in rs] == [ours], timeout=5)
        assert records[0].pid == 12

        await registry.wait_for(lambda rs: rs == [], timeout=5)


async def test_registry_reads_what_the_bucket_held_before_it_started(nats_url: str) -> None:
    """Records written before the registry started are there once it is ready."""
    uid = uuid.uuid4().hex[:10]
    bucket = f"inst-{uid}"
    first = await InstanceRegistry.connect(nats_url, bucket=bucket, platform="demo", ttl=30)
    await first.aclose()  # only to create the bucket
    key = record_key("demo", APP, "backend", BACKEND_HASH, "inst1")
    await put_record(nats_url, bucket, key, b"{}")
    registry = await InstanceRegistry.connect(nats_url, bucket=bucket, platform="demo", ttl=30)

    async with asyncio.TaskGroup() as tg:
        tg.create_task(registry.run())
        await registry.wait_ready()
        keys = [r.key for r in registry.records()]
        await registry.aclose()

    assert keys == [key]
