"""The Kit's natsio transport against a real nats-server: the KV record over plain NATS, the bound.

The registration record is spoken as JetStream's wire protocol by hand (a
put is a request to ``$KV.<bucket>.<key>``), so these tests read it back with
nats-py's own KV client, which is what the platform's registry uses. The
last test runs a Kit whose handler holds every event until released, to
show that events delivered inside the socket read still respect
``max_in_flight`` and keep their order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator

import nats
import nats.js.errors
import pytest
from nats.aio.client import Client
from nats.js.api import KeyValueConfig, StorageType

from kubefox.kit import Kit, Kontext, Response
from kubefox.kit._natsio import MIN_RECORD_AGE, NatsioTransport, connect
from kubefox.kit._server import Server
from kubefox.kit._transport import DirectSubscriber, Payload
from tests.integration.test_kit_nats import (
    fresh_platform,
    httpsrv_call,
    key_of,
    kit_settings,
    registered,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    """The test's nats-py connection: it reads the buckets as the registry does."""
    client = await nats.connect(nats_url)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def bucket(nc: Client) -> AsyncIterator[str]:
    """A bucket name no other test uses; deleted afterwards if anyone made it."""
    name = f"kf-inst-{uuid.uuid4().hex[:10]}"
    yield name
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await nc.jetstream().delete_key_value(name)


async def test_register_puts_the_record_and_deregister_deletes_it(
    nc: Client, nats_url: str, bucket: str
) -> None:
    """The record put over plain NATS is what nats-py's KV reads; the delete hides it."""
    settings = kit_settings(fresh_platform(), nats_url, "backend", instances_bucket=bucket)
    kv = await nc.jetstream().create_key_value(
        KeyValueConfig(bucket=bucket, history=1, ttl=60, storage=StorageType.MEMORY)
    )
    transport = await connect(settings)
    try:
        await transport.register(key_of(settings), b'{"id": "one"}')
        await transport.register(key_of(settings), b'{"id": "two"}')
        entry = await kv.get(key_of(settings))
        assert entry.value == b'{"id": "two"}'
        assert entry.revision == 2
        await transport.deregister(key_of(settings))
        with pytest.raises(nats.js.errors.KeyNotFoundError):
            await kv.get(key_of(settings))
    finally:
        await transport.close()


async def test_a_missing_bucket_is_created_as_nats_py_would(
    nc: Client, nats_url: str, bucket: str
) -> None:
    """Alone on a server, a Kit creates the bucket: memory, one value per key, records expire."""
    settings = kit_settings(
        fresh_platform(), nats_url, "backend", instances_bucket=bucket, heartbeat_interval=1.0
    )
    transport = await connect(settings)
    try:
        await transport.register(key_of(settings), b"{}")
    finally:
        await transport.close()
    status = await (await nc.jetstream().key_value(bucket)).status()
    assert status.history == 1
    assert status.ttl == MIN_RECORD_AGE  # 3 heartbeats are shorter: the floor holds
    info = await nc.jetstream().stream_info(f"KV_{bucket}")
    assert info.config.storage == StorageType.MEMORY
    assert info.state.messages == 1


async def test_a_bucket_made_with_another_configuration_is_used_as_it_is(
    nc: Client, nats_url: str, bucket: str
) -> None:
    """Someone else's bucket (another TTL) is not recreated: the record goes into it."""
    kv = await nc.jetstream().create_key_value(
        KeyValueConfig(bucket=bucket, history=1, ttl=300, storage=StorageType.MEMORY)
    )
    settings = kit_settings(fresh_platform(), nats_url, "backend", instances_bucket=bucket)
    transport = await connect(settings)
    try:
        await transport.register(key_of(settings), b'{"ok": true}')
    finally:
        await transport.close()
    assert (await kv.get(key_of(settings))).value == b'{"ok": true}'
    assert (await kv.status()).ttl == 300


async def test_events_delivered_in_the_read_keep_the_bound_and_their_order(
    nc: Client, nats_url: str, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """max_in_flight=1: three events, one handler at a time, answered in arrival order."""
    delivered = 0
    deliver = Server._deliver

    def counted(self: Server, data: Payload, reply: str) -> None:
        nonlocal delivered
        delivered += 1
        deliver(self, data, reply)

    monkeypatch.setattr(Server, "_deliver", counted)
    kit = Kit()
    release = asyncio.Event()
    running_now = 0
    most = 0
    order: list[str] = []

    @kit.default
    async def slow(k: Kontext) -> Response:
        nonlocal running_now, most
        running_now += 1
        most = max(most, running_now)
        order.append(k.header("x-n") or "")
        await release.wait()
        running_now -= 1
        return k.text(k.header("x-n") or "")

    platform = fresh_platform()
    settings = kit_settings(platform, nats_url, "backend", max_in_flight=1, instances_bucket=bucket)
    kv = await nc.jetstream().create_key_value(
        KeyValueConfig(bucket=bucket, history=1, ttl=MIN_RECORD_AGE)
    )
    run = asyncio.create_task(kit.run(settings))
    try:
        await registered(kv, key_of(settings))
        calls = []
        for n in ("1", "2", "3"):
            calls.append(
                asyncio.create_task(httpsrv_call(nc, platform, "backend", headers={"x-n": [n]}))
            )
            await nc.flush()  # the server has it before the next one is sent
        async with asyncio.timeout(5.0):
            while delivered < 3:  # noqa: ASYNC110 - all three reached the Kit
                await asyncio.sleep(0.01)
        assert most == 1
        release.set()
        replies = await asyncio.gather(*calls)
    finally:
        kit.stop()
        async with asyncio.timeout(5.0):
            await asyncio.gather(run, return_exceptions=True)
    assert [reply.content for reply in replies] == [b"1", b"2", b"3"]
    assert order == ["1", "2", "3"]
    assert most == 1


async def test_the_natsio_transport_delivers_directly(nats_url: str) -> None:
    """The Kit's server recognises the natsio transport and skips the awaited receiver."""
    settings = kit_settings(fresh_platform(), nats_url, "backend")
    transport = NatsioTransport(settings)
    assert isinstance(transport, DirectSubscriber)
    assert transport.options.inbox_prefix is not None
    assert transport.options.inbox_prefix.startswith("_INBOX.")
    assert json.dumps(transport.options.name)  # a printable connection name
