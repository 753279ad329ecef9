"""The Operator against a MemoryStore, a fake scheduler and fake registrations."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator

import pytest

from kubefox.core.errors import DeadlineExceededError, UnavailableError
from kubefox.operator import Operator, OperatorSettings, instance_key, referenced_components
from kubefox.resources import AppDeployment, ConditionStatus, ProblemType
from kubefox.router.view import ResourceView
from kubefox.store import MemoryStore
from kubefox.store.artifacts import MemoryArtifactStore, artifact_name
from kubefox.store.typed import TypedStore
from tests.unit.operator.helpers import (
    BACKEND_HASH,
    FRONTEND_HASH,
    FRONTEND_HASH_2,
    NAMESPACE,
    FakeRegistry,
    FakeScheduler,
    Signal,
    app_deployment,
    tar_gz,
)

APP = "hello-world"
BACKEND = instance_key(APP, "backend", BACKEND_HASH)
FRONTEND = instance_key(APP, "frontend", FRONTEND_HASH)
FRONTEND_2 = instance_key(APP, "frontend", FRONTEND_HASH_2)


@dataclasses.dataclass
class Rig:
    store: MemoryStore
    typed: TypedStore
    view: ResourceView
    artifacts: MemoryArtifactStore
    scheduler: FakeScheduler
    registry: FakeRegistry
    operator: Operator

    async def synced(self) -> None:
        """Wait until the view holds every write made so far."""
        await self.view.wait_for_revision(await self.store.revision())

    async def publish(self, *hashes: tuple[str, str]) -> None:
        for component, hash_ in hashes:
            await self.artifacts.put(artifact_name(APP, component, hash_), tar_gz({"main.py": ""}))

    async def status_of(self, name: str) -> AppDeployment:
        return await self.typed.get(AppDeployment, name)


def settings(**overrides: object) -> OperatorSettings:
    values: dict[str, object] = {
        "namespace": NAMESPACE,
        "reconcile_debounce": 0.0,
        "failed_after_restarts": 3,
    }
    values.update(overrides)
    return OperatorSettings(**values)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def rig(*, run_operator: bool = False) -> AsyncIterator[Rig]:
    """An operator with its fakes; the view follows the store, the operator runs if asked."""
    store = MemoryStore()
    view = ResourceView(store, namespace=NAMESPACE)
    artifacts = MemoryArtifactStore()
    scheduler = FakeScheduler()
    registry = FakeRegistry()
    operator = Operator(
        settings(),
        store=store,
        artifacts=artifacts,
        scheduler=scheduler,
        registry=registry,
        view=view,
    )
    r = Rig(
        store,
        TypedStore(store, namespace=NAMESPACE),
        view,
        artifacts,
        scheduler,
        registry,
        operator,
    )
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(operator.run() if run_operator else view.run())
        await view.wait_ready()
        try:
            yield r
        finally:
            if run_operator:
                operator.stop()
            else:
                task.cancel()


async def test_shared_backend_runs_once_and_each_frontend_once() -> None:
    """Two deployments sharing a backend hash: one backend instance set, two frontends."""
    async with rig() as r:
        await r.publish(("backend", BACKEND_HASH), ("frontend", FRONTEND_HASH))
        await r.publish(("frontend", FRONTEND_HASH_2))
        await r.typed.create(
            app_deployment("hello-main", {"backend": BACKEND_HASH, "frontend": FRONTEND_HASH})
        )
        await r.typed.create(
            app_deployment("hello-dev", {"backend": BACKEND_HASH, "frontend": FRONTEND_HASH_2})
        )
        await r.synced()

        await r.operator.reconcile()

        assert sorted(r.scheduler.specs) == sorted([BACKEND, FRONTEND, FRONTEND_2])


async def test_instance_spec_tells_the_component_who_it_is() -> None:
    """The spec names the artifact and carries the KUBEFOX_KIT_* identity and platform."""
    async with rig() as r:
        await r.publish(("backend", BACKEND_HASH))
        await r.typed.create(app_deployment("hello-main", {"backend": BACKEND_HASH}))
        await r.synced()

        await r.operator.reconcile()

        spec = r.scheduler.specs[BACKEND]
        assert spec.artifact == artifact_name(APP, "backend", BACKEND_HASH)
        assert {
            k: v
            for k, v in spec.env.items()
            if k not in {"KUBEFOX_KIT_HEARTBEAT_INTERVAL", "KUBEFOX_KIT_SHUTDOWN_GRACE"}
        } == {
            "KUBEFOX_KIT_PLATFORM": "demo",
            "KUBEFOX_KIT_APP": APP,
            "KUBEFOX_KIT_NAME": "backend",
            "KUBEFOX_KIT_HASH": BACKEND_HASH,
            "KUBEFOX_KIT_NATS_URL": "nats://127.0.0.1:4222",
            "KUBEFOX_KIT_LOG_FORMAT": "console",
            "KUBEFOX_KIT_LOG_LEVEL": "info",
            "KUBEFOX_KIT_INSTANCES_BUCKET": "kubefox-instances",
        }
        assert spec.env["KUBEFOX_KIT_HEARTBEAT_INTERVAL"] == "5"


async def test_unreferenced_instance_sets_are_removed() -> None:
    """Deleting the only deployment that used a hash removes that instance set only."""
    async with rig() as r:
        await r.publish(("backend", BACKEND_HASH), ("frontend", FRONTEND_HASH))
        await r.publish(("frontend", FRONTEND_HASH_2))
        await r.typed.create(
            app_deployment("hello-main", {"backend": BACKEND_HASH, "frontend": FRONTEND_HASH})
        )
        await r.typed.create(
            app_deployment("hello-dev", {"backend": BACKEND_HASH, "frontend": FRONTEND_HASH_2})
        )
        await r.synced()
        await r.operator.reconcile()

        await r.typed.delete(AppDeployment, "hello-dev")
        await r.synced()
        await r.operator.reconcile()

        assert r.scheduler.removed == [FRONTEND_2]
        assert sorted(r.scheduler.specs) == sorted([BACKEND, FRONTEND])


async def test_an_ensured_instance_set_is_not_ensured_again() -> None:
    """A pass with nothing new leaves running instance sets alone."""
    async with rig() as r:
        await r.publish(("backend", BACKEND_HASH))
        await r.typed.create(app_deployment("hello-main", {"backend": BACKEND_HASH}))
        await r.synced()
        await r.operator.reconcile()

        await r.operator.reconcile()

        assert r.scheduler.ensure_calls == [BACKEND]


async def test_available_once_every_component_registered() -> None:
    """Available=True/ComponentsAvailable and Progressing=False/ComponentsDeployed, written."""
    async with rig() as r:
        await r.publish(("backend", BACKEND_HASH), ("frontend", FRONTEND_HASH))
        await r.typed.create(
            app_deployment("hello-main", {"backend": BACKEND_HASH, "frontend": FRONTEND_HASH})
        )
        await r.synced()
        await r.operator.reconcile()
        r.registry.register(APP, "backend", BACKEND_HASH)
        r.registry.register(APP, "frontend", FRONTEND_HASH)

        await r.operator.reconcile()

        status = (await r.status_of("hello-main")).status
        assert status is not None
        assert [(c.type, c.status, c.reason, c.observed_generation) for c in status.conditions] == [
            ("Available", ConditionStatus.TRUE, "ComponentsAvailable", 1),
            ("Progressing", ConditionStatus.FALSE, "ComponentsDeployed", 1),
        ]
        assert status.problems == []


async def test_registration_of_another_platform_does_not_count() -> None:
    """Only registrations of this operator's platform make a component available."""
    async with rig() as r:
        await r.publish(("backend", BACKEND_HASH))
        await r.typed.create(app_deployment("hello-main", {"backend": BACKEND_HASH}))
        await r.synced()
        r.registry.register(APP, "backend", BACKEND_HASH, platform="other")

        await r.operator.reconcile()

        status = (await r.status_of("hello-main")).status
        assert status is not None
        assert status.conditions[0].reason == "ComponentUnavailable"


