"""The broker against a real nats-server: routing, zero-trust refusals, sharing, shutdown.

The tests play hello-world's components with plain nats-py: the backend is a
subscription on its ``cmp`` subject that answers with a RESPONSE event, and
the frontend publishes requests to its own ``brk`` subject with a NATS
request. Every test uses its own platform name (so its own subjects) and, where
the broker reads a JetStream bucket, its own bucket, so tests share the
session's server safely. Nothing waits on a clock: each test synchronises on
replies, on events set by the fake components, or on the broker's readiness.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator

import nats
import nats.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from kubefox import natsio
from kubefox.broker import Broker, BrokerSettings
from kubefox.core import codec, subjects
from kubefox.core.errors import InvalidError, UnavailableError
from kubefox.core.events import (
    CONTENT_TYPE_TEXT,
    TYPE_ERROR,
    Category,
    Component,
    Event,
    MatchedEvent,
)
from kubefox.core.nats_options import NatsConnectOptions
from kubefox.resources import Environment
from kubefox.store.jetstream import JetStreamStore
from kubefox.store.typed import TypedStore
from tests.unit.router.world import (
    APP,
    BACKEND_HASH,
    NAMESPACE,
    apply_hello_world,
    context,
    environment,
    instance,
    request,
    running_platform,
)

pytestmark = pytest.mark.integration

FRONTEND = instance("frontend")
BACKEND = instance("backend")
#: How long a test waits for an answer that must come (a failure, never a pause).
PATIENCE = 5.0


@pytest.fixture
def platform() -> str:
    """A platform name, hence a subject space, that no other test uses."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    """The test's own connection: it plays the components."""
    client = await nats.connect(nats_url)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def nio(nats_url: str) -> AsyncIterator[natsio.Client]:
    """A natsio connection, for a broker to share."""
    client = await natsio.connect(NatsConnectOptions(url=nats_url, name="test-broker"))
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def bucket(nc: Client) -> AsyncIterator[str]:
    """A fresh JetStream bucket holding hello-world (AppDeployment, Environment and VE qa)."""
    name = f"kf-test-{uuid.uuid4().hex[:12]}"
    store = await JetStreamStore.open(nc, bucket=name)
    try:
        await apply_hello_world(TypedStore(store, namespace=NAMESPACE))
        yield name
    finally:
        await store.aclose()
        with contextlib.suppress(nats.errors.Error):
            await nc.jetstream().delete_key_value(name)


@pytest.fixture
def settings(platform: str, nats_url: str, bucket: str) -> BrokerSettings:
    """Settings of a broker routing ``platform`` with the resources of ``bucket``."""
    return BrokerSettings(platform=platform, namespace=NAMESPACE, nats_url=nats_url, bucket=bucket)


@contextlib.asynccontextmanager
async def running(broker: Broker) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``broker`` for the ``with`` block, from ready to stopped."""
    run = asyncio.create_task(broker.run())
    ready = asyncio.create_task(broker.wait_ready())
    try:
        async with asyncio.timeout(PATIENCE):
            await asyncio.wait({run, ready}, return_when=asyncio.FIRST_COMPLETED)
        if run.done():
            run.result()  # it failed to start: say why
        yield run
    finally:
        ready.cancel()
        broker.stop()
        async with asyncio.timeout(PATIENCE):
            await run


@dataclasses.dataclass
class Backend:
    """What the fake backend saw: each MatchedEvent with the reply subject it came with."""

    seen: list[tuple[MatchedEvent, str]] = dataclasses.field(default_factory=list)
    received: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    gate: asyncio.Event | None = None


@contextlib.asynccontextmanager
async def backend(nc: Client, platform: str, *, gated: bool = False) -> AsyncIterator[Backend]:
    """Play hello-world's backend: answer every request with its env's ``who``.

    ``gated``: hold each answer until ``Backend.gate`` is set.
    """
    state = Backend(gate=asyncio.Event() if gated else None)

    async def answer(msg: Msg) -> None:
        matched = codec.decode_matched(msg.data)
        state.seen.append((matched, msg.reply))
        state.received.set()
        if state.gate is not None:
            await state.gate.wait()
        reply = matched.event.reply(
            source=BACKEND,
            content=str(matched.env.get("who")).encode(),
            content_type=CONTENT_TYPE_TEXT,
        )
        await nc.publish(msg.reply, codec.encode(reply))

    sub = await nc.subscribe(
        subjects.component(platform, APP, "backend", BACKEND_HASH),
        queue=subjects.component_queue(platform, APP, "backend", BACKEND_HASH),
        cb=answer,
    )
    await nc.flush()
    try:
        yield state
    finally:
        await sub.unsubscribe()


def hello(platform: str) -> Event:
    """frontend's request to backend, in hello-world-main / qa on ``platform``."""
    return request(FRONTEND, "backend", event_context=context(platform=platform))


async def ask(
    nc: Client, platform: str, event: Event | bytes, *, sender: Component = FRONTEND
) -> Event:
    """Play ``sender``: send ``event`` to its broker subject and return the reply."""
    data = event if isinstance(event, bytes) else codec.encode(event)
    msg = await nc.request(subjects.for_broker(platform, sender), data, timeout=PATIENCE)
    return codec.decode(msg.data)


