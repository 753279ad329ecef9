"""Behaviour every ResourceStore backend must show.

Backends subclass :class:`StoreContract` and provide a ``store`` fixture; the
tests below then run against each of them (unit: memory, integration:
JetStream against a real nats-server).

Changes made before a watch starts are made to distinct keys: a backend may
compact a key's older values (JetStream KV keeps ``history`` per key), and the
contract promises every change only to a watch that is already running.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kubefox.core.errors import ConflictError, InvalidError, NotFoundError
from kubefox.store import ResourceKey, ResourceStore, StoredResource, WatchEvent, WatchKind

QA = ResourceKey("Environment", "qa", "team-a")
PROD = ResourceKey("Environment", "prod", "team-a")
STAGING = ResourceKey("Environment", "staging", "team-b")
PLATFORM = ResourceKey("Platform", "main")


def body(version: int, **labels: str) -> dict[str, Any]:
    """A small resource document; ``labels`` end up in ``metadata.labels``."""
    return {"metadata": {"labels": labels}, "spec": {"version": version}}


async def next_event(events: AsyncIterator[WatchEvent], within: float = 5.0) -> WatchEvent:
    """The watch's next event, failing the test instead of hanging."""
    async with asyncio.timeout(within):
        return await anext(events)


async def take(events: AsyncIterator[WatchEvent], count: int) -> list[WatchEvent]:
    return [await next_event(events) for _ in range(count)]


def summary(events: list[WatchEvent]) -> list[tuple[WatchKind, ResourceKey, int]]:
    return [(event.kind, event.key, event.revision) for event in events]


