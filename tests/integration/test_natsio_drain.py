"""natsio's subscription drain against a real nats-server, and its keep-alive module's pings.

Draining one subscription is what the broker and the Kit do on stop: what
the server sent before it saw the UNSUB is still handled, nothing after.
"""

from __future__ import annotations

import pytest

from kubefox import natsio
from kubefox.core.nats_options import NatsConnectOptions

pytestmark = pytest.mark.integration


async def test_drain_delivers_what_was_sent_before_and_nothing_after(nats_url: str) -> None:
    """100 messages published (and flushed) before the drain all arrive; a later one does not."""
    options = NatsConnectOptions(url=nats_url, name="drain-test")
    receiver = await natsio.connect(options)
    sender = await natsio.connect(options)
    try:
        got: list[bytes] = []
        later: list[bytes] = []
        sub = receiver.subscribe("drain.test", lambda s, r, d, h: got.append(bytes(d)))
        witness = receiver.subscribe("drain.test", lambda s, r, d, h: later.append(bytes(d)))
        await receiver.flush()
        for n in range(100):
            sender.publish("drain.test", str(n).encode())
        await sender.flush()  # the server has routed them all before it sees the UNSUB
        await sub.drain()
        assert got == [str(n).encode() for n in range(100)]
        assert not sub.active
        sender.publish("drain.test", b"late")
        await sender.flush()
        await receiver.flush()  # the witness has it now
        assert later[-1] == b"late"
        assert b"late" not in got
        assert witness.active
    finally:
        await sender.close()
        await receiver.close()


async def test_drain_of_a_closed_client_does_not_raise(nats_url: str) -> None:
    """A subscription drained after its client closed just ends."""
    client = await natsio.connect(NatsConnectOptions(url=nats_url, name="drain-closed"))
    sub = client.subscribe("drain.closed", lambda s, r, d, h: None)
    await client.close()
    await sub.drain()
    assert not sub.active