def error_code(reply: Event) -> int:
    """The wire code of an error event (and that it is one, from the broker)."""
    assert reply.type == TYPE_ERROR, reply
    assert reply.category is Category.RESPONSE
    assert reply.source.type == "Broker"
    return codec.error_from_event(reply).code


# -- routing ---------------------------------------------------------------------------


async def test_request_reaches_the_backend_with_only_its_declared_env(
    nc: Client, platform: str, settings: BrokerSettings
) -> None:
    """frontend -> broker -> backend: env is exactly {"who": "World"}, the reply comes back."""
    broker = Broker(settings)
    event = hello(platform)
    async with running(broker), backend(nc, platform) as seen:
        reply = await ask(nc, platform, event)

    assert reply.category is Category.RESPONSE
    assert reply.parent_id == event.id
    assert reply.content == b"World"
    [(matched, _)] = seen.seen
    assert matched.env == {"who": "World"}
    assert matched.route_id == -1
    assert matched.event.id == event.id
    assert matched.event.target == Component(
        type="KubeFox", app=APP, name="backend", hash=BACKEND_HASH
    )
    assert 0 < matched.event.ttl < event.ttl  # the broker's time is taken off
    assert broker.routed == 1
    assert not broker.rejected


async def test_replies_skip_the_broker_once_the_target_has_answered(
    nc: Client, platform: str, settings: BrokerSettings
) -> None:
    """The first request is carried by the broker; later ones keep the requester's inbox."""
    broker = Broker(settings)
    async with running(broker), backend(nc, platform) as seen:
        await ask(nc, platform, hello(platform))
        inbox = nc.new_inbox()
        replies = await nc.subscribe(inbox, max_msgs=1)
        second = hello(platform)
        await nc.publish(subjects.for_broker(platform, FRONTEND), codec.encode(second), reply=inbox)
        msg = await replies.next_msg(timeout=PATIENCE)

    assert codec.decode(msg.data).parent_id == second.id
    (_, first_reply), (_, second_reply) = seen.seen
    assert first_reply != inbox
    assert second_reply == inbox


async def test_two_brokers_in_the_queue_group_share_the_traffic(
    nc: Client, nio: natsio.Client, platform: str, settings: BrokerSettings
) -> None:
    """200 requests through two brokers: every one answered, both brokers routed some."""
    own_connection = Broker(settings)
    shared_connection = Broker(settings, client=nio)
    async with running(own_connection), running(shared_connection), backend(nc, platform):
        events = [hello(platform) for _ in range(200)]
        replies = await asyncio.gather(*(ask(nc, platform, event) for event in events))

    assert [reply.parent_id for reply in replies] == [event.id for event in events]
    assert {reply.content for reply in replies} == {b"World"}
    assert own_connection.routed > 0
    assert shared_connection.routed > 0
    assert own_connection.routed + shared_connection.routed == 200


async def test_broker_routes_with_a_router_it_is_given(
    nc: Client, nio: natsio.Client, platform: str
) -> None:
    """With ``router=`` the broker needs no bucket: any ResourceView will do."""
    async with running_platform(platform) as resources:
        settings = BrokerSettings(platform=platform, nats_url="nats://unused:1")
        broker = Broker(settings, router=resources.router, client=nio)
        async with running(broker), backend(nc, platform):
            reply = await ask(nc, platform, hello(platform))
    assert reply.content == b"World"


async def test_broker_starts_when_the_latest_change_in_the_bucket_is_a_delete(
    nc: Client, platform: str, settings: BrokerSettings
) -> None:
    """A JetStream watch from 0 carries no tombstones: loading must not wait for one."""
    store = await JetStreamStore.open(nc, bucket=settings.bucket)
    typed = TypedStore(store, namespace=NAMESPACE)
    await typed.apply(environment("prod", who="Universe", subPath="prod"))
    await typed.delete(Environment, "prod")
    await store.aclose()

    async with running(Broker(settings)), backend(nc, platform):
        reply = await ask(nc, platform, hello(platform))
    assert reply.content == b"World"


# -- refusals ----------------------------------------------------------------------------


async def test_forged_source_is_unauthorized(
    nc: Client, platform: str, settings: BrokerSettings
) -> None:
    """An event naming another instance than its subject gets code 12 and goes nowhere."""
    broker = Broker(settings)
    forged = request(
        instance("frontend", id="victim"), "backend", event_context=context(platform=platform)
    )
    async with running(broker), backend(nc, platform) as seen:
        reply = await ask(nc, platform, forged, sender=FRONTEND)

    assert error_code(reply) == 12
    assert reply.parent_id == forged.id
    assert seen.seen == []
    assert broker.rejected == {12: 1}


async def test_undeclared_dependency_is_unauthorized(
    nc: Client, platform: str, settings: BrokerSettings
) -> None:
    """backend may not call frontend: it never declared it (code 12)."""
    event = request(BACKEND, "frontend", event_context=context(platform=platform))
    async with running(Broker(settings)):
        reply = await ask(nc, platform, event, sender=BACKEND)
    assert error_code(reply) == 12


