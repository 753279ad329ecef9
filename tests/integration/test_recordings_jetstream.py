"""Recordings in a real JetStream: the KV bucket of specs and the bounded stream of exchanges."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from kubefox.core.errors import ConflictError, NotFoundError
from kubefox.recording import Exchange, RecordedRequest, RecordedResponse, Recording
from kubefox.recording.jetstream import JetStreamRecordings
from kubefox.recording.records import RecordingState, encode

pytestmark = pytest.mark.integration


def exchange(recording: str, n: int) -> Exchange:
    return Exchange(
        recording=recording,
        event_id=f"e{n}",
        time="2024-01-01T00:00:00Z",
        request=RecordedRequest(method="GET", path=f"/{n}"),
        response=RecordedResponse(status=200, body=f"body {n}".encode()),
    )


async def test_jetstream_recordings_round_trip(nats_url: str) -> None:
    """Create, follow, observe, append in order, count, stop once, delete: all through NATS."""
    platform = f"p{uuid.uuid4().hex[:8]}"
    store = await JetStreamRecordings.connect(nats_url, platform=platform)
    try:
        follow = store.follow()
        first = await anext(follow)
        recording = await store.create(Recording(id="qa-1", virtual_environment="qa"))
        with pytest.raises(ConflictError):
            await store.create(recording)
        seen = await asyncio.wait_for(anext(follow), 5)
        waiting = asyncio.create_task(store.observers("qa-1", wait=5))
        await store.observe("qa-1", "httpsrv-a")
        observers = await waiting
        for n in range(3):
            item = exchange("qa-1", n)
            await store.append(item, encode(item))
        counted = await store.get("qa-1")
        stored = await store.exchanges("qa-1")
        stopped = await store.stop("qa-1", RecordingState.STOPPED)
        again = await store.stop("qa-1", RecordingState.COMPLETE)
        listed = await store.all()
        await store.delete("qa-1")
        with pytest.raises(NotFoundError):
            await store.get("qa-1")
        await follow.aclose()
    finally:
        await store.aclose()

    assert first == []
    assert [r.id for r in seen] == ["qa-1"]
    assert observers == ["httpsrv-a"]
    assert counted.requests == 3
    assert [e.request.path for e in stored] == ["/0", "/1", "/2"]
    assert (stopped.state, again.state) == (RecordingState.STOPPED, RecordingState.STOPPED)
    assert [(r.id, r.requests) for r in listed] == [("qa-1", 3)]
