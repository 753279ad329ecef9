"""ResourceView: becomes ready on any store, follows changes, never goes back in time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from kubefox.resources import AppDeployment, Environment, VirtualEnvironment
from kubefox.router import ResourceView
from kubefox.store import MemoryStore, ResourceKey, StoredResource
from kubefox.store.typed import TypedStore
from tests.unit.router.world import (
    DEPLOYMENT,
    NAMESPACE,
    VE,
    apply_hello_world,
    environment,
    virtual_environment,
)


@contextlib.asynccontextmanager
async def following(view: ResourceView, store: MemoryStore) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``view`` for the ``with`` block; closing the store ends it."""
    task = asyncio.create_task(view.run())
    try:
        yield task
    finally:
        await store.aclose()
        await task


async def test_view_is_ready_on_an_empty_store() -> None:
    """Nothing to load is loaded at once."""
    store = MemoryStore()
    view = ResourceView(store, namespace=NAMESPACE)
    async with following(view, store):
        await view.wait_ready()
        assert view.snapshot() == {}


async def test_view_is_ready_when_the_latest_change_is_a_delete() -> None:
    """A watch from 0 carries no tombstones; the view must not wait for one."""
    store = MemoryStore()
    typed = TypedStore(store, namespace=NAMESPACE)
    await apply_hello_world(typed)
    await typed.apply(environment("prod", who="Universe", subPath="prod"))
    await typed.delete(Environment, "prod")
    view = ResourceView(store, namespace=NAMESPACE)

    async with following(view, store):
        async with asyncio.timeout(5):
            await view.wait_ready()
        assert view.get(Environment, "prod") is None
        assert view.get(AppDeployment, DEPLOYMENT) is not None
        assert view.revision == await store.revision()


async def test_view_follows_writes_and_deletes_after_it_started() -> None:
    """Changes made while running reach the view, in order."""
    store = MemoryStore()
    typed = TypedStore(store, namespace=NAMESPACE)
    view = ResourceView(store, namespace=NAMESPACE)
    async with following(view, store):
        await view.wait_ready()
        await apply_hello_world(typed)
        await view.wait_for_revision(await store.revision())
        assert view.get(VirtualEnvironment, VE) is not None

        await typed.delete(VirtualEnvironment, VE)
        await view.wait_for_revision(await store.revision())
        assert view.get(VirtualEnvironment, VE) is None


async def test_view_keeps_its_namespace_and_cluster_scoped_kinds_only() -> None:
    """VEs of other namespaces are invisible; Environments (cluster-scoped) are all seen."""
    store = MemoryStore()
    await TypedStore(store, namespace="elsewhere").apply(virtual_environment("other"))
    await TypedStore(store, namespace="elsewhere").apply(environment("shared"))
    view = ResourceView(store, namespace=NAMESPACE)
    async with following(view, store):
        await view.wait_ready()
        assert view.get(VirtualEnvironment, "other") is None
        assert view.get(Environment, "shared") is not None


class _RacingStore(MemoryStore):
    """A store that changes a resource twice while the view lists it.

    The view lists after reading the start revision, so it sees the newest
    state, and the watch then replays the older change too.
    """

    def __init__(self, typed_key: ResourceKey, bodies: list[Mapping[str, Any]]) -> None:
        super().__init__()
        self._key = typed_key
        self._bodies = bodies

    async def find(
        self,
        kind: str,
        *,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> list[StoredResource]:
        while self._bodies:
            await self.put(self._key, self._bodies.pop(0))
        return await super().find(kind, namespace=namespace, labels=labels)


async def test_view_never_goes_back_to_an_older_version() -> None:
    """A change replayed by the watch that the listing already passed is skipped."""
    seed = MemoryStore()
    typed = TypedStore(seed, namespace=NAMESPACE)
    first = await typed.apply(virtual_environment(who="first"))
    key = typed.key("VirtualEnvironment", VE)
    body = dict((await seed.get(key)).body)
    store = _RacingStore(
        key,
        [{**body, "data": {"vars": {"who": who}}} for who in ("second", "third")],
    )
    await store.put(key, body)
    versions: list[str] = []
    view = ResourceView(store, namespace=NAMESPACE)

    def record() -> None:
        current = view.get(VirtualEnvironment, VE)
        assert current is not None
        versions.append(current.data.vars["who"])  # type: ignore[arg-type]

    view.on_change(record)
    async with following(view, store):
        await view.wait_ready()
        await view.wait_for_revision(await store.revision())

    assert first.data.vars["who"] == "first"
    assert set(versions) == {"third"}