async def test_target_hash_not_in_the_deployment_is_a_component_mismatch(
    nc: Client, platform: str, settings: BrokerSettings
) -> None:
    """A target version the deployment does not hold gets code 4."""
    target = Component(type="KubeFox", name="backend", hash="d" * 32)
    event = request(FRONTEND, target, event_context=context(platform=platform))
    async with running(Broker(settings)), backend(nc, platform) as seen:
        reply = await ask(nc, platform, event)
    assert error_code(reply) == 4
    assert seen.seen == []


async def test_missing_virtual_environment_is_not_found(
    nc: Client, platform: str, settings: BrokerSettings
) -> None:
    """A context naming a VE that does not exist gets code 7."""
    event = request(FRONTEND, "backend", event_context=context(platform=platform, ve="nope"))
    async with running(Broker(settings)):
        reply = await ask(nc, platform, event)
    assert error_code(reply) == 7
    assert 'VirtualEnvironment "nope"' in codec.error_from_event(reply).cause


async def test_garbage_is_invalid(nc: Client, platform: str, settings: BrokerSettings) -> None:
    """Bytes that are not an event get code 6, addressed to the subject's instance."""
    broker = Broker(settings)
    async with running(broker):
        reply = await ask(nc, platform, b"\xc1 certainly not msgpack")
    assert error_code(reply) == 6
    assert isinstance(codec.error_from_event(reply), InvalidError)
    assert reply.target == Component(app=APP, name="frontend", hash=FRONTEND.hash, id="i1")
    assert broker.rejected == {6: 1}


async def test_no_backend_instance_is_answered_at_once(
    nc: Client, platform: str, settings: BrokerSettings
) -> None:
    """Nobody on the target's subject: the requester hears Unavailable (15) now, not at TTL."""
    event = hello(platform)
    async with running(Broker(settings)):
        started = time.monotonic()
        reply = await ask(nc, platform, event)
        elapsed = time.monotonic() - started

    assert error_code(reply) == 15
    error = codec.error_from_event(reply)
    assert isinstance(error, UnavailableError)
    assert '"backend"' in error.cause
    assert elapsed < PATIENCE / 2  # the TTL is 10 s and the request timeout 5 s


async def test_spent_ttl_gets_no_reply(nc: Client, platform: str, settings: BrokerSettings) -> None:
    """A request whose TTL is spent is dropped silently: the caller's deadline reports it."""
    broker = Broker(settings)
    spent = request(FRONTEND, "backend", ttl=0, event_context=context(platform=platform))
    inbox = nc.new_inbox()
    replies = await nc.subscribe(inbox)
    async with running(broker), backend(nc, platform):
        await nc.publish(subjects.for_broker(platform, FRONTEND), codec.encode(spent), reply=inbox)
        # The broker answers in order of arrival, so once a later request is answered
        # any reply to the spent one would already be here.
        later = await ask(nc, platform, hello(platform))
    assert later.content == b"World"
    assert replies.pending_msgs == 0
    assert broker.rejected == {11: 1}


# -- shutdown ----------------------------------------------------------------------------


async def test_stop_lets_an_in_flight_slow_request_complete(
    nc: Client, platform: str, settings: BrokerSettings
) -> None:
    """stop() while the backend is still working: the reply still reaches the requester."""
    broker = Broker(settings)
    async with running(broker) as run, backend(nc, platform, gated=True) as slow:
        asking = asyncio.create_task(ask(nc, platform, hello(platform)))
        await slow.received.wait()
        broker.stop()
        broker.stop()  # idempotent
        assert slow.gate is not None
        slow.gate.set()
        reply = await asking
        async with asyncio.timeout(PATIENCE):
            await run
    assert reply.content == b"World"
    assert broker.in_flight == 0


async def test_stop_cancels_what_outlives_the_grace(
    nc: Client, platform: str, nats_url: str, bucket: str
) -> None:
    """An event still in flight when ``shutdown_grace`` ends is cancelled and run returns."""
    settings = BrokerSettings(
        platform=platform, namespace=NAMESPACE, nats_url=nats_url, bucket=bucket, shutdown_grace=0.1
    )
    broker = Broker(settings)
    async with running(broker) as run, backend(nc, platform, gated=True) as stuck:
        asking = asyncio.create_task(ask(nc, platform, hello(platform)))
        await stuck.received.wait()
        broker.stop()
        async with asyncio.timeout(PATIENCE):
            await run
        assert broker.in_flight == 0
        asking.cancel()
        assert stuck.gate is not None
        stuck.gate.set()
    with contextlib.suppress(asyncio.CancelledError):
        await asking


async def test_stop_before_run_returns_at_once(settings: BrokerSettings) -> None:
    """A broker stopped before it ran never connects."""
    broker = Broker(settings)
    broker.stop()
    async with asyncio.timeout(PATIENCE):
        await broker.run()
    assert broker.routed == 0
