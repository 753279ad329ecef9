"""The storage port: what the platform needs from a store of resources.

Resources (Platform, Environment, AppDeployment, ...) are JSON documents kept one
per :class:`ResourceKey`. Every change, deletes included, gets a store-wide,
strictly increasing ``revision``. Higher layers publish it as
``metadata.resourceVersion``, send it back for compare-and-set writes and resume
watches from it, as Kubernetes clients do. Backends satisfy
:class:`ResourceStore` structurally; none inherits from it.

The helpers at the bottom (:func:`check_key`, :func:`encode_body`,
:func:`decode_body`) are shared by every backend so that all of them accept the
same keys and hand out the same JSON, whatever they keep underneath.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import AsyncGenerator, Mapping
from typing import Any, Protocol

import msgspec

from kubefox.core.errors import InvalidError

# Kubernetes kinds are CamelCase identifiers; names and namespaces are RFC 1123 DNS
# labels. Keeping to those means a key maps onto the NATS KV key alphabet with "."
# left free as the separator, and "_" (never in a label) free to mean "no namespace".
_KIND = re.compile(r"[A-Za-z][A-Za-z0-9]{0,62}")
_DNS_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")


@dataclasses.dataclass(frozen=True, slots=True)
class ResourceKey:
    """Names one resource; ``namespace=""`` means cluster-scoped."""

    kind: str
    name: str
    namespace: str = ""

    def __str__(self) -> str:
        if self.namespace:
            return f"{self.kind}/{self.namespace}/{self.name}"
        return f"{self.kind}/{self.name}"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StoredResource:
    """A resource as the store holds it.

    ``body`` is the full JSON document, exactly as written (the store never edits
    it); ``revision`` is the store revision of the write that produced it.
    """

    key: ResourceKey
    body: Mapping[str, Any]
    revision: int


class WatchKind(enum.StrEnum):
    """What happened to a resource."""

    PUT = "PUT"
    DELETE = "DELETE"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WatchEvent:
    """One change seen by :meth:`ResourceStore.watch`.

    ``resource`` is the new state for ``PUT`` and ``None`` for ``DELETE``;
    ``revision`` is the revision of the change itself (for a delete, the revision
    the delete was given, which no resource carries).
    """

    kind: WatchKind
    key: ResourceKey
    resource: StoredResource | None
    revision: int


class ResourceStore(Protocol):
    """Keeps resources and tells watchers about every change, in revision order.

    Errors: ``NotFoundError`` (also a ``LookupError``) for a missing resource,
    ``ConflictError`` for a lost compare-and-set, ``InvalidError`` for a key or
    body the store cannot hold, ``UnavailableError`` when the backend cannot be
    reached or the store is closed.
    """

    async def get(self, key: ResourceKey) -> StoredResource:
        """Return the resource; raise ``NotFoundError`` if there is none."""
        ...

    async def find(
        self,
        kind: str,
        *,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> list[StoredResource]:
        """Return every resource of ``kind``, sorted by namespace then name.

        ``namespace=None`` means every namespace (and cluster scope); ``""`` means
        cluster-scoped only. ``labels`` keeps the resources whose
        ``body["metadata"]["labels"]`` holds every given pair.
        """
        ...

    async def create(self, key: ResourceKey, body: Mapping[str, Any]) -> StoredResource:
        """Store a new resource; raise ``ConflictError`` if ``key`` already exists."""
        ...

    async def update(
        self, key: ResourceKey, body: Mapping[str, Any], *, revision: int
    ) -> StoredResource:
        """Replace the resource if it is still at ``revision`` (compare-and-set).

        A stale ``revision`` raises ``ConflictError`` with ``details["expected"]``
        and ``details["actual"]``; a missing resource raises ``NotFoundError``.
        """
        ...

    async def put(self, key: ResourceKey, body: Mapping[str, Any]) -> StoredResource:
        """Create or replace the resource unconditionally."""
        ...

    async def delete(self, key: ResourceKey, *, revision: int | None = None) -> None:
        """Remove the resource, only if it is still at ``revision`` when one is given.

        Raise ``NotFoundError`` if there is none and ``ConflictError`` (with
        ``details["actual"]``) if ``revision`` is stale.
        """
        ...

    def watch(self, *, from_revision: int = 0) -> AsyncGenerator[WatchEvent, None]:
        """Yield every change with a revision above ``from_revision``, in order.

        From 0 the watcher first gets every existing resource as a ``PUT`` (oldest
        revision first), then live changes. Otherwise it gets the changes after
        ``from_revision``; where a backend has compacted its history it gives the
        latest change of each key instead, so the watcher still converges. The
        iterator survives backend reconnects without losing or repeating a
        change, and ends when the store is closed. Close it (``aclose()``, or
        ``contextlib.aclosing``) to release what it holds in the backend at once.
        """
        ...

    async def revision(self) -> int:
        """Return the revision of the latest change (0 for an empty store)."""
        ...

    async def aclose(self) -> None:
        """End the watches, release connections. Idempotent."""
        ...


def check_key(key: ResourceKey) -> ResourceKey:
    """Return ``key`` if every store can hold it; raise ``InvalidError`` if not."""
    check_kind(key.kind)
    check_namespace(key.namespace)
    if not _DNS_LABEL.fullmatch(key.name):
        raise InvalidError(
            "a resource name must be a DNS label (a-z, 0-9 and '-', at most 63)",
            key=str(key),
        )
    return key


def check_kind(kind: str) -> str:
    """Return ``kind`` if it is a CamelCase identifier; raise ``InvalidError`` if not."""
    if not _KIND.fullmatch(kind):
        raise InvalidError("a kind must be letters and digits, starting with a letter", kind=kind)
    return kind


def check_namespace(namespace: str) -> str:
    """Return ``namespace`` if it is ``""`` or a DNS label; raise ``InvalidError`` if not."""
    if namespace and not _DNS_LABEL.fullmatch(namespace):
        raise InvalidError(
            "a namespace must be a DNS label (a-z, 0-9 and '-', at most 63)", namespace=namespace
        )
    return namespace


def labels_match(body: Mapping[str, Any], selector: Mapping[str, str] | None) -> bool:
    """Whether ``body["metadata"]["labels"]`` holds every pair of ``selector``."""
    if not selector:
        return True
    metadata = body.get("metadata")
    labels = metadata.get("labels") if isinstance(metadata, Mapping) else None
    if not isinstance(labels, Mapping):
        return False
    return all(labels.get(name) == value for name, value in selector.items())


def encode_body(body: Mapping[str, Any]) -> bytes:
    """The JSON bytes every backend stores; ``InvalidError`` if ``body`` is not JSON."""
    if not isinstance(body, Mapping):
        raise InvalidError("a resource body must be a JSON object", type=type(body).__name__)
    try:
        return msgspec.json.encode(dict(body))
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidError("a resource body must be JSON-serialisable", reason=str(exc)) from exc


def decode_body(data: bytes) -> dict[str, Any]:
    """A fresh ``dict`` from stored JSON; ``InvalidError`` if it is not a JSON object."""
    try:
        body = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise InvalidError("a stored resource is not JSON", reason=str(exc)) from exc
    if not isinstance(body, dict):
        raise InvalidError("a stored resource is not a JSON object")
    return body
