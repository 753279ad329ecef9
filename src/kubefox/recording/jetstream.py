"""Recordings in JetStream: a KV bucket of specs and a bounded stream of exchanges.

Storage layout (both named ``kubefox-recordings``)::

    KV bucket kubefox-recordings (file, history 1)
        <platform>.rec.<id>               the Recording as JSON (what httpsrv watches)
        <platform>.seen.<id>.<instance>   an httpsrv instance records <id> (empty value)
    stream kubefox-recordings (file; 256 MiB, 7 days, 1 MiB a message, oldest discarded)
        kf.<platform>.rec.<id>            one Exchange as JSON per message, in arrival order

The stream's bounds hold for every recording together; each recording's own
bounds are enforced by the recorders (:mod:`kubefox.recording.recorder`).
This is the only module of the package that imports ``nats`` (import-linter).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Iterator
from typing import Any, Self

import msgspec
import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client
from nats.js.api import DiscardPolicy, KeyValueConfig, StorageType, StreamConfig
from nats.js.kv import KeyValue

from kubefox.core.errors import ConflictError, InvalidError, UnavailableError
from kubefox.core.nats_options import NatsConnectOptions
from kubefox.recording.records import (
    Exchange,
    Recording,
    RecordingState,
    check_recording_id,
    decode_exchange,
    decode_recording,
    encode,
)
from kubefox.recording.store import MAX_READ, not_found
from kubefox.store.nats_client import connect_client

log = structlog.get_logger(__name__)

#: Name of the KV bucket and of the stream.
NAME = "kubefox-recordings"
#: Bounds of the stream, every recording together.
STREAM_MAX_BYTES = 256 * 1024 * 1024
STREAM_MAX_AGE = 7 * 24 * 3600.0
STREAM_MAX_MESSAGE = 1024 * 1024

_DELETES = {"DEL", "PURGE"}
_RETRY = 1.0


def exchange_subject(platform: str, recording_id: str) -> str:
    """``kf.<platform>.rec.<id>``: where the exchanges of one recording are appended."""
    # Built here rather than in core.subjects: only this adapter publishes or reads it.
    return f"kf.{platform}.rec.{check_recording_id(recording_id)}"


class JetStreamRecordings:
    """A :class:`~kubefox.recording.store.RecordingStore` over a nats-py client.

    Build it with :meth:`connect` (owns its connection) or :meth:`open`
    (shares the caller's); :meth:`aclose` closes what it owns.
    """

    def __init__(self, client: Client, kv: KeyValue, *, platform: str) -> None:
        self._client = client
        self._js = client.jetstream()
        self._kv = kv
        self._platform = platform
        self._owns_client = False

    @classmethod
    async def open(cls, client: Client, *, platform: str) -> Self:
        """Open (creating if needed) the bucket and the stream over ``client``."""
        js = client.jetstream()
        with _translated("open the recordings bucket and stream"):
            try:
                kv = await js.key_value(NAME)
            except nats.js.errors.BucketNotFoundError:
                config = KeyValueConfig(bucket=NAME, history=1, storage=StorageType.FILE)
                try:
                    kv = await js.create_key_value(config)
                except nats.js.errors.BadRequestError:
                    kv = await js.key_value(NAME)
            try:
                await js.stream_info(NAME)
            except nats.js.errors.NotFoundError:
                stream = StreamConfig(
                    name=NAME,
                    subjects=["kf.*.rec.>"],
                    storage=StorageType.FILE,
                    max_bytes=STREAM_MAX_BYTES,
                    max_age=STREAM_MAX_AGE,
                    max_msg_size=STREAM_MAX_MESSAGE,
                    discard=DiscardPolicy.OLD,
                    allow_direct=True,
                )
                with contextlib.suppress(nats.js.errors.BadRequestError):  # created meanwhile
                    await js.add_stream(stream)
        return cls(client, kv, platform=platform)

    @classmethod
    async def connect(
        cls,
        url: str | NatsConnectOptions,
        *,
        platform: str,
        timeout: float = 5.0,  # noqa: ASYNC109 - a connect deadline
    ) -> Self:
        """Connect to ``url`` (or as the options say) and open the bucket and the stream.

        Raises:
            UnavailableError: NATS cannot be reached.
        """
        client = await connect_client(
            url, name="kubefox-recordings", connect_timeout=timeout, log_prefix="recordings"
        )
        try:
            store = await cls.open(client, platform=platform)
        except BaseException:
            await client.close()
            raise
        store._owns_client = True
        return store

    async def aclose(self) -> None:
        """Close the connection if :meth:`connect` opened it."""
        if self._owns_client:
            with contextlib.suppress(nats.errors.Error, OSError):
                await self._client.close()

    def _key(self, recording_id: str) -> str:
        return f"{self._platform}.rec.{check_recording_id(recording_id)}"

    async def _keys(self) -> list[str]:
        # nats-py's key filters are substrings, not subjects: filter here instead.
        try:
            return list(await self._kv.keys())
        except nats.js.errors.NoKeysError:
            return []

    async def _counts(self, subjects: str) -> dict[str, int]:
        with _translated("count recorded exchanges"):
            info = await self._js.stream_info(NAME, subjects_filter=subjects)
        return dict(info.state.subjects or {})

    async def _read(self, recording_id: str) -> tuple[Recording, int]:
        with _translated("read a recording"):
            try:
                entry = await self._kv.get(self._key(recording_id))
            except nats.js.errors.NotFoundError:  # never written, or deleted
                raise not_found(recording_id) from None
        if entry.value is None or entry.revision is None:
            raise not_found(recording_id)
        return decode_recording(entry.value), entry.revision

    # -- the RecordingStore port -------------------------------------------------------

    async def create(self, recording: Recording) -> Recording:
        """See :meth:`~kubefox.recording.store.RecordingStore.create`."""
        with _translated("create a recording"):
            try:
                await self._kv.create(self._key(recording.id), encode(recording))
            except nats.js.errors.KeyWrongLastSequenceError:
                raise ConflictError(f"recording {recording.id} exists", id=recording.id) from None
        return recording

    async def get(self, recording_id: str) -> Recording:
        """See :meth:`~kubefox.recording.store.RecordingStore.get`."""
        recording, _ = await self._read(recording_id)
        subject = exchange_subject(self._platform, recording_id)
        count = (await self._counts(subject)).get(subject, 0)
        return msgspec.structs.replace(recording, requests=count)

    async def all(self) -> list[Recording]:
        """See :meth:`~kubefox.recording.store.RecordingStore.all`."""
        prefix = f"{self._platform}.rec."
        with _translated("list recordings"):
            keys = [key for key in await self._keys() if key.startswith(prefix)]
        counts = await self._counts(f"kf.{self._platform}.rec.>")
        found: list[Recording] = []
        for key in keys:
            with contextlib.suppress(LookupError, InvalidError):  # deleted meanwhile, or garbage
                recording, _ = await self._read(key.removeprefix(prefix))
                subject = exchange_subject(self._platform, recording.id)
                found.append(msgspec.structs.replace(recording, requests=counts.get(subject, 0)))
        return sorted(found, key=lambda r: (r.start_time, r.id))

    async def stop(self, recording_id: str, state: RecordingState) -> Recording:
        """See :meth:`~kubefox.recording.store.RecordingStore.stop`."""
        while True:
            recording, revision = await self._read(recording_id)
            if not recording.active:
                return await self.get(recording_id)
            stopped = recording.stopped(state)
            with _translated("stop a recording"):
                try:
                    await self._kv.update(self._key(recording_id), encode(stopped), last=revision)
                except nats.js.errors.KeyWrongLastSequenceError:
                    continue  # changed meanwhile: look again
            return await self.get(recording_id)

    async def delete(self, recording_id: str) -> None:
        """See :meth:`~kubefox.recording.store.RecordingStore.delete`."""
        await self._read(recording_id)
        with _translated("delete a recording"):
            await self._js.purge_stream(
                NAME, subject=exchange_subject(self._platform, recording_id)
            )
            await self._kv.purge(self._key(recording_id))
            seen = f"{self._platform}.seen.{recording_id}."
            for key in await self._keys():
                if key.startswith(seen):
                    await self._kv.purge(key)

    async def exchanges(self, recording_id: str, *, limit: int = MAX_READ) -> list[Exchange]:
        """See :meth:`~kubefox.recording.store.RecordingStore.exchanges`."""
        await self._read(recording_id)
        subject = exchange_subject(self._platform, recording_id)
        found: list[Exchange] = []
        sequence = 1
        with _translated("read recorded exchanges"):
            while len(found) < limit:
                try:
                    message = await self._js.get_msg(NAME, seq=sequence, subject=subject, next=True)
                except nats.js.errors.NotFoundError:
                    break
                if message.data is not None:
                    with contextlib.suppress(InvalidError):
                        found.append(decode_exchange(message.data))
                sequence = (message.seq or sequence) + 1
        return found

    async def append(self, exchange: Exchange, data: bytes) -> None:
        """See :meth:`~kubefox.recording.store.RecordingStore.append`."""
        with _translated("append an exchange"):
            await self._js.publish(exchange_subject(self._platform, exchange.recording), data)

    async def observe(self, recording_id: str, observer: str) -> None:
        """See :meth:`~kubefox.recording.store.RecordingStore.observe`."""
        with _translated("note a recorder"):
            await self._kv.put(f"{self._platform}.seen.{recording_id}.{observer}", b"")

    async def observers(self, recording_id: str, *, wait: float) -> list[str]:
        """See :meth:`~kubefox.recording.store.RecordingStore.observers`."""
        prefix = f"{self._platform}.seen.{check_recording_id(recording_id)}."
        found: set[str] = set()
        with _translated("wait for a recorder"):
            watcher = await self._kv.watch(f"{prefix}*")
            try:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        while True:
                            entry = await watcher.updates(timeout=wait + 1)  # type: ignore[no-untyped-call]
                            if entry is None:
                                if found:
                                    break
                                continue
                            if entry.operation not in _DELETES:
                                found.add(entry.key.removeprefix(prefix))
                                break
            finally:
                with contextlib.suppress(nats.errors.Error, TimeoutError, OSError):
                    await watcher.stop()  # type: ignore[no-untyped-call]
        return sorted(found)

    async def follow(self) -> AsyncGenerator[list[Recording], None]:
        """See :meth:`~kubefox.recording.store.RecordingStore.follow`.

        A failed watch (a reconnect, a restarted server) starts over after a
        pause, from a fresh snapshot.
        """
        prefix = f"{self._platform}.rec."
        while True:
            try:
                watcher = await self._kv.watch(f"{prefix}*")
            except (nats.errors.Error, TimeoutError, OSError) as exc:
                log.info("recording.watch_resuming", reason=repr(exc))
                await asyncio.sleep(_RETRY)
                continue
            recordings: dict[str, Recording] = {}
            snapshot = True
            try:
                while True:
                    try:
                        entry = await watcher.updates(timeout=None)  # type: ignore[no-untyped-call]
                    except nats.errors.TimeoutError:
                        continue
                    if entry is None:
                        snapshot = False
                        yield list(recordings.values())
                        continue
                    key = entry.key.removeprefix(prefix)
                    if entry.operation in _DELETES or entry.value is None:
                        recordings.pop(key, None)
                    else:
                        try:
                            recordings[key] = decode_recording(entry.value)
                        except InvalidError as exc:
                            log.warning("recording.skipped", key=entry.key, error=str(exc))
                    if not snapshot:
                        yield list(recordings.values())
            except (nats.errors.Error, OSError) as exc:
                log.info("recording.watch_resuming", reason=repr(exc))
                await asyncio.sleep(_RETRY)
            finally:
                with contextlib.suppress(nats.errors.Error, TimeoutError, OSError):
                    await watcher.stop()  # type: ignore[no-untyped-call]


@contextlib.contextmanager
def _translated(action: str, **details: Any) -> Iterator[None]:
    """Turn nats-py errors into kubefox errors; nothing above this module sees them."""
    try:
        yield
    except nats.js.errors.KeyWrongLastSequenceError:
        raise
    except (nats.errors.Error, TimeoutError, OSError) as exc:
        raise UnavailableError(f"cannot {action}: {type(exc).__name__}: {exc}", **details) from exc
