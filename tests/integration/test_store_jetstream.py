"""JetStreamStore against a real nats-server: the store contract, restarts and the wire format."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from structlog.testing import capture_logs

from kubefox.core.errors import UnavailableError
from kubefox.store import ResourceKey, ResourceStore, WatchKind, open_store
from kubefox.store.jetstream import JetStreamStore
from tests.contracts.store import (
    PLATFORM,
    PROD,
    QA,
    STAGING,
    StoreContract,
    body,
    next_event,
    summary,
    take,
)
from tests.servers import running_nats_server

pytestmark = pytest.mark.integration


def fresh_bucket() -> str:
    """A bucket no other test uses, so tests can share one server and run in parallel."""
    return f"test-{uuid.uuid4().hex}"


class TestJetStreamStore(StoreContract):
    @pytest.fixture
    async def store(self, nats_url: str) -> AsyncIterator[ResourceStore]:
        store = await JetStreamStore.connect(nats_url, bucket=fresh_bucket())
        try:
            yield store
        finally:
            await store.aclose()


async def test_a_watch_resumes_after_a_server_restart_without_loss_or_repeats(
    tmp_path: Path,
) -> None:
    """Restarting nats-server mid-watch loses no change and repeats none."""
    with running_nats_server(tmp_path) as server:
        store = await JetStreamStore.connect(server.url, reconnect_time_wait=0.05)
        try:
            qa = await store.create(QA, body(1))
            prod = await store.create(PROD, body(1))
            async with contextlib.aclosing(store.watch()) as events:
                before = await take(events, 2)
                qa2 = await store.update(QA, body(2), revision=qa.revision)
                before += await take(events, 1)
                waiting = asyncio.ensure_future(next_event(events, within=20))

                with capture_logs() as logs:
                    await server.stop()
                    await server.start()
                    # Writes wait in nats-py's buffer until it has reconnected.
                    staging = await store.create(STAGING, body(1))
                    await store.delete(PROD)
                    deleted_at = await store.revision()
                    qa3 = await store.update(QA, body(3), revision=qa2.revision)
                    after = [await waiting, *await take(events, 2)]
        finally:
            await store.aclose()

    assert summary(before) == [
        (WatchKind.PUT, QA, qa.revision),
        (WatchKind.PUT, PROD, prod.revision),
        (WatchKind.PUT, QA, qa2.revision),
    ]
    assert summary(after) == [
        (WatchKind.PUT, STAGING, staging.revision),
        (WatchKind.DELETE, PROD, deleted_at),
        (WatchKind.PUT, QA, qa3.revision),
    ]
    resumed = [entry for entry in logs if entry["event"] == "store.watch_resuming"]
    assert resumed
    assert resumed[0]["revision"] == qa2.revision


async def test_acknowledged_writes_survive_a_killed_server(tmp_path: Path) -> None:
    """With sync_interval always, a write that was acknowledged outlives a SIGKILL."""
    with running_nats_server(tmp_path) as server:
        store = await JetStreamStore.connect(server.url, reconnect_time_wait=0.05)
        try:
            written = [await store.put(QA, body(1)), await store.create(PROD, body(2))]
            await store.delete(PROD)
            last = await store.put(PLATFORM, body(3))
            assert server.pid is not None
            os.kill(server.pid, signal.SIGKILL)
            await server.stop()  # reaps the killed process

            await server.start()

            assert await store.get(QA) == written[0]
            assert await store.get(PLATFORM) == last
            with pytest.raises(LookupError):
                await store.get(PROD)
            assert await store.revision() == last.revision
        finally:
            await store.aclose()


async def test_calls_while_the_server_is_down_are_unavailable(tmp_path: Path) -> None:
    """With nats-server gone a call fails with UnavailableError once its timeout passes."""
    with running_nats_server(tmp_path) as server:
        store = await JetStreamStore.connect(server.url, request_timeout=0.3)
        try:
            await store.put(QA, body(1))
            await server.stop()

            with pytest.raises(UnavailableError):
                await store.get(QA)
        finally:
            await store.aclose()


async def test_connecting_to_no_server_is_unavailable(tmp_path: Path) -> None:
    """connect gives up after connect_timeout with UnavailableError instead of retrying forever."""
    with running_nats_server(tmp_path) as server:
        url = server.url
    # The port was just freed, so nothing listens there now.

    with pytest.raises(UnavailableError):
        await JetStreamStore.connect(url, connect_timeout=0.3)


async def test_keys_are_stored_as_kind_namespace_name(nats_url: str) -> None:
    """The KV key is <kind>.<namespace or _>.<name> and the value the JSON body."""
    bucket = fresh_bucket()
    store = await JetStreamStore.connect(nats_url, bucket=bucket)
    client = await nats.connect(nats_url)
    try:
        await store.put(QA, body(1))
        await store.put(ResourceKey("Platform", "main"), body(2))
        kv = await client.jetstream().key_value(bucket)

        keys = sorted(await kv.keys())
        entry = await kv.get("Environment.team-a.qa")
    finally:
        await client.close()
        await store.aclose()

    assert keys == ["Environment.team-a.qa", "Platform._.main"]
    assert entry.value == b'{"metadata":{"labels":{}},"spec":{"version":1}}'


async def test_keys_written_by_other_tools_are_ignored(nats_url: str) -> None:
    """find and watch pass over keys that are not <kind>.<namespace>.<name>."""
    bucket = fresh_bucket()
    store = await JetStreamStore.connect(nats_url, bucket=bucket)
    client = await nats.connect(nats_url)
    try:
        kv = await client.jetstream().key_value(bucket)
        await kv.put("Environment.stray", b"{}")
        await kv.put("Environment.team-a.Not_A_Label", b"{}")
        await kv.put("Environment.team-a.garbage", b"not json")
        qa = await store.put(QA, body(1))

        found = await store.find("Environment")
        async with contextlib.aclosing(store.watch()) as events:
            first = await next_event(events)
    finally:
        await client.close()
        await store.aclose()

    assert found == [qa]
    assert first.resource == qa


async def test_open_store_nats_url_uses_the_bucket_parameter(nats_url: str) -> None:
    """nats://host:port?bucket=name opens a JetStreamStore on that bucket."""
    bucket = fresh_bucket()
    store = await open_store(f"{nats_url}?bucket={bucket}")
    client = await nats.connect(nats_url)
    try:
        await store.put(QA, body(1))
        kv = await client.jetstream().key_value(bucket)
        entry = await kv.get("Environment.team-a.qa")
    finally:
        await client.close()
        await store.aclose()

    assert isinstance(store, JetStreamStore)
    assert entry.revision == 1


async def test_open_shares_a_connection_it_does_not_close(nats_url: str) -> None:
    """A store opened on the caller's connection leaves that connection open on aclose."""
    client = await nats.connect(nats_url)
    try:
        store = await JetStreamStore.open(client, bucket=fresh_bucket())
        await store.put(QA, body(1))

        await store.aclose()

        assert client.is_connected
    finally:
        await client.close()
