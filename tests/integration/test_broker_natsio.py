"""The broker on natsio: the hot relay needs no task, and a full broker holds events in order.

The fixtures and the fake components are those of ``test_broker``. Where a
test must know that the broker has taken a message it polls the broker's own
counters; nothing waits on a clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import nats.errors
import pytest
from nats.aio.client import Client

from kubefox import natsio
from kubefox.broker import Broker, BrokerSettings
from kubefox.core import codec, subjects
from tests.integration.test_broker import (
    FRONTEND,
    PATIENCE,
    ask,
    backend,
    bucket,
    hello,
    nc,
    nio,
    platform,
    running,
    settings,
)

pytestmark = pytest.mark.integration

__all__ = ["bucket", "nc", "nio", "platform", "settings"]  # fixtures, used by name


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(PATIENCE):
        while not condition():  # noqa: ASYNC110 - the broker's state, no event for it
            await asyncio.sleep(0.005)


async def test_a_request_to_a_target_that_answered_is_relayed_without_a_task(
    nc: Client, platform: str, settings: BrokerSettings
) -> None:
    """Once the backend has answered, a request is in flight at the backend, none in the broker."""
    broker = Broker(settings)
    async with running(broker), backend(nc, platform, gated=True) as slow:
        assert slow.gate is not None
        slow.gate.set()
        await ask(nc, platform, hello(platform))  # carried: the broker learns it answers
        slow.gate.clear()
        slow.received.clear()
        asking = asyncio.create_task(ask(nc, platform, hello(platform)))
        await slow.received.wait()
        assert broker.in_flight == 0  # relayed inside the read: no task holds it
        slow.gate.set()
        reply = await asking
    assert reply.content == b"World"
    assert broker.routed == 2


async def test_a_full_broker_holds_later_events_in_order_until_a_slot_frees(
    nc: Client, platform: str, settings: BrokerSettings
) -> None:
    """max_in_flight=1: while one request is carried, the next waits in the broker, then goes."""
    full = settings.model_copy(update={"max_in_flight": 1})
    broker = Broker(full)
    async with running(broker), backend(nc, platform, gated=True) as slow:
        first = asyncio.create_task(ask(nc, platform, hello(platform)))
        await slow.received.wait()  # carried through the broker's inbox: its one slot
        assert broker.in_flight == 1
        second_event = hello(platform)
        second = asyncio.create_task(ask(nc, platform, second_event))
        await _until(lambda: len(broker._held) == 1)
        assert len(slow.seen) == 1  # the backend has not seen it
        assert slow.gate is not None
        slow.gate.set()
        replies = await asyncio.gather(first, second)
    assert [r.content for r in replies] == [b"World", b"World"]
    assert replies[1].parent_id == second_event.id
    assert broker.in_flight == 0
    assert broker.routed == 2


async def test_the_broker_answers_over_a_shared_natsio_connection(
    nc: Client, nio: natsio.Client, platform: str, settings: BrokerSettings
) -> None:
    """A broker given a natsio client uses it and leaves it open."""
    broker = Broker(settings, client=nio)
    async with running(broker), backend(nc, platform):
        reply = await ask(nc, platform, hello(platform))
    assert reply.content == b"World"
    assert nio.is_connected
    assert not nio.is_closed
    with pytest.raises(nats.errors.NoRespondersError):  # the broker unsubscribed on stop
        await nc.request(
            subjects.for_broker(platform, FRONTEND), codec.encode(hello(platform)), timeout=PATIENCE
        )
