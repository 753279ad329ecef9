"""Typed access to the resource store: models in, models out, Kubernetes-like metadata.

The raw :class:`ResourceStore` keeps JSON documents and revisions. Everything
above it (router, operator, publishing, API) wants resource models with
``metadata.resourceVersion`` (the store revision), ``generation`` (bumped when
anything but ``status`` or ``metadata`` changes), ``uid`` and
``creationTimestamp`` filled in, and the index labels upstream's webhooks set.
This module is that one place, so every writer stamps metadata the same way.
It also runs admission (:mod:`kubefox.store.admission`) and moves secrets to the
secrets backend (:mod:`kubefox.store.secrets`) before every write.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from kubefox.core.errors import ConflictError
from kubefox.resources import (
    AppDeployment,
    Release,
    ReleaseManifest,
    Resource,
    VirtualEnvironment,
    dump,
    parse_resource,
)
from kubefox.security.protocol import SecretsBackend
from kubefox.store import admission
from kubefox.store.protocol import ResourceKey, ResourceStore, StoredResource
from kubefox.store.secrets import AdmittedSecrets, ResourceSecrets, refuse_secret_values

R = TypeVar("R", bound=Resource)

#: Kinds that are not namespaced (upstream: Environment is cluster-scoped).
CLUSTER_KINDS = frozenset({"Environment"})

#: Label keys upstream's index webhook sets.
LABEL_APP_NAME = "app.kubernetes.io/name"
LABEL_APP_BRANCH = "kubefox.xigxog.io/app-branch"
LABEL_APP_COMMIT = "kubefox.xigxog.io/app-commit"
LABEL_APP_COMMIT_SHORT = "kubefox.xigxog.io/app-commit-short"
LABEL_APP_TAG = "kubefox.xigxog.io/app-tag"
LABEL_APP_VERSION = "kubefox.xigxog.io/app-version"
LABEL_ENVIRONMENT = "kubefox.xigxog.io/environment"
LABEL_VIRTUAL_ENVIRONMENT = "kubefox.xigxog.io/virtual-environment"

_UNVERSIONED_PARTS = ("metadata", "status", "apiVersion", "kind")
_MAX_APPLY_ATTEMPTS = 10


def key_for(kind: str, name: str, namespace: str) -> ResourceKey:
    """The store key of a resource; cluster-scoped kinds ignore ``namespace``."""
    return ResourceKey(kind=kind, name=name, namespace="" if kind in CLUSTER_KINDS else namespace)


def from_stored(stored: StoredResource) -> Resource:
    """The typed resource with ``metadata.resourceVersion`` set to the store revision."""
    resource = parse_resource(stored.body)
    resource.metadata.resource_version = str(stored.revision)
    return resource


def _versioned_part(body: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in _UNVERSIONED_PARTS}


def index_labels(resource: Resource) -> dict[str, str]:
    """The labels upstream's index webhook would add to ``resource``."""
    labels: dict[str, str] = {}
    if isinstance(resource, AppDeployment):
        spec = resource.spec
        labels[LABEL_APP_NAME] = spec.app_name
        labels[LABEL_APP_COMMIT] = spec.commit
        labels[LABEL_APP_COMMIT_SHORT] = spec.commit[:7]
        optional = {
            LABEL_APP_BRANCH: spec.branch,
            LABEL_APP_TAG: spec.tag,
            LABEL_APP_VERSION: spec.version,
        }
        labels.update({key: value for key, value in optional.items() if value})
    elif isinstance(resource, VirtualEnvironment):
        labels[LABEL_ENVIRONMENT] = resource.spec.environment
    elif isinstance(resource, ReleaseManifest):
        labels[LABEL_ENVIRONMENT] = resource.spec.environment.metadata.name
        labels[LABEL_VIRTUAL_ENVIRONMENT] = resource.spec.virtual_environment.metadata.name
    return labels


