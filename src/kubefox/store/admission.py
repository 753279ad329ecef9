"""Admission: the rules a write must pass before it reaches the store (upstream's webhooks).

Upstream enforces these with Kubernetes admission webhooks and finalizers
(§1.13); here :class:`~kubefox.store.typed.TypedStore` runs them on every
create, update and delete, so the API, the CLI, the operator and tests all
get them. Writes straight to a :class:`ResourceStore` bypass them, as
``kubectl`` with the webhooks removed would.

* a versioned AppDeployment's spec is immutable;
* a ReleaseManifest's spec and data are immutable;
* a VirtualEnvironment's ``spec.environment`` is immutable;
* a namespace holds at most one Platform;
* an AppDeployment used by a VirtualEnvironment's active, pending or requested
  release cannot be deleted (upstream's ``release-protection`` finalizer
  counts active and pending only; a requested release that the operator has
  not seen yet is protected too, so a release and a delete cannot cross);
* a ReleaseManifest that a VirtualEnvironment's active release or release
  history references cannot be deleted.

The protection checks read the VirtualEnvironments at the time of the delete;
a release written between that read and the delete is not seen (upstream's
finalizers close that window, a store without transactions cannot).

Refusals are :class:`ImmutableError`/:class:`AdmissionError` (400, wire code 6,
``invalid``) and :class:`ProtectedError` (409, wire code 16, ``conflict``):
subclasses that keep their parent's wire code, so peers that do not know
them still read the right kind of error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from kubefox.core.errors import ConflictError, InvalidError
from kubefox.resources import (
    AppDeploymentSpec,
    Data,
    ReleaseManifestSpec,
    ReleaseStatus,
    VirtualEnvironment,
)
from kubefox.store.protocol import ResourceKey, ResourceStore


class AdmissionError(InvalidError):
    """A write that an admission rule refuses (wire code 6, HTTP 400)."""

    default_message = "operation not allowed"


class ImmutableError(AdmissionError):
    """An update that changes an immutable part of a resource (wire code 6, HTTP 400)."""

    default_message = "update operation not allowed"


class ProtectedError(ConflictError):
    """A delete of a resource something still uses (wire code 16, HTTP 409)."""

    default_message = "delete operation not allowed"


async def check_create(store: ResourceStore, key: ResourceKey, body: Mapping[str, Any]) -> None:
    """Refuse creating ``body`` at ``key`` if a rule forbids it.

    Raises:
        AdmissionError: a second Platform in a namespace.
    """
    del body  # every create rule so far depends on the key only
    if key.kind != "Platform":
        return
    others = [
        stored.key.name
        for stored in await store.find("Platform", namespace=key.namespace)
        if stored.key.name != key.name
    ]
    if others:
        where = key.namespace or "the cluster scope"
        raise AdmissionError(
            f'the Platform "{key.name}" is not allowed: Platform "{others[0]}" already exists '
            f'in namespace "{where}"; a namespace holds one Platform, change that one instead',
            name=key.name,
            existing=others[0],
        )


def check_update(key: ResourceKey, current: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    """Refuse replacing ``current`` with ``new`` if it changes an immutable part.

    Raises:
        ImmutableError: the spec of a versioned AppDeployment, the spec or data
            of a ReleaseManifest, or the Environment of a VirtualEnvironment changed.
    """
    if key.kind == "AppDeployment":
        version = _mapping(current.get("spec")).get("version")
        if version and _differs(AppDeploymentSpec, current.get("spec"), new.get("spec")):
            raise ImmutableError(
                f'AppDeployment with version is immutable; "{key.name}" is version "{version}": '
                "publish the change under a new version",
                name=key.name,
                version=version,
            )
    elif key.kind == "ReleaseManifest":
        if _differs(ReleaseManifestSpec, current.get("spec"), new.get("spec")) or _differs(
            Data, current.get("data", {}), new.get("data", {})
        ):
            raise ImmutableError(
                f'ReleaseManifest "{key.name}" is immutable: its spec and data are a snapshot '
                "of a release; release again to take a new snapshot",
                name=key.name,
            )
    elif key.kind == "VirtualEnvironment":
        was = _mapping(current.get("spec")).get("environment")
        now = _mapping(new.get("spec")).get("environment")
        if was != now:
            raise ImmutableError(
                f'the environment of VirtualEnvironment "{key.name}" is immutable (it is "{was}", '
                f'not "{now}"); create another VirtualEnvironment on "{now}" instead',
                name=key.name,
                environment=was,
            )


async def check_delete(store: ResourceStore, key: ResourceKey) -> None:
    """Refuse deleting the resource at ``key`` while a VirtualEnvironment uses it.

    Raises:
        ProtectedError: an AppDeployment in an active, pending or requested
            release, or a ReleaseManifest of an active release or in a history.
    """
    if key.kind not in ("AppDeployment", "ReleaseManifest"):
        return
    for ve in await _virtual_environments(store, key.namespace):
        use = (
            _deployment_use(ve, key.name)
            if key.kind == "AppDeployment"
            else _manifest_use(ve, key.name)
        )
        if use is not None:
            raise ProtectedError(
                f'{key.kind} "{key.name}" is used by {use} of VirtualEnvironment '
                f'"{ve.metadata.name}"; release something else first',
                name=key.name,
                virtual_environment=ve.metadata.name,
            )


def _deployment_use(ve: VirtualEnvironment, name: str) -> str | None:
    status = ve.status
    if status is not None:
        if _names_deployment(status.active_release, name):
            return "the active release"
        if _names_deployment(status.pending_release, name):
            return "the pending release"
    release = ve.spec.release
    if release is not None and any(a.app_deployment == name for a in release.apps.values()):
        return "the requested release (spec.release)"
    return None


def _manifest_use(ve: VirtualEnvironment, name: str) -> str | None:
    status = ve.status
    if status is None:
        return None
    if status.active_release is not None and status.active_release.release_manifest == name:
        return "the active release"
    if any(entry.release_manifest == name for entry in status.release_history):
        return "the release history"
    return None


def _names_deployment(release: ReleaseStatus | None, name: str) -> bool:
    return release is not None and any(a.app_deployment == name for a in release.apps.values())


async def _virtual_environments(store: ResourceStore, namespace: str) -> list[VirtualEnvironment]:
    found = await store.find("VirtualEnvironment", namespace=namespace)
    return [ve for ve in map(_read_ve, (stored.body for stored in found)) if ve is not None]


def _read_ve(body: Mapping[str, Any]) -> VirtualEnvironment | None:
    try:
        return VirtualEnvironment.model_validate(body)
    except ValidationError:
        return None  # unreadable: it cannot hold a release either


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _differs(model: type[BaseModel], old: object, new: object) -> bool:
    """Whether ``old`` and ``new`` say different things as ``model`` (formatting aside)."""
    if old == new:
        return False
    try:
        return model.model_validate(old) != model.model_validate(new)
    except ValidationError:
        return True
