"""In-process ResourceStore: the default for unit tests and single-node development.

It behaves like the JetStream store on purpose, so code tested against it keeps
working against the real one: the same revision numbering (one global counter,
deletes included), the same key rules, bodies kept as JSON bytes (every read
hands out a fresh copy), and the same watch semantics.

Watches read one shared change log instead of having a queue each: a slow
watcher then costs nothing, and one that falls behind the bounded log is served
from the latest change of every key (tombstones included), the way a JetStream
KV bucket with ``history=1`` would serve it. Nothing awaits between reading and
writing state, so the event loop itself makes every method atomic.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from kubefox.core.errors import ConflictError, NotFoundError, UnavailableError
from kubefox.store.protocol import (
    ResourceKey,
    StoredResource,
    WatchEvent,
    WatchKind,
    check_key,
    check_kind,
    check_namespace,
    decode_body,
    encode_body,
    labels_match,
)

#: Changes kept for watchers resuming from a revision; older ones are compacted.
DEFAULT_HISTORY = 10_000


@dataclasses.dataclass(frozen=True, slots=True)
class _Change:
    revision: int
    key: ResourceKey
    data: bytes | None  # None for a delete


class MemoryStore:
    """A :class:`~kubefox.store.protocol.ResourceStore` held in this process."""

    def __init__(self, *, history: int = DEFAULT_HISTORY) -> None:
        if history < 1:
            raise ValueError("history must keep at least one change")
        self._latest: dict[ResourceKey, _Change] = {}  # live values and tombstones
        self._log: collections.deque[_Change] = collections.deque(maxlen=history)
        self._revision = 0
        self._changed = asyncio.Event()
        self._closed = False

    async def get(self, key: ResourceKey) -> StoredResource:
        """Return the resource; raise ``NotFoundError`` if there is none."""
        self._check_open()
        return _stored(self._live(check_key(key)))

    async def find(
        self,
        kind: str,
        *,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> list[StoredResource]:
        """Return every resource of ``kind`` (in ``namespace``) whose labels match."""
        self._check_open()
        check_kind(kind)
        if namespace is not None:
            check_namespace(namespace)
        found = [
            _stored(change)
            for key, change in self._latest.items()
            if key.kind == kind
            and change.data is not None
            and (namespace is None or key.namespace == namespace)
        ]
        found = [item for item in found if labels_match(item.body, labels)]
        return sorted(found, key=lambda item: (item.key.namespace, item.key.name))

    async def create(self, key: ResourceKey, body: Mapping[str, Any]) -> StoredResource:
        """Store a new resource; raise ``ConflictError`` if it exists."""
        self._check_open()
        data = encode_body(body)
        current = self._latest.get(check_key(key))
        if current is not None and current.data is not None:
            raise ConflictError("resource already exists", key=str(key), actual=current.revision)
        return _stored(self._record(key, data))

    async def update(
        self, key: ResourceKey, body: Mapping[str, Any], *, revision: int
    ) -> StoredResource:
        """Replace the resource if it is still at ``revision``."""
        self._check_open()
        data = encode_body(body)
        current = self._live(check_key(key))
        _expect(key, revision, current.revision)
        return _stored(self._record(key, data))

    async def put(self, key: ResourceKey, body: Mapping[str, Any]) -> StoredResource:
        """Create or replace the resource."""
        self._check_open()
        data = encode_body(body)
        return _stored(self._record(check_key(key), data))

    async def delete(self, key: ResourceKey, *, revision: int | None = None) -> None:
        """Remove the resource, if still at ``revision`` when one is given."""
        self._check_open()
        current = self._live(check_key(key))
        if revision is not None:
            _expect(key, revision, current.revision)
        self._record(key, None)

    async def watch(self, *, from_revision: int = 0) -> AsyncGenerator[WatchEvent, None]:
        """Yield every change after ``from_revision`` in order, then live changes."""
        self._check_open()
        if from_revision <= 0:
            # A watcher starting from nothing needs the current state, not the
            # tombstones of resources deleted before it started.
            cursor = self._revision
            batch = sorted(
                (change for change in self._latest.values() if change.data is not None),
                key=lambda change: change.revision,
            )
        else:
            cursor = from_revision
            batch = []
        while True:
            for change in batch:
                yield _event(change)
            if batch:
                cursor = batch[-1].revision
            batch = self._changes_after(cursor)
            # Checked only once caught up: a watcher ends after it has seen every
            # change made before the store closed.
            if not batch:
                if self._closed:
                    return
                await self._changed.wait()
                batch = self._changes_after(cursor)

    async def revision(self) -> int:
        """Return the revision of the latest change (0 for an empty store)."""
        self._check_open()
        return self._revision

    async def aclose(self) -> None:
        """End every watch; later calls raise ``UnavailableError``. Idempotent."""
        self._closed = True
        self._changed.set()

    def _check_open(self) -> None:
        if self._closed:
            raise UnavailableError("the store is closed")

    def _live(self, key: ResourceKey) -> _Change:
        current = self._latest.get(key)
        if current is None or current.data is None:
            raise NotFoundError("no such resource", key=str(key))
        return current

    def _record(self, key: ResourceKey, data: bytes | None) -> _Change:
        self._revision += 1
        change = _Change(self._revision, key, data)
        self._latest[key] = change
        self._log.append(change)
        # Wake every waiting watcher: they all wait on the event being replaced.
        self._changed.set()
        self._changed = asyncio.Event()
        return change

    def _changes_after(self, cursor: int) -> list[_Change]:
        if cursor >= self._revision:
            return []
        # Revisions are consecutive, so the log is indexable by revision.
        first = self._log[0].revision
        if cursor + 1 >= first:
            return list(itertools.islice(self._log, cursor + 1 - first, None))
        return sorted(
            (change for change in self._latest.values() if change.revision > cursor),
            key=lambda change: change.revision,
        )


def _expect(key: ResourceKey, expected: int, actual: int) -> None:
    if expected != actual:
        raise ConflictError(
            "resource changed since it was read", key=str(key), expected=expected, actual=actual
        )


def _stored(change: _Change) -> StoredResource:
    if change.data is None:  # pragma: no cover - callers pass live changes only
        raise NotFoundError("no such resource", key=str(change.key))
    return StoredResource(key=change.key, body=decode_body(change.data), revision=change.revision)


def _event(change: _Change) -> WatchEvent:
    if change.data is None:
        return WatchEvent(
            kind=WatchKind.DELETE, key=change.key, resource=None, revision=change.revision
        )
    return WatchEvent(
        kind=WatchKind.PUT, key=change.key, resource=_stored(change), revision=change.revision
    )
