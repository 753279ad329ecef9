"""An in-memory view of the resources one platform routes with, fed by a store watch.

httpsrv and every broker read resources on each event; a store round trip per
event would dominate the hot path, so each keeps this view, current to within
one watch delivery. Readers are synchronous dict lookups. Waiters can ask for
"at least revision N" to know a write has reached this view (release
propagation is measured that way).

The view starts the way Kubernetes informers do: list every kind, then watch
from the revision the store had before listing. Watching from 0 alone cannot
say when the initial state is complete: a watch from 0 leaves out tombstones,
so when the store's latest change is a delete, no delivered change ever reaches
the starting revision and the view would never become ready. Listing after
reading the revision may see newer states than the watch then replays, so every
key remembers the revision it was last changed at and older changes are skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

import structlog

from kubefox.core.errors import KubeFoxError
from kubefox.resources import RESOURCE_KINDS, Resource
from kubefox.store.protocol import ResourceKey, ResourceStore, StoredResource, WatchEvent, WatchKind
from kubefox.store.typed import CLUSTER_KINDS, from_stored

R = TypeVar("R", bound=Resource)

log = structlog.get_logger(__name__)


class ResourceView:
    """Typed resources of one namespace (plus cluster-scoped ones), kept current by a watch."""

    def __init__(self, store: ResourceStore, *, namespace: str) -> None:
        self._store = store
        self._namespace = namespace
        self._items: dict[str, dict[str, Resource]] = {}
        # (kind, name) -> revision of the last change applied, deletes included
        self._versions: dict[tuple[str, str], int] = {}
        self._revision = 0
        self._changed = asyncio.Condition()
        self._ready = asyncio.Event()
        self._listeners: list[Callable[[], None]] = []

    @property
    def revision(self) -> int:
        """The store revision this view has caught up with."""
        return self._revision

    def get(self, model: type[R], name: str) -> R | None:
        """The resource of ``model``'s kind named ``name``, or ``None``."""
        found = self._items.get(model.__name__, {}).get(name)
        return found if isinstance(found, model) else None

    def all(self, model: type[R]) -> list[R]:
        """Every resource of ``model``'s kind, sorted by name."""
        items = self._items.get(model.__name__, {})
        found: list[R] = []
        for name in sorted(items):
            item = items[name]
            if isinstance(item, model):
                found.append(item)
        return found

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every change the view applies (cache invalidation)."""
        self._listeners.append(listener)

    async def wait_ready(self) -> None:
        """Return once the view holds everything the store held when :meth:`run` started."""
        await self._ready.wait()

    async def wait_for_revision(self, revision: int) -> None:
        """Return once the view has applied every change up to ``revision``."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._revision >= revision)

    async def run(self) -> None:
        """Follow the store until cancelled or the store closes."""
        start = await self._store.revision()
        for kind in RESOURCE_KINDS:
            namespace = "" if kind in CLUSTER_KINDS else self._namespace
            for stored in await self._store.find(kind, namespace=namespace):
                self._apply_put(stored)
        self._revision = max(self._revision, start)
        self._ready.set()
        await self._notify()
        watch = self._store.watch(from_revision=start)
        async with contextlib.aclosing(watch):
            async for change in watch:
                self._apply(change)
                await self._notify()

    async def _notify(self) -> None:
        for listener in self._listeners:
            listener()
        async with self._changed:
            self._changed.notify_all()

    def _apply(self, change: WatchEvent) -> None:
        self._revision = max(self._revision, change.revision)
        if change.kind is WatchKind.DELETE or change.resource is None:
            key = change.key
            if self._in_scope(key) and self._newer(key, change.revision):
                self._items.get(key.kind, {}).pop(key.name, None)
        else:
            self._apply_put(change.resource)

    def _apply_put(self, stored: StoredResource) -> None:
        key = stored.key
        if not self._in_scope(key) or not self._newer(key, stored.revision):
            return
        items = self._items.setdefault(key.kind, {})
        try:
            items[key.name] = from_stored(stored)
        except KubeFoxError as exc:
            # A resource the store holds but we cannot read must not stop routing
            # for everything else; the API validates before writing, so this is
            # only reachable by writing to the bucket directly.
            log.warning("resource.unreadable", key=str(key), error=str(exc))
            items.pop(key.name, None)

    def _in_scope(self, key: ResourceKey) -> bool:
        return key.kind in CLUSTER_KINDS or key.namespace == self._namespace

    def _newer(self, key: ResourceKey, revision: int) -> bool:
        """Record ``revision`` for ``key`` if it is newer than what the view holds."""
        slot = (key.kind, key.name)
        if self._versions.get(slot, 0) >= revision:
            return False
        self._versions[slot] = revision
        return True

    def snapshot(self) -> dict[str, Any]:
        """Counts per kind, for status output."""
        return {kind: len(items) for kind, items in sorted(self._items.items())}