async def test_status_is_written_only_when_it_changes() -> None:
    """A second pass over unchanged state writes nothing: the store revision stays."""
    async with rig() as r:
        await r.publish(("backend", BACKEND_HASH))
        await r.typed.create(app_deployment("hello-main", {"backend": BACKEND_HASH}))
        await r.synced()
        await r.operator.reconcile()
        await r.synced()
        written = await r.store.revision()

        await r.operator.reconcile()
        r.scheduler.set_state(BACKEND, pid=99)  # nothing a status shows
        await r.operator.reconcile()

        assert await r.store.revision() == written


async def test_lost_race_on_status_is_retried() -> None:
    """A status write that loses the compare-and-set is recomputed on the fresh resource."""
    async with rig() as r:
        await r.publish(("backend", BACKEND_HASH))
        await r.typed.create(app_deployment("hello-main", {"backend": BACKEND_HASH}))
        await r.synced()
        stale = r.view.get(AppDeployment, "hello-main")
        assert stale is not None
        current = await r.status_of("hello-main")
        current.metadata.labels["touched"] = "yes"
        await r.typed.update(current)  # someone else wrote after the view's copy
        r.registry.register(APP, "backend", BACKEND_HASH)
        wanted = referenced_components([stale])

        await r.operator._report(stale, r.operator._observe(wanted), {})

        fresh = await r.status_of("hello-main")
        assert fresh.metadata.labels["touched"] == "yes"
        assert fresh.status is not None
        assert fresh.status.conditions[0].reason == "ComponentsAvailable"


