"""An in-memory view of the resources one platform routes with, fed by a store watch.

httpsrv and every broker read resources on each event; a store round trip per
event would dominate the hot path, so each keeps this view, current to within
one watch delivery. Readers are synchronous dict lookups. Waiters can ask for
"at least revision N" to know a write has reached this view (release
propagation is measured that way).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

import structlog

from kubefox.core.errors import KubeFoxError
from kubefox.resources import Resource
from kubefox.store.protocol import ResourceStore, WatchEvent, WatchKind
from kubefox.store.typed import CLUSTER_KINDS, from_stored

R = TypeVar("R", bound=Resource)

log = structlog.get_logger(__name__)


class ResourceView:
    """Typed resources of one namespace (plus cluster-scoped ones), kept current by a watch."""

    def __init__(self, store: ResourceStore, *, namespace: str) -> None:
        self._store = store
        self._namespace = namespace
        self._items: dict[str, dict[str, Resource]] = {}
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
        if start == 0:
            self._ready.set()
        watch = self._store.watch(from_revision=0)
        async with contextlib.aclosing(watch):
            async for change in watch:
                self._apply(change)
                if not self._ready.is_set() and change.revision >= start:
                    self._ready.set()
                async with self._changed:
                    self._changed.notify_all()

    def _apply(self, change: WatchEvent) -> None:
        self._revision = max(self._revision, change.revision)
        key = change.key
        if key.kind not in CLUSTER_KINDS and key.namespace != self._namespace:
            return
        items = self._items.setdefault(key.kind, {})
        if change.kind is WatchKind.DELETE or change.resource is None:
            items.pop(key.name, None)
        else:
            try:
                items[key.name] = from_stored(change.resource)
            except KubeFoxError as exc:
                # A resource the store holds but we cannot read must not stop routing
                # for everything else; the API validates before writing, so this is
                # only reachable by writing to the bucket directly.
                log.warning("resource.unreadable", key=str(key), error=str(exc))
                items.pop(key.name, None)
        for listener in self._listeners:
            listener()

    def snapshot(self) -> dict[str, Any]:
        """Counts per kind, for status output."""
        return {kind: len(items) for kind, items in sorted(self._items.items())}
