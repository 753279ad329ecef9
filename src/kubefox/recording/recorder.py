"""httpsrv's side of recording: which virtual environments record, and a copy of each answer.

:attr:`Recorder.active` maps a virtual environment to the recordings that
want its requests; httpsrv checks it once per request, after the answer is
written (one dict lookup when nothing records). :meth:`Recorder.capture`
builds the redacted exchange and queues it; :meth:`Recorder.run` follows the
store and publishes the queue, so the request never waits for JetStream. A
full queue drops the copy (counted in :attr:`Recorder.dropped`) rather than
hold requests back.

The bounds of a recording (requests, bytes) are counted here, per httpsrv
instance: the first instance to reach one ends the recording as
``Complete``; with several instances the stored total may exceed a bound by
what the others appended meanwhile (the stream's own size limit still holds).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import structlog

from kubefox.core.errors import KubeFoxError
from kubefox.core.events import EventContext
from kubefox.recording.records import Exchange, Recording, RecordingState, capture, encode
from kubefox.recording.store import RecordingStore

log = structlog.get_logger(__name__)

#: Exchanges waiting to be stored before new ones are dropped.
QUEUE_SIZE = 1024


class Recorder:
    """Captures the requests of recorded virtual environments and stores them in the background.

    Args:
        store: where recordings are followed and exchanges appended.
        observer: this httpsrv instance's id, noted on each recording it serves.
    """

    def __init__(self, store: RecordingStore, *, observer: str) -> None:
        self._store = store
        self._observer = observer
        #: Virtual environment -> the active recordings of it (replaced, never mutated).
        self.active: Mapping[str, tuple[Recording, ...]] = {}
        #: Copies dropped because the queue was full.
        self.dropped = 0
        self._queue: asyncio.Queue[Exchange] = asyncio.Queue(QUEUE_SIZE)
        self._counts: dict[str, tuple[int, int]] = {}
        self._observed: set[str] = set()
        self._stopped = asyncio.Event()

    def capture(
        self,
        *,
        scope: Mapping[str, Any],
        body: bytes,
        status: int,
        headers: list[tuple[bytes, bytes]],
        response_body: bytes,
        context: EventContext,
        event_id: str,
    ) -> None:
        """Queue a copy of one answered request for every recording it belongs to."""
        for recording in self.active.get(context.virtual_environment, ()):
            if not recording.matches(context.virtual_environment, context.app_deployment):
                continue
            exchange = capture(
                recording=recording.id,
                event_id=event_id,
                scope=scope,
                body=body,
                status=status,
                response_headers=headers,
                response_body=response_body,
                context=context,
            )
            try:
                self._queue.put_nowait(exchange)
            except asyncio.QueueFull:
                self.dropped += 1
                log.warning("recording.dropped", recording=recording.id, dropped=self.dropped)

    async def run(self) -> None:
        """Follow the recordings and store queued exchanges until :meth:`stop` or cancellation."""
        async with asyncio.TaskGroup() as tasks:
            follower = tasks.create_task(self._follow(), name="recorder-follow")
            writer = tasks.create_task(self._write(), name="recorder-write")
            await self._stopped.wait()
            follower.cancel()
            writer.cancel()

    def stop(self) -> None:
        """End :meth:`run`; idempotent. Exchanges still queued are not stored."""
        self._stopped.set()

    async def _follow(self) -> None:
        async for recordings in self._store.follow():
            active: dict[str, tuple[Recording, ...]] = {}
            for recording in recordings:
                if recording.active:
                    active[recording.virtual_environment] = (
                        *active.get(recording.virtual_environment, ()),
                        recording,
                    )
            self.active = active
            for recording in recordings:
                if recording.active and recording.id not in self._observed:
                    self._observed.add(recording.id)
                    try:
                        await self._store.observe(recording.id, self._observer)
                    except KubeFoxError as exc:
                        log.warning(
                            "recording.observe_failed", recording=recording.id, error=str(exc)
                        )
            log.info(
                "recording.followed", active=sorted(r.id for rs in active.values() for r in rs)
            )

    async def _write(self) -> None:
        while True:
            exchange = await self._queue.get()
            recording = self._recording(exchange.recording)
            if recording is None:
                continue  # stopped meanwhile
            data = encode(exchange)
            requests, size = self._counts.get(recording.id, (0, 0))
            if requests >= recording.max_requests or size + len(data) > recording.max_bytes:
                await self._complete(recording)
                continue
            self._counts[recording.id] = (requests + 1, size + len(data))
            try:
                await self._store.append(exchange, data)
            except KubeFoxError as exc:
                log.warning("recording.append_failed", recording=recording.id, error=str(exc))
                continue
            if requests + 1 >= recording.max_requests:
                await self._complete(recording)

    def _recording(self, recording_id: str) -> Recording | None:
        for recordings in self.active.values():
            for recording in recordings:
                if recording.id == recording_id:
                    return recording
        return None

    async def _complete(self, recording: Recording) -> None:
        # Stop capturing at once; the store's change will say the same soon after.
        self.active = {
            ve: kept
            for ve, recordings in self.active.items()
            if (kept := tuple(r for r in recordings if r.id != recording.id))
        }
        try:
            await self._store.stop(recording.id, RecordingState.COMPLETE)
        except KubeFoxError as exc:
            log.warning("recording.complete_failed", recording=recording.id, error=str(exc))
        log.info("recording.completed", recording=recording.id)
