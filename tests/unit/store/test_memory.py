"""MemoryStore: the store contract, plus what only an in-process store can promise."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from kubefox.core.errors import InvalidError, UnavailableError
from kubefox.store import MemoryStore, ResourceStore, WatchKind, open_store
from tests.contracts.store import PROD, QA, STAGING, StoreContract, body, take


class TestMemoryStore(StoreContract):
    @pytest.fixture
    async def store(self) -> AsyncIterator[ResourceStore]:
        store = MemoryStore()
        try:
            yield store
        finally:
            await store.aclose()


async def test_a_watcher_behind_the_history_gets_the_latest_change_of_each_key() -> None:
    """Past the bounded log a watch is served compacted: one change per key, tombstones too."""
    store = MemoryStore(history=2)
    qa = await store.create(QA, body(1))
    await store.create(PROD, body(1))
    staging = await store.create(STAGING, body(1))
    qa2 = await store.update(QA, body(2), revision=qa.revision)
    await store.delete(PROD)
    deleted_at = await store.revision()

    async with contextlib.aclosing(store.watch(from_revision=qa.revision)) as events:
        compacted = await take(events, 3)

    assert [(event.kind, event.key, event.revision) for event in compacted] == [
        (WatchKind.PUT, STAGING, staging.revision),
        (WatchKind.PUT, QA, qa2.revision),
        (WatchKind.DELETE, PROD, deleted_at),
    ]


async def test_a_closed_store_refuses_every_call() -> None:
    """After aclose, reads, writes and new watches raise UnavailableError."""
    store = MemoryStore()
    await store.aclose()

    with pytest.raises(UnavailableError):
        await store.get(QA)
    with pytest.raises(UnavailableError):
        await store.put(QA, body(1))
    with pytest.raises(UnavailableError):
        await anext(store.watch())


def test_history_must_keep_something() -> None:
    """A store that could not replay even one change is a configuration error."""
    with pytest.raises(ValueError, match="history"):
        MemoryStore(history=0)


async def test_open_store_memory_url_gives_a_fresh_memory_store() -> None:
    """memory:// opens an empty in-process store each time."""
    first = await open_store("memory://")
    await first.put(QA, body(1))

    second = await open_store("memory://")

    assert isinstance(second, MemoryStore)
    assert await second.find("Environment") == []


async def test_open_store_with_an_unknown_scheme_is_invalid() -> None:
    """A scheme that is neither built in nor a plugin is refused with its name."""
    with pytest.raises(InvalidError, match="carrier-pigeon"):
        await open_store("carrier-pigeon://coop")
