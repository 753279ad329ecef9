"""Admission: every TypedStore write passes upstream's webhook and finalizer rules."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from kubefox.core.errors import ConflictError, InvalidError, NotFoundError
from kubefox.resources import (
    AppDeployment,
    Platform,
    ReleaseManifest,
    VirtualEnvironment,
)
from kubefox.store import MemoryStore
from kubefox.store.admission import AdmissionError, ImmutableError, ProtectedError
from kubefox.store.typed import TypedStore
from tests.unit.releases.world import NAMESPACE, app_deployment, apps, run, virtual_environment


@pytest.fixture
async def typed() -> AsyncIterator[TypedStore]:
    store = MemoryStore()
    try:
        yield TypedStore(store, namespace=NAMESPACE)
    finally:
        await store.aclose()


def _fresh(resource: AppDeployment | VirtualEnvironment) -> AppDeployment | VirtualEnvironment:
    """``resource`` without store metadata, as a user would write it."""
    copy = resource.model_copy(deep=True)
    copy.metadata.resource_version = None
    copy.status = None
    return copy


async def _with_status(
    typed: TypedStore, ve: VirtualEnvironment, source: VirtualEnvironment
) -> VirtualEnvironment:
    """Write ``source``'s status onto the stored ``ve``, as the operator would."""
    return await typed.update(ve.model_copy(update={"status": source.status}))


async def test_versioned_app_deployment_spec_is_immutable(typed: TypedStore) -> None:
    """Changing a versioned AppDeployment's spec is refused with upstream's message."""
    stored = await typed.create(_fresh(app_deployment()))
    changed = stored.model_copy(deep=True)
    assert isinstance(changed, AppDeployment)
    changed.spec.branch = "feature"

    with pytest.raises(ImmutableError) as caught:
        await typed.apply(changed)

    assert str(caught.value).startswith(
        "update operation not allowed: AppDeployment with version is immutable"
    )
    assert isinstance(caught.value, InvalidError)
    assert (await typed.get(AppDeployment, "hello-world-v1")).spec.branch == "main"


async def test_versioned_app_deployment_status_may_change(typed: TypedStore) -> None:
    """Only the spec is frozen: the operator still writes a versioned deployment's status."""
    stored = await typed.create(_fresh(app_deployment()))
    assert isinstance(stored, AppDeployment)

    written = await typed.update(stored.model_copy(update={"status": app_deployment().status}))

    assert written.status is not None


async def test_unversioned_app_deployment_may_change(typed: TypedStore) -> None:
    """An AppDeployment without a version is updated in place (a branch republish)."""
    stored = await typed.create(_fresh(app_deployment("hello-world-main", version=None)))
    changed = stored.model_copy(deep=True)
    assert isinstance(changed, AppDeployment)
    changed.spec.branch = "feature"

    written = await typed.apply(changed)

    assert written.spec.branch == "feature"


async def test_release_manifest_spec_and_data_are_immutable(typed: TypedStore) -> None:
    """A ReleaseManifest is a snapshot: changing its data is refused."""
    manifest = run(virtual_environment("prod", release=apps())).manifest
    assert manifest is not None
    stored = await typed.create(manifest)
    changed = stored.model_copy(deep=True)
    changed.data.vars["who"] = "Nobody"

    with pytest.raises(ImmutableError, match=r"ReleaseManifest .* is immutable"):
        await typed.apply(changed)


async def test_virtual_environment_environment_is_immutable(typed: TypedStore) -> None:
    """A VirtualEnvironment cannot move to another Environment."""
    stored = await typed.create(_fresh(virtual_environment("qa")))
    assert isinstance(stored, VirtualEnvironment)
    moved = stored.model_copy(
        update={"spec": stored.spec.model_copy(update={"environment": "prod"})}
    )

    with pytest.raises(ImmutableError, match='environment of VirtualEnvironment "qa" is immutable'):
        await typed.update(moved)


async def test_second_platform_in_a_namespace_is_refused(typed: TypedStore) -> None:
    """One Platform per namespace, as upstream's webhook enforces."""
    await typed.create(Platform.model_validate({"metadata": {"name": "demo"}}))

    with pytest.raises(AdmissionError, match='the Platform "other" is not allowed'):
        await typed.apply(Platform.model_validate({"metadata": {"name": "other"}}))

    assert [p.metadata.name for p in await typed.find(Platform)] == ["demo"]


async def test_deleting_a_deployment_of_an_active_release_is_refused(typed: TypedStore) -> None:
    """A released AppDeployment cannot be deleted; the error names the VE and what to do."""
    await typed.create(_fresh(app_deployment()))
    ve = await typed.create(_fresh(virtual_environment("qa")))
    assert isinstance(ve, VirtualEnvironment)
    await _with_status(typed, ve, _released("qa"))

    with pytest.raises(ProtectedError) as caught:
        await typed.delete(AppDeployment, "hello-world-v1")

    assert caught.value.cause == (
        'AppDeployment "hello-world-v1" is used by the active release of VirtualEnvironment '
        '"qa"; release something else first'
    )
    assert isinstance(caught.value, ConflictError)
    assert (await typed.get(AppDeployment, "hello-world-v1")).metadata.name == "hello-world-v1"


async def test_deleting_a_deployment_of_a_pending_or_requested_release_is_refused(
    typed: TypedStore,
) -> None:
    """Pending and requested (spec.release) releases protect their deployment too."""
    await typed.create(_fresh(app_deployment()))
    await typed.create(_fresh(virtual_environment("qa", release=apps())))

    with pytest.raises(ProtectedError, match=r"requested release \(spec.release\)"):
        await typed.delete(AppDeployment, "hello-world-v1")


async def test_deleting_an_unreleased_deployment_is_allowed(typed: TypedStore) -> None:
    """History does not protect a deployment: only active, pending and requested releases."""
    await typed.create(_fresh(app_deployment("hello-world-v0", version="v0")))
    await typed.create(_fresh(virtual_environment("qa")))

    await typed.delete(AppDeployment, "hello-world-v0")

    with pytest.raises(NotFoundError):
        await typed.get(AppDeployment, "hello-world-v0")


async def test_deleting_a_manifest_still_referenced_is_refused(typed: TypedStore) -> None:
    """A manifest of the active release cannot be deleted."""
    ve = virtual_environment("prod", release=apps())
    outcome = run(ve)
    assert outcome.manifest is not None
    await typed.create(outcome.manifest)
    stored = await typed.create(_fresh(ve))
    assert isinstance(stored, VirtualEnvironment)
    await typed.update(stored.model_copy(update={"status": outcome.status}))

    with pytest.raises(ProtectedError, match="used by the active release"):
        await typed.delete(ReleaseManifest, outcome.manifest.metadata.name)


async def test_deleting_an_unreferenced_manifest_is_allowed(typed: TypedStore) -> None:
    """A manifest nothing references may go (the operator deletes such manifests)."""
    manifest = run(virtual_environment("prod", release=apps())).manifest
    assert manifest is not None
    await typed.create(manifest)

    await typed.delete(ReleaseManifest, manifest.metadata.name)

    assert await typed.find(ReleaseManifest) == []


def _released(name: str) -> VirtualEnvironment:
    ve = virtual_environment(name, release=apps())
    return ve.model_copy(update={"status": run(ve).status})
