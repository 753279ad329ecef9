"""The port recordings are kept behind, and its in-memory adapter.

:class:`RecordingStore` is what the API (start, stop, list, read) and httpsrv's
:class:`~kubefox.recording.recorder.Recorder` (follow the active recordings,
append exchanges, say it has seen a recording) need.
:class:`~kubefox.recording.jetstream.JetStreamRecordings` is the real one;
:class:`MemoryRecordings` serves unit tests and an API built without NATS.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Protocol

import msgspec

from kubefox.core.errors import ConflictError, NotFoundError
from kubefox.recording.records import Exchange, Recording, RecordingState, check_recording_id

#: Most exchanges one read returns.
MAX_READ = 10_000


def not_found(recording_id: str) -> NotFoundError:
    """The error for a recording that does not exist."""
    return NotFoundError(f"recording {recording_id} not found", id=recording_id)


class RecordingStore(Protocol):
    """Where recordings and their exchanges are kept."""

    async def create(self, recording: Recording) -> Recording:
        """Store a new recording; ``ConflictError`` if its id is taken."""
        ...

    async def get(self, recording_id: str) -> Recording:
        """The recording with its number of stored exchanges; ``NotFoundError``."""
        ...

    async def all(self) -> list[Recording]:
        """Every recording, oldest first, with its number of stored exchanges."""
        ...

    async def stop(self, recording_id: str, state: RecordingState) -> Recording:
        """End a recording as ``state``; one already ended is returned unchanged."""
        ...

    async def delete(self, recording_id: str) -> None:
        """Forget a recording and its exchanges; ``NotFoundError``."""
        ...

    async def exchanges(self, recording_id: str, *, limit: int = MAX_READ) -> list[Exchange]:
        """The stored exchanges in the order they were appended; ``NotFoundError``."""
        ...

    async def append(self, exchange: Exchange, data: bytes) -> None:
        """Store ``exchange`` (``data`` is its encoded form)."""
        ...

    async def observe(self, recording_id: str, observer: str) -> None:
        """Note that ``observer`` (an httpsrv instance) records ``recording_id``."""
        ...

    async def observers(self, recording_id: str, *, wait: float) -> list[str]:
        """Who records ``recording_id``, waiting up to ``wait`` seconds for a first one."""
        ...

    def follow(self) -> AsyncIterator[list[Recording]]:
        """Every recording now, then again after each change, until cancelled."""
        ...


class MemoryRecordings:
    """Recordings in this process's memory (a :class:`RecordingStore`)."""

    def __init__(self) -> None:
        self._recordings: dict[str, Recording] = {}
        self._exchanges: dict[str, list[Exchange]] = {}
        self._observers: dict[str, set[str]] = {}
        self._changed = asyncio.Event()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _counted(self, recording: Recording) -> Recording:
        count = len(self._exchanges.get(recording.id, ()))
        return msgspec.structs.replace(recording, requests=count)

    async def create(self, recording: Recording) -> Recording:
        """See :meth:`RecordingStore.create`."""
        check_recording_id(recording.id)
        if recording.id in self._recordings:
            raise ConflictError(f"recording {recording.id} exists", id=recording.id)
        self._recordings[recording.id] = recording
        self._notify()
        return recording

    async def get(self, recording_id: str) -> Recording:
        """See :meth:`RecordingStore.get`."""
        found = self._recordings.get(recording_id)
        if found is None:
            raise not_found(recording_id)
        return self._counted(found)

    async def all(self) -> list[Recording]:
        """See :meth:`RecordingStore.all`."""
        return [self._counted(r) for r in sorted(self._recordings.values(), key=_start)]

    async def stop(self, recording_id: str, state: RecordingState) -> Recording:
        """See :meth:`RecordingStore.stop`."""
        found = await self.get(recording_id)
        if not found.active:
            return found
        self._recordings[recording_id] = stopped = found.stopped(state)
        self._notify()
        return stopped

    async def delete(self, recording_id: str) -> None:
        """See :meth:`RecordingStore.delete`."""
        if self._recordings.pop(recording_id, None) is None:
            raise not_found(recording_id)
        self._exchanges.pop(recording_id, None)
        self._observers.pop(recording_id, None)
        self._notify()

    async def exchanges(self, recording_id: str, *, limit: int = MAX_READ) -> list[Exchange]:
        """See :meth:`RecordingStore.exchanges`."""
        await self.get(recording_id)
        return self._exchanges.get(recording_id, [])[:limit]

    async def append(self, exchange: Exchange, data: bytes) -> None:
        """See :meth:`RecordingStore.append`."""
        self._exchanges.setdefault(exchange.recording, []).append(exchange)

    async def observe(self, recording_id: str, observer: str) -> None:
        """See :meth:`RecordingStore.observe`."""
        self._observers.setdefault(recording_id, set()).add(observer)
        self._notify()

    async def observers(self, recording_id: str, *, wait: float) -> list[str]:
        """See :meth:`RecordingStore.observers`."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                while not self._observers.get(recording_id):
                    await self._changed.wait()
        return sorted(self._observers.get(recording_id, ()))

    async def follow(self) -> AsyncIterator[list[Recording]]:
        """See :meth:`RecordingStore.follow`."""
        while True:
            changed = self._changed
            yield list(self._recordings.values())
            await changed.wait()


def _start(recording: Recording) -> tuple[str, str]:
    return (recording.start_time, recording.id)