class StoreContract:
    async def test_create_then_get_returns_the_body_and_its_revision(
        self, store: ResourceStore
    ) -> None:
        """A created resource reads back unchanged, with the revision create returned."""
        created = await store.create(QA, body(1, team="a"))

        fetched = await store.get(QA)

        assert fetched == created
        assert fetched.key == QA
        assert fetched.body == body(1, team="a")
        assert fetched.revision > 0

    async def test_create_of_an_existing_resource_is_a_conflict(self, store: ResourceStore) -> None:
        """create never overwrites: the first body stays."""
        await store.create(QA, body(1))

        with pytest.raises(ConflictError):
            await store.create(QA, body(2))

        assert (await store.get(QA)).body == body(1)

    async def test_cluster_scoped_and_namespaced_keys_are_distinct(
        self, store: ResourceStore
    ) -> None:
        """The same kind and name in a namespace and at cluster scope are two resources."""
        await store.create(ResourceKey("Environment", "qa"), body(1))
        await store.create(QA, body(2))

        assert (await store.get(ResourceKey("Environment", "qa"))).body == body(1)
        assert (await store.get(QA)).body == body(2)

    async def test_find_returns_one_kind_optionally_in_one_namespace(
        self, store: ResourceStore
    ) -> None:
        """find filters by kind, then namespace ("" is cluster scope), sorted by name."""
        await store.create(QA, body(1))
        await store.create(PROD, body(2))
        await store.create(STAGING, body(3))
        await store.create(ResourceKey("Environment", "global"), body(4))
        await store.create(PLATFORM, body(5))

        every = await store.find("Environment")
        team_a = await store.find("Environment", namespace="team-a")
        cluster = await store.find("Environment", namespace="")
        nothing = await store.find("VirtualEnvironment")

        assert [item.key for item in every] == [
            ResourceKey("Environment", "global"),
            PROD,
            QA,
            STAGING,
        ]
        assert [item.key for item in team_a] == [PROD, QA]
        assert [item.key for item in cluster] == [ResourceKey("Environment", "global")]
        assert nothing == []

    async def test_find_by_labels_keeps_resources_holding_every_label(
        self, store: ResourceStore
    ) -> None:
        """A label selector is equality on every given pair of metadata.labels."""
        await store.create(QA, body(1, tier="test", team="a"))
        await store.create(PROD, body(2, tier="live", team="a"))
        await store.create(STAGING, {"spec": {}})  # no labels at all

        found = await store.find("Environment", labels={"team": "a", "tier": "test"})
        team = await store.find("Environment", labels={"team": "a"})

        assert [item.key for item in found] == [QA]
        assert [item.key for item in team] == [PROD, QA]

    async def test_find_leaves_out_deleted_resources(self, store: ResourceStore) -> None:
        """A deleted resource is gone from find."""
        await store.create(QA, body(1))
        await store.create(PROD, body(2))

        await store.delete(QA)

        assert [item.key for item in await store.find("Environment")] == [PROD]

    async def test_update_at_the_current_revision_replaces_the_body(
        self, store: ResourceStore
    ) -> None:
        """Compare-and-set succeeds at the current revision and gives a newer one."""
        created = await store.create(QA, body(1))

        updated = await store.update(QA, body(2), revision=created.revision)

        assert updated.revision > created.revision
        assert await store.get(QA) == updated
        assert updated.body == body(2)

    async def test_stale_revision_is_a_conflict(self, store: ResourceStore) -> None:
        """A write based on an old revision is refused, and the newer body is kept."""
        created = await store.create(QA, body(1))
        updated = await store.update(QA, body(2), revision=created.revision)

        with pytest.raises(ConflictError) as caught:
            await store.update(QA, body(3), revision=created.revision)

        assert caught.value.details["expected"] == created.revision
        assert caught.value.details["actual"] == updated.revision
        assert (await store.get(QA)).body == body(2)

    async def test_update_of_a_missing_resource_is_not_found(self, store: ResourceStore) -> None:
        """update never creates."""
        with pytest.raises(NotFoundError):
            await store.update(QA, body(1), revision=1)

    async def test_update_at_the_revision_of_its_delete_does_not_bring_it_back(
        self, store: ResourceStore
    ) -> None:
        """A delete's revision (seen by a watcher) is no licence to write a deleted resource."""
        await store.create(QA, body(1))
        await store.delete(QA)
        deleted_at = await store.revision()

        with pytest.raises(NotFoundError):
            await store.update(QA, body(2), revision=deleted_at)

        with pytest.raises(NotFoundError):
            await store.get(QA)

    async def test_put_creates_then_replaces_unconditionally(self, store: ResourceStore) -> None:
        """put needs no revision, for new and existing resources alike."""
        first = await store.put(QA, body(1))
        second = await store.put(QA, body(2))

        assert second.revision > first.revision
        assert (await store.get(QA)).body == body(2)

    async def test_delete_removes_the_resource(self, store: ResourceStore) -> None:
        """After delete the resource is not found, and it can be created again."""
        await store.create(QA, body(1))

        await store.delete(QA)

        with pytest.raises(NotFoundError):
            await store.get(QA)
        recreated = await store.create(QA, body(2))
        assert (await store.get(QA)) == recreated

    async def test_delete_at_the_current_revision_removes_the_resource(
        self, store: ResourceStore
    ) -> None:
        """A conditional delete at the current revision succeeds."""
        created = await store.create(QA, body(1))

        await store.delete(QA, revision=created.revision)

        with pytest.raises(NotFoundError):
            await store.get(QA)

    async def test_delete_with_a_stale_revision_is_a_conflict(self, store: ResourceStore) -> None:
        """A conditional delete based on an old revision leaves the resource alone."""
        created = await store.create(QA, body(1))
        updated = await store.update(QA, body(2), revision=created.revision)

        with pytest.raises(ConflictError) as caught:
            await store.delete(QA, revision=created.revision)

        assert caught.value.details["actual"] == updated.revision
        assert await store.get(QA) == updated

    async def test_missing_resource_is_not_found(self, store: ResourceStore) -> None:
        """Reading or deleting a key nobody wrote raises NotFoundError, also a LookupError."""
        with pytest.raises(LookupError):
            await store.get(QA)
        with pytest.raises(NotFoundError):
            await store.delete(QA)
        with pytest.raises(NotFoundError):
            await store.delete(QA, revision=1)

    @pytest.mark.parametrize(
        "key",
        [
            ResourceKey("Environment", "Upper"),
            ResourceKey("Environment", "dotted.name"),
            ResourceKey("Environment", "under_score"),
            ResourceKey("Environment", ""),
            ResourceKey("Environment", "x" * 64),
            ResourceKey("Environment", "-leading-dash"),
            ResourceKey("Environment", "qa", "Team A"),
            ResourceKey("Environment", "qa", "_"),
            ResourceKey("Bad Kind", "qa"),
            ResourceKey("Env.ironment", "qa"),
            ResourceKey("", "qa"),
            ResourceKey("Environment", "a>"),
            ResourceKey("Environment", "*"),
        ],
    )
    async def test_invalid_keys_are_rejected(self, store: ResourceStore, key: ResourceKey) -> None:
        """Kinds are identifiers and names/namespaces DNS labels; anything else is invalid."""
        with pytest.raises(InvalidError):
            await store.create(key, body(1))
        with pytest.raises(InvalidError):
            await store.put(key, body(1))
        with pytest.raises(InvalidError):
            await store.get(key)

    async def test_a_body_that_is_not_json_is_invalid(self, store: ResourceStore) -> None:
        """Only JSON objects can be stored."""
        with pytest.raises(InvalidError):
            await store.put(QA, {"when": object()})

    async def test_bodies_handed_out_are_copies(self, store: ResourceStore) -> None:
        """Changing a body after writing or reading it does not change the store."""
        written = body(1)
        stored = await store.put(QA, written)

        written["spec"]["version"] = 99
        fetched = await store.get(QA)
        fetched.body["spec"]["version"] = 98

        assert stored.body == body(1)
        assert (await store.get(QA)).body == body(1)

    async def test_revisions_strictly_increase_across_keys_and_deletes(
        self, store: ResourceStore
    ) -> None:
        """Every change, deletes included, gets a store-wide revision above all before it."""
        start = await store.revision()
        revisions = [
            (await store.create(QA, body(1))).revision,
            (await store.create(PROD, body(1))).revision,
            (await store.put(QA, body(2))).revision,
        ]
        await store.delete(PROD)
        after_delete = await store.revision()
        revisions.append(after_delete)
        revisions.append((await store.create(PROD, body(3))).revision)

        assert start < revisions[0]
        assert revisions == sorted(set(revisions))
        assert after_delete > revisions[2]
        assert await store.revision() == revisions[-1]

    async def test_watch_from_zero_replays_existing_resources_then_live_changes(
        self, store: ResourceStore
    ) -> None:
        """From 0: every existing resource as PUT (no tombstones), then each change in order."""
        qa = await store.create(QA, body(1))
        await store.create(STAGING, body(1))
        await store.delete(STAGING)
        prod = await store.create(PROD, body(1))

        async with contextlib.aclosing(store.watch()) as events:
            replayed = await take(events, 2)
            qa2 = await store.update(QA, body(2), revision=qa.revision)
            await store.delete(PROD)
            deleted_at = await store.revision()
            platform = await store.create(PLATFORM, body(1))
            qa3 = await store.put(QA, body(3))
            live = await take(events, 4)

        assert summary(replayed) == [
            (WatchKind.PUT, QA, qa.revision),
            (WatchKind.PUT, PROD, prod.revision),
        ]
        assert [event.resource for event in replayed] == [qa, prod]
        assert summary(live) == [
            (WatchKind.PUT, QA, qa2.revision),
            (WatchKind.DELETE, PROD, deleted_at),
            (WatchKind.PUT, PLATFORM, platform.revision),
            (WatchKind.PUT, QA, qa3.revision),
        ]
        assert live[0].resource == qa2
        assert live[1].resource is None
        assert live[3].resource == qa3

    async def test_watch_from_a_revision_sees_only_later_changes_in_order(
        self, store: ResourceStore
    ) -> None:
        """Changes up to from_revision are not replayed; later ones come in revision order."""
        await store.create(QA, body(1))
        await store.create(PLATFORM, body(1))
        start = await store.revision()
        prod = await store.create(PROD, body(1))
        await store.delete(QA)
        deleted_at = await store.revision()
        staging = await store.create(STAGING, body(1))

        async with contextlib.aclosing(store.watch(from_revision=start)) as events:
            missed = await take(events, 3)
            prod2 = await store.update(PROD, body(2), revision=prod.revision)
            live = await next_event(events)

        assert summary(missed) == [
            (WatchKind.PUT, PROD, prod.revision),
            (WatchKind.DELETE, QA, deleted_at),
            (WatchKind.PUT, STAGING, staging.revision),
        ]
        assert summary([live]) == [(WatchKind.PUT, PROD, prod2.revision)]
        assert live.resource == prod2

    async def test_watch_from_the_current_revision_sees_only_new_changes(
        self, store: ResourceStore
    ) -> None:
        """Watching from revision() skips everything already there."""
        await store.create(QA, body(1))

        async with contextlib.aclosing(store.watch(from_revision=await store.revision())) as events:
            pending = asyncio.ensure_future(next_event(events))
            prod = await store.create(PROD, body(1))
            event = await pending

        assert summary([event]) == [(WatchKind.PUT, PROD, prod.revision)]

    async def test_concurrent_compare_and_set_writers_exactly_one_wins(
        self, store: ResourceStore
    ) -> None:
        """Of writers racing from the same revision one succeeds; the rest get ConflictError."""
        created = await store.create(QA, body(0))

        results = await asyncio.gather(
            *(store.update(QA, body(n), revision=created.revision) for n in range(1, 9)),
            return_exceptions=True,
        )

        winners = [result for result in results if isinstance(result, StoredResource)]
        losers = [result for result in results if isinstance(result, ConflictError)]
        assert len(winners) == 1
        assert len(losers) == 7
        assert await store.get(QA) == winners[0]

    async def test_a_watch_ends_when_the_store_closes(self, store: ResourceStore) -> None:
        """aclose ends a waiting watch instead of leaving it hanging."""
        await store.create(QA, body(1))
        events = store.watch()
        await next_event(events)
        pending = asyncio.ensure_future(anext(events))

        await store.aclose()

        with pytest.raises(StopAsyncIteration):
            async with asyncio.timeout(5):
                await pending
        await store.aclose()  # idempotent