async def test_missing_artifact_is_a_problem_not_a_start() -> None:
    """Without its artifact a component is not started and its deployment says why."""
    async with rig() as r:
        await r.publish(("backend", BACKEND_HASH))
        await r.typed.create(
            app_deployment("hello-main", {"backend": BACKEND_HASH, "frontend": FRONTEND_HASH})
        )
        await r.synced()

        await r.operator.reconcile()

        assert sorted(r.scheduler.specs) == [BACKEND]
        status = (await r.status_of("hello-main")).status
        assert status is not None
        assert [(c.type, c.reason) for c in status.conditions] == [
            ("Available", "ComponentUnavailable"),
            ("Progressing", "ComponentDeploymentFailed"),
        ]
        missing = artifact_name(APP, "frontend", FRONTEND_HASH)
        assert (ProblemType.DEPLOYMENT_NOT_FOUND, f'Component artifact "{missing}" not found.') in [
            (p.type, p.message) for p in status.problems
        ]


async def test_artifact_appearing_later_is_picked_up() -> None:
    """A pass after the artifact was stored starts the component."""
    async with rig() as r:
        await r.typed.create(app_deployment("hello-main", {"backend": BACKEND_HASH}))
        await r.synced()
        await r.operator.reconcile()

        await r.publish(("backend", BACKEND_HASH))
        await r.operator.reconcile()

        assert sorted(r.scheduler.specs) == [BACKEND]


async def test_running_operator_follows_changes_until_available() -> None:
    """Run: a new deployment is started, becomes available on registration; stop closes all."""
    async with rig(run_operator=True) as r:
        changes = Signal()
        r.scheduler.on_change(changes)
        await r.publish(("backend", BACKEND_HASH))
        await r.typed.create(app_deployment("hello-main", {"backend": BACKEND_HASH}))
        await changes.until(lambda: BACKEND in r.scheduler.specs)

        r.registry.register(APP, "backend", BACKEND_HASH)
        appdep = await r.operator.wait_available("hello-main", timeout=5)

        assert appdep.status is not None
        assert appdep.status.conditions[1].reason == "ComponentsDeployed"
    assert r.scheduler.closed


async def test_wait_available_fails_fast_on_a_failed_rollout() -> None:
    """wait_available raises UnavailableError once the rollout has failed."""
    async with rig(run_operator=True) as r:
        await r.typed.create(app_deployment("hello-main", {"backend": BACKEND_HASH}))

        with pytest.raises(UnavailableError) as caught:
            await r.operator.wait_available("hello-main", timeout=5)

        assert caught.value.details["problems"][0]["type"] == "DeploymentNotFound"


async def test_wait_available_has_a_deadline() -> None:
    """wait_available gives up with DeadlineExceededError."""
    async with rig(run_operator=True) as r:
        await r.publish(("backend", BACKEND_HASH))
        await r.typed.create(app_deployment("hello-main", {"backend": BACKEND_HASH}))

        with pytest.raises(DeadlineExceededError):
            await r.operator.wait_available("hello-main", timeout=0.2)


async def test_stop_is_idempotent_and_run_is_once() -> None:
    """stop() may be called twice; a stopped operator cannot run again."""
    async with rig(run_operator=True) as r:
        r.operator.stop()
        r.operator.stop()

    with pytest.raises(RuntimeError):
        await r.operator.run()