class TypedStore:
    """Reads and writes resource models in one namespace of a :class:`ResourceStore`.

    With ``secrets`` (a backend, or a :class:`ResourceSecrets` to share its
    cache), the secrets of Environments, VirtualEnvironments and
    ReleaseManifests are moved there and the store keeps the mask
    (:mod:`kubefox.store.secrets`); without, a write carrying a secret value
    is refused with ``SecretsAdmissionError``.
    """

    def __init__(
        self,
        store: ResourceStore,
        *,
        namespace: str,
        secrets: SecretsBackend | ResourceSecrets | None = None,
    ) -> None:
        self.store = store
        self.namespace = namespace
        self.secrets = (
            secrets
            if secrets is None or isinstance(secrets, ResourceSecrets)
            else ResourceSecrets(secrets)
        )

    def key(self, kind: str, name: str) -> ResourceKey:
        """The store key of ``kind``/``name`` in this store's namespace."""
        return key_for(kind, name, self.namespace)

    async def get(self, model: type[R], name: str) -> R:
        """The resource of ``model``'s kind named ``name``; ``NotFoundError`` if none."""
        stored = await self.store.get(self.key(model.__name__, name))
        return _typed(model, from_stored(stored))

    async def find(self, model: type[R], *, labels: Mapping[str, str] | None = None) -> list[R]:
        """Every resource of ``model``'s kind, optionally filtered by labels."""
        kind = model.__name__
        namespace = "" if kind in CLUSTER_KINDS else self.namespace
        found = await self.store.find(kind, namespace=namespace, labels=labels)
        return [_typed(model, from_stored(stored)) for stored in found]

    async def create(self, resource: R) -> R:
        """Store a new resource; ``ConflictError`` if one of that name exists.

        Admission rules apply (:mod:`kubefox.store.admission`).
        """
        body = self._stamp_new(resource)
        key = self._key_of(resource)
        await admission.check_create(self.store, key, body)
        admitted = await self._admit_secrets(key, body, exists=False, strict=True)
        if self.secrets is not None and admitted.changed:
            # The backend is written first: do not overwrite the secrets of one that exists.
            await self._refuse_existing(key)
        await self._commit_secrets(admitted)
        stored = await self.store.create(key, admitted.body)
        return _typed(type(resource), from_stored(stored))

    async def apply(self, resource: R) -> R:
        """Create ``resource`` or replace the spec of the existing one, keeping its status.

        A VirtualEnvironment applied without ``spec.release`` keeps the release
        it has (``fox release`` owns that field, as ``kubectl apply``'s
        three-way merge leaves alone a field it never set); ``release: null``
        clears it. Concurrent writers are resolved by compare-and-set with a
        bounded retry.
        """
        key = self._key_of(resource)
        for _ in range(_MAX_APPLY_ATTEMPTS):
            try:
                current = await self.store.get(key)
            except LookupError:
                try:
                    return await self.create(resource)
                except ConflictError:
                    continue
            body = self._stamp_update(
                _keeping_release(resource, current.body), current.body, keep_status=True
            )
            admitted = await self._admit_secrets(key, body, exists=True, strict=True)
            admission.check_update(key, current.body, admitted.body)
            try:
                await self._commit_secrets(admitted)
                stored = await self.store.update(key, admitted.body, revision=current.revision)
            except ConflictError:
                continue
            return _typed(type(resource), from_stored(stored))
        raise ConflictError(f"{key} kept changing while it was applied", key=str(key))

    async def update(self, resource: R) -> R:
        """Replace the resource if it is still at ``metadata.resourceVersion``.

        ``status`` is written as given; a stale version raises ``ConflictError``.
        """
        key = self._key_of(resource)
        revision = int(resource.metadata.resource_version or 0)
        current = await self.store.get(key)
        body = self._stamp_update(resource, current.body, keep_status=False)
        admitted = await self._admit_secrets(key, body, exists=True, strict=False)
        admission.check_update(key, current.body, admitted.body)
        await self._commit_secrets(admitted)
        stored = await self.store.update(key, admitted.body, revision=revision)
        return _typed(type(resource), from_stored(stored))

    async def delete(
        self, model: type[Resource], name: str, *, revision: int | None = None
    ) -> None:
        """Remove the resource; ``NotFoundError`` if there is none.

        ``ProtectedError`` if a VirtualEnvironment's release still uses it
        (:mod:`kubefox.store.admission`).
        """
        key = self.key(model.__name__, name)
        await admission.check_delete(self.store, key)
        await self.store.delete(key, revision=revision)
        if self.secrets is not None:
            await self.secrets.forget(key)

    async def masked(self, resource: R) -> tuple[R, bool]:
        """``resource`` as the store would keep it, and whether its secret values are new.

        Secrets are masked; the flag says whether the values ``resource``
        carries differ from the stored ones. Writes nothing.

        Raises:
            SecretsAdmissionError: as a write of ``resource`` would.
        """
        key = self._key_of(resource)
        body = dump(resource)
        if self.secrets is None:
            return _typed(type(resource), parse_resource(refuse_secret_values(key, body))), False
        try:
            await self.store.get(key)
            exists = True
        except LookupError:
            exists = False
        admitted = await self.secrets.admit(key, body, exists=exists, strict=True)
        return _typed(type(resource), parse_resource(admitted.body)), admitted.changed

    async def _admit_secrets(
        self, key: ResourceKey, body: dict[str, Any], *, exists: bool, strict: bool
    ) -> AdmittedSecrets:
        """``body`` with its secrets masked and the values to store; writes nothing yet."""
        if self.secrets is None:
            return AdmittedSecrets(key=key, body=refuse_secret_values(key, body))
        return await self.secrets.admit(key, body, exists=exists, strict=strict)

    async def _commit_secrets(self, admitted: AdmittedSecrets) -> None:
        if self.secrets is not None:
            await self.secrets.commit(admitted)

    async def _refuse_existing(self, key: ResourceKey) -> None:
        try:
            await self.store.get(key)
        except LookupError:
            return
        raise ConflictError("resource already exists", key=str(key))

    def _key_of(self, resource: Resource) -> ResourceKey:
        return self.key(type(resource).__name__, resource.metadata.name)

    def _stamp_new(self, resource: Resource) -> dict[str, Any]:
        body = dump(resource)
        meta = body.setdefault("metadata", {})
        kind = type(resource).__name__
        if kind not in CLUSTER_KINDS:
            meta["namespace"] = self.namespace
        else:
            meta.pop("namespace", None)
        meta["uid"] = str(uuid.uuid4())
        meta["generation"] = 1
        meta["creationTimestamp"] = datetime.now(UTC).isoformat()
        meta.pop("resourceVersion", None)
        meta["labels"] = {**meta.get("labels", {}), **index_labels(resource)}
        return body

    def _stamp_update(
        self, resource: Resource, current: Mapping[str, Any], *, keep_status: bool
    ) -> dict[str, Any]:
        body = self._stamp_new(resource)
        current_meta = current.get("metadata", {})
        meta = body["metadata"]
        meta["uid"] = current_meta.get("uid", meta["uid"])
        meta["creationTimestamp"] = current_meta.get("creationTimestamp", meta["creationTimestamp"])
        generation = int(current_meta.get("generation", 1))
        if _versioned_part(body) != _versioned_part(current):
            generation += 1
        meta["generation"] = generation
        if keep_status:
            if "status" in current:
                body["status"] = current["status"]
            else:
                body.pop("status", None)
        return body


def _keeping_release(resource: R, current: Mapping[str, Any]) -> R:
    """``resource`` with the stored ``spec.release`` if it is a VE that does not set one."""
    if not isinstance(resource, VirtualEnvironment) or "release" in resource.spec.model_fields_set:
        return resource
    spec = current.get("spec")
    stored = spec.get("release") if isinstance(spec, Mapping) else None
    if stored is None:
        return resource
    kept = resource.spec.model_copy(update={"release": Release.model_validate(stored)})
    return resource.model_copy(update={"spec": kept})


def _typed(model: type[R], resource: Resource) -> R:
    if not isinstance(resource, model):
        raise TypeError(f"expected {model.__name__}, got {type(resource).__name__}")
    return resource
