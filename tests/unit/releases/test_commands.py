"""The release library API: finding deployments, requesting, history, rollback and waiting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kubefox.core.errors import DeadlineExceededError, InvalidError, NotFoundError, UnavailableError
from kubefox.releases import find_app_deployment, history, release, rollback, wait_released
from kubefox.resources import AppDeployment, Release, VirtualEnvironment
from kubefox.router.view import ResourceView
from kubefox.store import MemoryStore
from kubefox.store.typed import TypedStore
from tests.unit.releases import world

OTHER_COMMIT = "fedcba9876543210fedcba9876543210fedcba98"


@pytest.fixture
async def typed() -> AsyncIterator[TypedStore]:
    store = MemoryStore()
    try:
        yield TypedStore(store, namespace=world.NAMESPACE)
    finally:
        await store.aclose()


async def put(typed: TypedStore, name: str, **kwargs: Any) -> AppDeployment:
    deployment = world.app_deployment(name, **kwargs)
    deployment.metadata.resource_version = None
    return await typed.create(deployment)


async def put_ve(typed: TypedStore, name: str = "qa", **kwargs: Any) -> VirtualEnvironment:
    ve = world.virtual_environment(name, **kwargs)
    ve.metadata.resource_version = None
    return await typed.create(ve)


async def write_status(
    typed: TypedStore, ve: VirtualEnvironment, outcome_of: VirtualEnvironment
) -> VirtualEnvironment:
    """Run the state machine on ``outcome_of`` and write its status onto the stored ``ve``."""
    current = await typed.get(VirtualEnvironment, ve.metadata.name)
    status = world.run(outcome_of).status
    return await typed.update(current.model_copy(update={"status": status}))


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("hello-world-v1", "hello-world-v1"),
        (world.COMMIT, "hello-world-main"),
        (world.COMMIT[:7], "hello-world-main"),
        (world.COMMIT[:10], "hello-world-main"),
        ("v1", "hello-world-v1"),
        ("release-1", "hello-world-v1"),
        ("feature", "hello-world-feature"),
    ],
)
async def test_ref_resolves_like_fox_release(typed: TypedStore, ref: str, expected: str) -> None:
    """Name, then commit (or a prefix), short commit, version, tag, branch, as upstream."""
    await put(typed, "hello-world-main", version=None)
    await put(typed, "hello-world-v1", version="v1", tag="release-1", commit=OTHER_COMMIT)
    await put(typed, "hello-world-feature", version=None, branch="feature", commit="a" * 40)

    found = await find_app_deployment(typed, ref)

    assert found.metadata.name == expected


async def test_branch_shared_by_several_deployments_prefers_the_one_named_after_it(
    typed: TypedStore,
) -> None:
    """v1 was published from main too; "main" means hello-world-main, published as main."""
    await put(typed, "hello-world-main", version=None)
    await put(typed, "hello-world-v1", commit=OTHER_COMMIT)

    found = await find_app_deployment(typed, "main")

    assert found.metadata.name == "hello-world-main"


async def test_ambiguous_ref_lists_the_candidates(typed: TypedStore) -> None:
    """A ref two apps share is an error naming both, and the way out."""
    await put(typed, "hello-world-v1")
    await put(typed, "goodbye-v1", app="goodbye")

    with pytest.raises(InvalidError) as caught:
        await find_app_deployment(typed, "v1")

    assert caught.value.cause == (
        '"v1" is ambiguous: it is the version of AppDeployments goodbye-v1, hello-world-v1; '
        "name the AppDeployment to release instead"
    )


async def test_app_narrows_the_search(typed: TypedStore) -> None:
    """Giving the app picks among deployments that share a ref."""
    await put(typed, "hello-world-v1")
    await put(typed, "goodbye-v1", app="goodbye")

    found = await find_app_deployment(typed, "v1", app="goodbye")

    assert found.metadata.name == "goodbye-v1"


async def test_unknown_ref_is_not_found_with_a_hint(typed: TypedStore) -> None:
    """Nothing matching is a NotFoundError saying to publish first."""
    with pytest.raises(NotFoundError, match=r"publish it first"):
        await find_app_deployment(typed, "v9")


async def test_release_sets_the_app_and_keeps_other_apps(typed: TypedStore) -> None:
    """release() sets spec.release.apps[<app>] to the deployment and version, other apps kept."""
    await put(typed, "hello-world-v1")
    await put_ve(typed, release=world.apps("goodbye-v3", "v3", app="goodbye"))

    ve = await release(typed, virtual_environment="qa", ref="v1")

    assert ve.spec.release is not None
    assert {app: (a.app_deployment, a.version) for app, a in ve.spec.release.apps.items()} == {
        "goodbye": ("goodbye-v3", "v3"),
        "hello-world": ("hello-world-v1", "v1"),
    }


async def test_release_into_a_missing_virtual_environment_is_not_found(typed: TypedStore) -> None:
    """Releasing into a VE that does not exist says so and how to fix it."""
    await put(typed, "hello-world-v1")

    with pytest.raises(NotFoundError, match='VirtualEnvironment "qa" not found; apply it first'):
        await release(typed, virtual_environment="qa", ref="v1")


async def test_history_and_rollback_to_the_last_active_release(typed: TypedStore) -> None:
    """History is newest first; rollback requests the newest entry that had been active."""
    ve = await put_ve(typed)
    done = world.released_with_history()
    await typed.update(ve.model_copy(update={"status": done.status}))

    entries = await history(typed, "qa")
    rolled = await rollback(typed, "qa")

    assert [e.apps["hello-world"].app_deployment for e in entries] == [
        "hello-world-nope",
        "hello-world-v1",
    ]
    assert rolled.spec.release is not None
    assert rolled.spec.release.apps["hello-world"].app_deployment == "hello-world-v1"


async def test_rollback_without_an_earlier_active_release_is_not_found(typed: TypedStore) -> None:
    """Nothing to roll back to is a clear error."""
    await put_ve(typed)

    with pytest.raises(NotFoundError, match="no earlier active release to roll back to"):
        await rollback(typed, "qa")


async def test_wait_released_reports_a_release_rolled_back_at_its_deadline(
    typed: TypedStore,
) -> None:
    """A release archived PendingDeadlineExceeded raises with its problems."""
    store = typed.store
    view = ResourceView(store, namespace=world.NAMESPACE)
    following = asyncio.create_task(view.run())
    try:
        await view.wait_ready()
        ve = await put_ve(typed)
        wanted = Release.model_validate(world.apps("hello-world-nope", None))
        waiting = asyncio.create_task(wait_released(view, "qa", timeout=5, release=wanted))
        failed = world.failed_release(request_time_now=True)
        await typed.update(ve.model_copy(update={"status": failed.status}))

        with pytest.raises(UnavailableError) as caught:
            await waiting
    finally:
        await store.aclose()
        await following

    assert "activation deadline passed" in caught.value.cause
    assert 'AppDeploymentNotFound: AppDeployment "hello-world-nope"' in caught.value.cause
    assert caught.value.details["problems"][0]["type"] == "AppDeploymentNotFound"


async def test_wait_released_times_out_with_the_pending_problems(typed: TypedStore) -> None:
    """Still pending at the timeout: DeadlineExceededError listing what blocks it."""
    store = typed.store
    view = ResourceView(store, namespace=world.NAMESPACE)
    following = asyncio.create_task(view.run())
    try:
        await view.wait_ready()
        pending = world.virtual_environment(release=world.apps("hello-world-nope", None))
        ve = await put_ve(typed, release=world.apps("hello-world-nope", None))
        await write_status(typed, ve, pending)
        await view.wait_for_revision(await store.revision())

        with pytest.raises(DeadlineExceededError) as caught:
            await wait_released(view, "qa", timeout=0.05)
    finally:
        await store.aclose()
        await following

    assert "was not active within 0.05s" in caught.value.cause
    assert caught.value.details["problems"][0]["type"] == "AppDeploymentNotFound"


async def test_applying_a_ve_without_a_release_keeps_the_release(typed: TypedStore) -> None:
    """Re-applying hack/environments does not undo fox release; release: null does."""
    await put(typed, "hello-world-v1")
    await put_ve(typed)
    await release(typed, virtual_environment="qa", ref="v1")
    document = {
        "apiVersion": "kubefox.xigxog.io/v1alpha1",
        "kind": "VirtualEnvironment",
        "metadata": {"name": "qa"},
        "spec": {"environment": "qa"},
    }

    kept = await typed.apply(VirtualEnvironment.model_validate(document))
    cleared = await typed.apply(
        VirtualEnvironment.model_validate(
            {**document, "spec": {"environment": "qa", "release": None}}
        )
    )

    assert kept.spec.release is not None
    assert kept.spec.release.apps["hello-world"].app_deployment == "hello-world-v1"
    assert cleared.spec.release is None
