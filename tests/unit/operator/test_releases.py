"""The VirtualEnvironment controller over a MemoryStore: what it writes, and in which order."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from kubefox.operator.releases import ReleaseController
from kubefox.releases import release, wait_released
from kubefox.resources import (
    AppDeployment,
    ArchiveReason,
    ProblemType,
    ReleaseManifest,
    VirtualEnvironment,
)
from kubefox.router.view import ResourceView
from kubefox.store import MemoryStore
from kubefox.store.typed import LABEL_VIRTUAL_ENVIRONMENT, TypedStore
from tests.unit.releases import world


class Clock:
    """A settable clock for the controller."""

    def __init__(self) -> None:
        self.now = world.T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclasses.dataclass
class Rig:
    store: MemoryStore
    typed: TypedStore
    view: ResourceView
    clock: Clock
    controller: ReleaseController

    async def synced(self) -> None:
        await self.view.wait_for_revision(await self.store.revision())

    async def reconcile(self) -> float | None:
        await self.synced()
        return await self.controller.reconcile()

    async def ve(self, name: str) -> VirtualEnvironment:
        return await self.typed.get(VirtualEnvironment, name)

    async def deploy(self, name: str = "hello-world-v1", **kwargs: Any) -> None:
        """Write an AppDeployment and its status (the operator's other half)."""
        deployment = world.app_deployment(name, **kwargs)
        fresh = deployment.model_copy(deep=True)
        fresh.metadata.resource_version = None
        stored = await self.typed.apply(fresh)
        await self.typed.update(stored.model_copy(update={"status": deployment.status}))

    async def environments(self, *names: str, policy: dict[str, Any] | None = None) -> None:
        for name in names:
            await self.typed.apply(world.environment(name, policy=policy))
            ve = world.virtual_environment(name)
            ve.metadata.resource_version = None
            await self.typed.apply(ve)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    store = MemoryStore()
    typed = TypedStore(store, namespace=world.NAMESPACE)
    view = ResourceView(store, namespace=world.NAMESPACE)
    clock = Clock()
    following = asyncio.create_task(view.run())
    try:
        await view.wait_ready()
        yield Rig(store, typed, view, clock, ReleaseController(typed, view, clock=clock))
    finally:
        await store.aclose()
        await following


async def test_release_is_activated_and_written(rig: Rig) -> None:
    """A requested release with no problems is written active, ReleasePending False."""
    await rig.environments("qa")
    await rig.deploy()
    await release(rig.typed, virtual_environment="qa", ref="v1")

    await rig.reconcile()

    ve = await rig.ve("qa")
    assert ve.status is not None
    assert ve.status.active_release is not None
    assert ve.status.active_release.apps["hello-world"].app_deployment == "hello-world-v1"
    assert await rig.typed.find(ReleaseManifest) == []


async def test_stable_release_writes_its_manifest_before_the_status(rig: Rig) -> None:
    """The manifest exists, labelled with its VE and Environment, when the status names it."""
    await rig.environments("prod")
    await rig.deploy()
    await release(rig.typed, virtual_environment="prod", ref="hello-world-v1")

    await rig.reconcile()

    ve = await rig.ve("prod")
    assert ve.status is not None
    assert ve.status.active_release is not None
    [manifest] = await rig.typed.find(ReleaseManifest)
    assert ve.status.active_release.release_manifest == manifest.metadata.name
    assert manifest.metadata.labels[LABEL_VIRTUAL_ENVIRONMENT] == "prod"
    assert manifest.metadata.labels["kubefox.xigxog.io/environment"] == "prod"


async def test_a_second_pass_writes_nothing(rig: Rig) -> None:
    """Once settled, a pass leaves the store alone (no write loop through the view)."""
    await rig.environments("qa")
    await rig.deploy()
    await release(rig.typed, virtual_environment="qa", ref="v1")
    await rig.reconcile()
    revision = await rig.store.revision()

    await rig.reconcile()

    assert await rig.store.revision() == revision


async def test_manifests_trimmed_out_of_history_are_deleted(rig: Rig) -> None:
    """With a history of one, the manifest of the release two back is deleted."""
    await rig.environments("prod", policy={"historyLimits": {"count": 1}})
    for version in ("v1", "v2", "v3"):
        await rig.deploy(f"hello-world-{version}", version=version)
        await release(rig.typed, virtual_environment="prod", ref=version)
        rig.clock.advance(60)
        await rig.reconcile()

    ve = await rig.ve("prod")
    assert ve.status is not None
    kept = {ve.status.active_release.release_manifest} | {  # type: ignore[union-attr]
        entry.release_manifest for entry in ve.status.release_history
    }
    assert {m.metadata.name for m in await rig.typed.find(ReleaseManifest)} == kept
    assert len(kept) == 2


async def test_missed_deadline_is_archived_then_rolled_back(rig: Rig) -> None:
    """A release still pending at its deadline is archived, then spec.release is restored."""
    await rig.environments("prod", policy={"activationDeadlineSeconds": 3})
    await rig.deploy()
    await rig.deploy("hello-world-main", version=None)
    await release(rig.typed, virtual_environment="prod", ref="v1")
    await rig.reconcile()
    await release(rig.typed, virtual_environment="prod", ref="hello-world-main")
    requeue = await rig.reconcile()
    assert requeue is not None
    assert 3 <= requeue < 3.1

    rig.clock.advance(3)
    await rig.reconcile()
    await rig.reconcile()

    ve = await rig.ve("prod")
    assert ve.spec.release is not None
    assert ve.spec.release.apps["hello-world"].app_deployment == "hello-world-v1"
    assert ve.status is not None
    assert ve.status.pending_release_failed is False
    failed = ve.status.release_history[0]
    assert failed.archive_reason is ArchiveReason.PENDING_DEADLINE_EXCEEDED
    assert [p.type for p in failed.problems] == [ProblemType.POLICY_VIOLATION]


async def test_first_of_two_colliding_requests_wins_and_the_other_conflicts(rig: Rig) -> None:
    """Two releases whose routes collide: the one requested first activates, RouteConflict later."""
    await rig.environments("qa")
    twin = world.virtual_environment("qa-twin", env="qa")
    twin.metadata.resource_version = None
    await rig.typed.apply(twin)
    await rig.deploy(status={})  # not available yet: both requests stay pending
    await release(rig.typed, virtual_environment="qa-twin", ref="v1")
    await rig.reconcile()
    rig.clock.advance(1)
    await release(rig.typed, virtual_environment="qa", ref="v1")
    await rig.reconcile()

    await rig.deploy()
    rig.clock.advance(1)
    await rig.reconcile()

    first, second = await rig.ve("qa-twin"), await rig.ve("qa")
    assert first.status is not None
    assert second.status is not None
    assert first.status.active_release is not None
    assert second.status.active_release is None
    assert second.status.pending_release is not None
    assert [p.type for p in second.status.pending_release.problems] == [ProblemType.ROUTE_CONFLICT]


async def test_manifests_of_a_deleted_virtual_environment_are_deleted(rig: Rig) -> None:
    """Nothing can use the manifests of a VE that is gone: they are removed."""
    await rig.environments("prod")
    await rig.deploy()
    await release(rig.typed, virtual_environment="prod", ref="v1")
    await rig.reconcile()

    await rig.typed.delete(VirtualEnvironment, "prod")
    await rig.reconcile()

    assert await rig.typed.find(ReleaseManifest) == []


async def test_running_controller_activates_a_release_wait_released_sees(rig: Rig) -> None:
    """run() follows the view: a release written is activated and wait_released returns it."""
    await rig.environments("qa")
    await rig.deploy()
    running = asyncio.create_task(rig.controller.run())
    try:
        written = await release(rig.typed, virtual_environment="qa", ref="v1")

        ve = await wait_released(rig.view, "qa", timeout=5, release=written.spec.release)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running

    assert ve.status is not None
    assert ve.status.active_release is not None
    assert (await rig.typed.get(AppDeployment, "hello-world-v1")).metadata.name == "hello-world-v1"
