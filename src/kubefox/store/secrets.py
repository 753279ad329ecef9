"""Secrets admission: the secrets of resources live in a secrets backend, the store keeps a mask.

Upstream's mutating webhook (§1.9) moves every secret of an Environment,
VirtualEnvironment or ReleaseManifest that is not the mask :data:`MASK` into
Vault and writes the mask in its place; :class:`ResourceSecrets` does the same
for :class:`~kubefox.store.typed.TypedStore`, before every write, so the API,
``fox apply``, the operator and the embedded platform all get it.

* One document per resource (§5.2's shape), under the tenant's prefix
  ``tenants/<tenant>/``: ``cluster/data/<Kind>/<name>`` for cluster-scoped
  kinds, ``namespace/<ns>/data/<Kind>/<name>`` otherwise, holding
  ``{"data": {"secrets": {...}}}``. The prefix keeps tenants sharing one
  backend (one OpenBao) apart, as their NATS accounts keep their stores apart.
* A write replaces the document with exactly the keys the resource has: a new
  value replaces the stored one, the mask keeps it, a key left out is deleted,
  a resource without secrets has no document. Deleting the resource deletes it.
* A masked key with no stored value is an :class:`AdmissionError` on create
  and apply (the value was never given, e.g. YAML copied from ``fox get``); an
  update (read, change, write back: the operator's status writes) keeps such a
  key masked without a value, so a status write never fails on it.
* A new ReleaseManifest takes its masked values from its Environment's and
  VirtualEnvironment's documents (the VirtualEnvironment's win), a snapshot at
  activation, as upstream's operator copies them from Vault; the data embedded
  in its ``spec`` is masked too.
* ``kubectl.kubernetes.io/last-applied-configuration`` is dropped, as upstream
  scrubs it: it would hold the values.

The backend document is written before the resource (compare-and-set on the
document's version read at admission, so two writers of one resource cannot
interleave their secrets); a resource write that then fails leaves the new
values in the backend under the old masks.

Readers (the broker, when it resolves an HTTPAdapter's templates) use
:meth:`ResourceSecrets.read`, cached per resource version: a write always makes
a new resource version, so a cached value is never stale for the version it
was read for. Without a backend (``TypedStore(secrets=None)``, tests and
library use) a write that carries a secret value is refused: a secret is never
stored in the resource store.

Values and documents are never put in an error message or a log line.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Mapping
from typing import Any

from kubefox.core.errors import InvalidError, NotFoundError
from kubefox.security.protocol import SecretsBackend
from kubefox.store.protocol import ResourceKey

#: What a stored resource shows instead of a secret's value (upstream's mask).
MASK = "••••••"

#: Kinds whose ``data.secrets`` go to the secrets backend.
KINDS_WITH_SECRETS = frozenset({"Environment", "VirtualEnvironment", "ReleaseManifest"})

#: Annotation ``kubectl apply`` writes with the whole object in it (values included).
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

#: Resource versions whose secrets :meth:`ResourceSecrets.read` keeps.
DEFAULT_CACHE_SIZE = 1024


class SecretsAdmissionError(InvalidError):
    """A write whose secrets cannot be admitted (wire code 6, HTTP 400)."""

    default_message = "secrets not allowed"


#: The tenant of a platform that names none (``PlatformSettings.tenant``'s default).
DEFAULT_TENANT = "default"


def secret_path(key: ResourceKey, *, tenant: str = DEFAULT_TENANT) -> str:
    """The backend document holding the secrets of the resource at ``key`` (§5.2)."""
    if key.namespace:
        return f"tenants/{tenant}/namespace/{key.namespace}/data/{key.kind}/{key.name}"
    return f"tenants/{tenant}/cluster/data/{key.kind}/{key.name}"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AdmittedSecrets:
    """A resource body with its secrets masked, and the backend write it needs.

    ``changed`` says whether the stored values differ from what the body asked
    for; :meth:`ResourceSecrets.commit` writes them (nothing when unchanged).
    """

    key: ResourceKey
    body: dict[str, Any]
    changed: bool = False
    values: Mapping[str, Any] = dataclasses.field(default_factory=dict, repr=False)
    version: int = 0  # of the document when read; 0: there was none


class ResourceSecrets:
    """Moves resource secrets into a :class:`SecretsBackend` and reads them back.

    Args:
        backend: where the values go.
        tenant: whose resources these are; it prefixes every document's path.
        cache_size: resource versions whose secrets :meth:`read` keeps.
    """

    def __init__(
        self,
        backend: SecretsBackend,
        *,
        tenant: str = DEFAULT_TENANT,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self.backend = backend
        self.tenant = tenant
        self._cache: collections.OrderedDict[tuple[str, str], dict[str, Any]] = (
            collections.OrderedDict()
        )
        self._cache_size = cache_size

    async def admit(
        self,
        key: ResourceKey,
        body: Mapping[str, Any],
        *,
        exists: bool,
        strict: bool = True,
    ) -> AdmittedSecrets:
        """``body`` with its secrets masked, and the values to store for it.

        Args:
            key: where the resource is written.
            body: the resource document to write.
            exists: whether the resource exists now (a stored document of a
                resource that does not is a leftover and is not used).
            strict: refuse a masked key with no stored value (create, apply).

        Raises:
            SecretsAdmissionError: a masked key has no stored value (``strict``).
        """
        masked = _scrubbed(body)
        if key.kind not in KINDS_WITH_SECRETS:
            return AdmittedSecrets(key=key, body=masked)
        given = _secrets_of(masked)
        stored, version = await self._stored(key)
        known = stored if exists else {}
        if key.kind == "ReleaseManifest" and not exists:
            known = {**await self._manifest_sources(key, masked), **known}
        values: dict[str, Any] = {}
        for name, value in given.items():
            if value != MASK:
                values[name] = value
            elif name in known:
                values[name] = known[name]
            elif strict and key.kind != "ReleaseManifest":
                raise SecretsAdmissionError(
                    f'secret "{name}" of {key.kind} "{key.name}" is masked ({MASK}) but no '
                    "value is stored for it; give its value",
                    kind=key.kind,
                    name=key.name,
                    secret=name,
                )
        _mask_all(masked)
        return AdmittedSecrets(
            key=key, body=masked, changed=values != stored, values=values, version=version
        )

    async def commit(self, admitted: AdmittedSecrets) -> None:
        """Write ``admitted``'s values to the backend (before the resource is written).

        Raises:
            ConflictError: the document changed since :meth:`admit` read it.
        """
        if not admitted.changed:
            return
        path = secret_path(admitted.key, tenant=self.tenant)
        if admitted.values:
            await self.backend.put(
                path, {"data": {"secrets": dict(admitted.values)}}, cas=admitted.version
            )
        else:
            await self.backend.delete(path)
        self._forget_cached(path)

    async def forget(self, key: ResourceKey) -> None:
        """Delete the secrets of a deleted resource (a missing document is fine)."""
        if key.kind not in KINDS_WITH_SECRETS:
            return
        path = secret_path(key, tenant=self.tenant)
        await self.backend.delete(path)
        self._forget_cached(path)

    async def read(self, key: ResourceKey, *, version: str | None) -> dict[str, Any]:
        """The secret values of the resource at ``key``, as of its resource ``version``.

        Cached per ``(key, version)`` (bounded, least recently used out); with
        ``version=None`` the backend is always asked. A resource without a
        document has no secrets. Treat the result as secret.
        """
        path = secret_path(key, tenant=self.tenant)
        cache_key = (path, version) if version is not None else None
        if cache_key is not None:
            cached = self._cache.get(cache_key)
            if cached is not None:
                self._cache.move_to_end(cache_key)
                return cached
        values, _ = await self._stored(key)
        if cache_key is not None:
            self._cache[cache_key] = values
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return values

    async def _stored(self, key: ResourceKey) -> tuple[dict[str, Any], int]:
        try:
            document = await self.backend.get(secret_path(key, tenant=self.tenant))
        except NotFoundError:
            return {}, 0
        data = document.data.get("data")
        secrets = data.get("secrets") if isinstance(data, Mapping) else None
        values = dict(secrets) if isinstance(secrets, Mapping) else {}
        return values, document.version

    async def _manifest_sources(self, key: ResourceKey, body: Mapping[str, Any]) -> dict[str, Any]:
        """The Environment's then the VirtualEnvironment's stored values a manifest snapshots."""
        spec = _mapping(body.get("spec"))
        environment = _mapping(_mapping(spec.get("environment")).get("metadata")).get("name")
        virtual = _mapping(_mapping(spec.get("virtualEnvironment")).get("metadata")).get("name")
        values: dict[str, Any] = {}
        if isinstance(environment, str) and environment:
            values.update((await self._stored(ResourceKey("Environment", environment)))[0])
        if isinstance(virtual, str) and virtual:
            ve_key = ResourceKey("VirtualEnvironment", virtual, key.namespace)
            values.update((await self._stored(ve_key))[0])
        return values

    def _forget_cached(self, path: str) -> None:
        for cached in [k for k in self._cache if k[0] == path]:
            del self._cache[cached]


def refuse_secret_values(key: ResourceKey, body: Mapping[str, Any]) -> dict[str, Any]:
    """What a store without a secrets backend writes: ``body``, if it carries no secret value.

    Masked values pass (they name a value kept elsewhere, e.g. a status write
    of a resource read back from the store).

    Raises:
        SecretsAdmissionError: a secret has a value; the store would keep it in clear.
    """
    scrubbed = _scrubbed(body)
    if key.kind not in KINDS_WITH_SECRETS:
        return scrubbed
    for data in _data_sections(scrubbed):
        secrets = _mapping(data.get("secrets"))
        named = sorted(name for name, value in secrets.items() if value != MASK)
        if named:
            raise SecretsAdmissionError(
                f'{key.kind} "{key.name}" has secrets ({", ".join(named)}) but this store has '
                "no secrets backend to keep them in; the resource store never holds a secret",
                kind=key.kind,
                name=key.name,
            )
    return scrubbed


def _scrubbed(body: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``body`` (deep enough to mask in) without the last-applied annotation."""
    copied = dict(body)
    meta = copied.get("metadata")
    if isinstance(meta, Mapping):
        meta = copied["metadata"] = dict(meta)
        annotations = meta.get("annotations")
        if isinstance(annotations, Mapping) and LAST_APPLIED in annotations:
            meta["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    data = copied.get("data")
    if isinstance(data, Mapping):
        copied["data"] = dict(data)
    spec = copied.get("spec")
    if isinstance(spec, Mapping) and copied.get("kind") == "ReleaseManifest":
        spec = copied["spec"] = dict(spec)
        for part in ("environment", "virtualEnvironment"):
            embedded = spec.get(part)
            if isinstance(embedded, Mapping):
                embedded = spec[part] = dict(embedded)
                if isinstance(embedded.get("data"), Mapping):
                    embedded["data"] = dict(embedded["data"])
    return copied


def _secrets_of(body: Mapping[str, Any]) -> dict[str, Any]:
    return dict(_mapping(_mapping(body.get("data")).get("secrets")))


def _data_sections(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The top-level ``data`` and, in a manifest, the data embedded in its spec."""
    sections = [body.get("data")]
    spec = body.get("spec")
    if isinstance(spec, dict):
        sections += [
            part.get("data")
            for part in (spec.get("environment"), spec.get("virtualEnvironment"))
            if isinstance(part, dict)
        ]
    return [section for section in sections if isinstance(section, dict)]


def _mask_all(body: dict[str, Any]) -> None:
    """Replace every secret value in ``body`` (a :func:`_scrubbed` copy) with the mask."""
    for data in _data_sections(body):
        secrets = data.get("secrets")
        if isinstance(secrets, Mapping) and secrets:
            data["secrets"] = dict.fromkeys(secrets, MASK)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
