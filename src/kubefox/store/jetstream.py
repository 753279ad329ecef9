"""ResourceStore on a JetStream key-value bucket: the platform's durable state (DESIGN §4).

One KV key per resource, ``<kind>.<namespace or _>.<name>``, holding the
resource's JSON document. The KV revision (the stream sequence of the write) is
the resource's revision, so revisions are store-wide and strictly increasing.
Writers compare-and-set through the stream's expected-last-subject-sequence
check, so of two writers holding the same revision exactly one wins.

Watches do not use nats-py's ordered consumer: after a server restart it only
recovers once two heartbeats are missed, from a task nobody owns. Each watch
here owns an ephemeral push consumer on the bucket's stream (``KV_<bucket>``)
and remembers the stream sequence of the last change it handed out. When the
connection comes back, a delivery gap shows, or heartbeats stop, it drops the
consumer and creates a new one that starts right after that sequence: no change
is lost, none is repeated.

This is the only module in ``kubefox.store`` that may import ``nats``
(import-linter).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncGenerator, Iterator, Mapping
from typing import Any, Self

import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    Header,
    KeyValueConfig,
    StorageType,
)
from nats.js.kv import KeyValue

from kubefox.core.errors import (
    ConflictError,
    ContentTooLargeError,
    InvalidError,
    KubeFoxError,
    NotFoundError,
    UnavailableError,
)
from kubefox.core.nats_options import NatsConnectOptions
from kubefox.store.nats_client import connect_client
from kubefox.store.protocol import (
    ResourceKey,
    StoredResource,
    WatchEvent,
    WatchKind,
    check_key,
    check_kind,
    check_namespace,
    decode_body,
    encode_body,
    labels_match,
)

log = structlog.get_logger(__name__)

#: The bucket the platform keeps its resources in.
DEFAULT_BUCKET = "kubefox-resources"

_BUCKET = re.compile(r"[A-Za-z0-9_-]+")
_NO_NAMESPACE = "_"  # never a DNS label, so it cannot clash with a namespace
_WRONG_LAST_SEQUENCE = (10071, 10164)  # JetStream API error codes for a lost CAS
_KV_OPERATION = "KV-Operation"
_MARKER_REASON = "Nats-Marker-Reason"  # server-placed markers (2.11+)
_DELETE_OPERATIONS = {"DEL", "PURGE"}
_DELETE_MARKERS = {"MaxAge", "Purge", "Remove"}
_TICK = 0.25  # how often an idle watch checks for a reconnect or a closed store
_MAX_DELETE_ATTEMPTS = 10


class JetStreamStore:
    """A :class:`~kubefox.store.protocol.ResourceStore` in a JetStream KV bucket.

    Build one with :meth:`connect` (opens and later closes its own connection) or
    :meth:`open` (shares a connection the caller owns).
    """

    def __init__(
        self,
        client: Client,
        kv: KeyValue,
        *,
        bucket: str,
        request_timeout: float,
        heartbeat: float,
    ) -> None:
        self._client = client
        self._kv = kv
        self._jsm = client.jsm(timeout=request_timeout)
        self._stream = f"KV_{bucket}"
        self._prefix = f"$KV.{bucket}."
        self._request_timeout = request_timeout
        self._heartbeat = heartbeat
        self._owns_client = False
        self._closed = False
        self._feeds: set[_Feed] = set()

    @classmethod
    async def connect(
        cls,
        url: str | NatsConnectOptions = "nats://127.0.0.1:4222",
        *,
        bucket: str = DEFAULT_BUCKET,
        history: int = 1,
        connect_timeout: float = 2.0,
        reconnect_time_wait: float = 0.5,
        request_timeout: float = 5.0,
        heartbeat: float = 1.0,
        name: str = "kubefox-store",
    ) -> Self:
        """Connect to ``url`` and open ``bucket``; :meth:`aclose` closes the connection.

        The connection reconnects forever, ``reconnect_time_wait`` seconds apart;
        meanwhile calls fail with ``UnavailableError`` after ``request_timeout``
        and watches wait, then resume. Raises ``UnavailableError`` if no server
        answers within ``connect_timeout``.
        """
        client = await connect_client(
            url,
            name=name,
            connect_timeout=connect_timeout,
            reconnect_time_wait=reconnect_time_wait,
        )
        try:
            store = await cls.open(
                client,
                bucket=bucket,
                history=history,
                request_timeout=request_timeout,
                heartbeat=heartbeat,
            )
        except BaseException:
            await client.close()
            raise
        store._owns_client = True
        return store

    @classmethod
    async def open(
        cls,
        client: Client,
        *,
        bucket: str = DEFAULT_BUCKET,
        history: int = 1,
        request_timeout: float = 5.0,
        heartbeat: float = 1.0,
    ) -> Self:
        """Open (creating if needed) ``bucket`` over a connection the caller keeps owning.

        A new bucket keeps ``history`` values per key (1-64) in file storage.
        """
        if not _BUCKET.fullmatch(bucket):
            raise InvalidError("a bucket name is letters, digits, '-' and '_'", bucket=bucket)
        if not 1 <= history <= 64:
            raise InvalidError("a bucket keeps 1 to 64 values per key", history=history)
        js = client.jetstream(timeout=request_timeout)
        with _translated("open bucket", bucket=bucket):
            try:
                kv = await js.key_value(bucket)
            except nats.js.errors.BucketNotFoundError:
                # Creating an identical stream twice is allowed, so racing
                # processes both succeed here.
                kv = await js.create_key_value(
                    KeyValueConfig(bucket=bucket, history=history, storage=StorageType.FILE)
                )
        return cls(client, kv, bucket=bucket, request_timeout=request_timeout, heartbeat=heartbeat)

    async def get(self, key: ResourceKey) -> StoredResource:
        """Return the resource; raise ``NotFoundError`` if there is none."""
        self._check_open()
        data, revision = await self._current(key)
        return StoredResource(key=key, body=decode_body(data), revision=revision)

    async def find(
        self,
        kind: str,
        *,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> list[StoredResource]:
        """Return every resource of ``kind`` (in ``namespace``) whose labels match."""
        self._check_open()
        check_kind(kind)
        scope = "*" if namespace is None else (check_namespace(namespace) or _NO_NAMESPACE)
        feed = _Feed(self, f"{self._prefix}{kind}.{scope}.*")
        found: list[StoredResource] = []
        try:
            with _translated("find", kind=kind):
                pending = await feed.start(after=None)
                while pending > 0:
                    msg = await feed.next(self._request_timeout)
                    if msg is None:
                        self._check_open()
                        raise UnavailableError("jetstream stopped answering", kind=kind)
                    pending = msg.metadata.num_pending
                    event = self._event(msg, skip_deletes_until=msg.metadata.sequence.stream)
                    if event is not None and event.resource is not None:
                        found.append(event.resource)
        except _FeedBrokenError as exc:
            raise UnavailableError("jetstream stopped answering", kind=kind) from exc
        finally:
            await feed.stop()
        found = [item for item in found if labels_match(item.body, labels)]
        return sorted(found, key=lambda item: (item.key.namespace, item.key.name))

    async def create(self, key: ResourceKey, body: Mapping[str, Any]) -> StoredResource:
        """Store a new resource; raise ``ConflictError`` if it exists."""
        self._check_open()
        subject_key, data = _encode_key(key), encode_body(body)
        with _translated("create", key=str(key)):
            try:
                revision = await self._kv.create(subject_key, data)
            except nats.js.errors.KeyWrongLastSequenceError as exc:
                raise ConflictError("resource already exists", key=str(key)) from exc
        return StoredResource(key=key, body=decode_body(data), revision=revision)

    async def update(
        self, key: ResourceKey, body: Mapping[str, Any], *, revision: int
    ) -> StoredResource:
        """Replace the resource if it is still at ``revision``."""
        self._check_open()
        subject_key, data = _encode_key(key), encode_body(body)
        # Read first: the server's check alone would accept the revision of a
        # delete marker and bring a deleted resource back to life.
        _, actual = await self._current(key)
        _expect(key, revision, actual)
        with _translated("update", key=str(key)):
            try:
                new_revision = await self._kv.update(subject_key, data, last=revision)
            except nats.js.errors.KeyWrongLastSequenceError as exc:
                _, actual = await self._current(key)
                raise _conflict(key, revision, actual) from exc
        return StoredResource(key=key, body=decode_body(data), revision=new_revision)

    async def put(self, key: ResourceKey, body: Mapping[str, Any]) -> StoredResource:
        """Create or replace the resource."""
        self._check_open()
        subject_key, data = _encode_key(key), encode_body(body)
        with _translated("put", key=str(key)):
            new_revision = await self._kv.put(subject_key, data)
        return StoredResource(key=key, body=decode_body(data), revision=new_revision)

    async def delete(self, key: ResourceKey, *, revision: int | None = None) -> None:
        """Remove the resource, if still at ``revision`` when one is given."""
        self._check_open()
        subject_key = _encode_key(key)
        for _ in range(_MAX_DELETE_ATTEMPTS):
            _, actual = await self._current(key)
            if revision is not None:
                _expect(key, revision, actual)
            with _translated("delete", key=str(key)):
                try:
                    # Conditional even without ``revision``: of two racing deletes
                    # one gets NotFoundError, and watchers see a single DELETE.
                    await self._kv.delete(subject_key, last=actual)
                    return
                except nats.js.errors.APIError as exc:
                    if exc.err_code not in _WRONG_LAST_SEQUENCE:
                        raise
        raise ConflictError("resource kept changing while being deleted", key=str(key))

    async def watch(self, *, from_revision: int = 0) -> AsyncGenerator[WatchEvent, None]:
        """Yield every change after ``from_revision`` in order, then live changes."""
        self._check_open()
        cursor = max(from_revision, 0)
        # From 0 the watcher gets the current value of every key (deliver policy
        # "last per subject") but not the tombstones of resources deleted before
        # it started. It keeps that policy until it has passed this revision.
        snapshot_end = await self.revision() if cursor == 0 else 0
        failures = 0
        while await self._connected():
            feed = _Feed(self, f"{self._prefix}>")
            try:
                await feed.start(after=None if cursor < snapshot_end else cursor)
                failures = 0
                while True:
                    msg = await feed.next(_TICK)
                    if self._closed:
                        return
                    # A new consumer may repeat what an old one delivered.
                    if msg is None or (revision := msg.metadata.sequence.stream) <= cursor:
                        continue
                    cursor = revision
                    event = self._event(msg, skip_deletes_until=snapshot_end)
                    if event is not None:
                        yield event
            except _FeedBrokenError as exc:
                log.info("store.watch_resuming", reason=str(exc), revision=cursor)
            except (nats.errors.Error, TimeoutError) as exc:
                if self._closed:
                    return
                if self._client.is_closed:
                    raise UnavailableError("the nats connection is closed") from exc
                failures += 1
                log.info("store.watch_resuming", reason=repr(exc), revision=cursor)
            finally:
                await feed.stop()
            if failures:
                # Back off while JetStream keeps refusing, e.g. just after a restart.
                await asyncio.sleep(min(_TICK * 2**failures, 5.0))

    async def revision(self) -> int:
        """Return the revision of the latest change (0 for an empty store)."""
        self._check_open()
        with _translated("read revision"):
            info = await self._jsm.stream_info(self._stream)
        return info.state.last_seq

    async def aclose(self) -> None:
        """End every watch and close the connection if :meth:`connect` opened it."""
        if self._closed:
            return
        self._closed = True
        for feed in list(self._feeds):
            feed.wake()
        if self._owns_client:
            # nats-py flushes requests buffered during an outage on close and
            # raises if the old socket is gone; the client is closed regardless.
            with contextlib.suppress(OSError, nats.errors.Error):
                await self._client.close()

    def _check_open(self) -> None:
        if self._closed:
            raise UnavailableError("the store is closed")

    async def _current(self, key: ResourceKey) -> tuple[bytes, int]:
        subject_key = _encode_key(key)
        with _translated("get", key=str(key)):
            try:
                entry = await self._kv.get(subject_key)
            except nats.js.errors.KeyNotFoundError as exc:  # deleted keys too
                raise NotFoundError("no such resource", key=str(key)) from exc
        if entry.revision is None:  # pragma: no cover - a stored message has a sequence
            raise KubeFoxError("jetstream returned an entry without a revision", key=str(key))
        return entry.value or b"", entry.revision

    async def _connected(self) -> bool:
        """Wait for a connection; False once the store is closed."""
        # Asking for a consumer while reconnecting would only queue the request
        # until its timeout; the reconnect loop is what we are waiting for.
        while not self._closed and not self._client.is_connected:
            if self._client.is_closed:
                raise UnavailableError("the nats connection is closed")
            await asyncio.sleep(_TICK)
        return not self._closed

    def _event(self, msg: Msg, *, skip_deletes_until: int) -> WatchEvent | None:
        """The event a stream message stands for; None for messages to pass over."""
        revision = msg.metadata.sequence.stream
        key = _decode_key(msg.subject.removeprefix(self._prefix))
        if key is None:
            return None  # a key some other tool wrote into the bucket
        headers = msg.headers or {}
        operation = headers.get(_KV_OPERATION)
        if operation in _DELETE_OPERATIONS or headers.get(_MARKER_REASON) in _DELETE_MARKERS:
            if revision <= skip_deletes_until:
                return None
            return WatchEvent(kind=WatchKind.DELETE, key=key, resource=None, revision=revision)
        if operation is not None or _MARKER_REASON in headers:
            return None  # an operation newer than this code; not a value
        try:
            body = decode_body(msg.data)
        except InvalidError:
            log.warning("store.value_skipped", key=str(key), revision=revision)
            return None
        resource = StoredResource(key=key, body=body, revision=revision)
        return WatchEvent(kind=WatchKind.PUT, key=key, resource=resource, revision=revision)


class _FeedBrokenError(Exception):
    """Delivery from a consumer can no longer be trusted to be gap-free."""


class _Feed:
    """One ephemeral push consumer on the bucket's stream, read strictly in order.

    Flow control and idle heartbeats are on: the server then never runs far ahead
    of the reader, and a consumer that vanished is noticed.
    """

    def __init__(self, store: JetStreamStore, filter_subject: str) -> None:
        self._store = store
        self._filter = filter_subject
        self._queue: asyncio.Queue[Msg | None] = asyncio.Queue()
        self._sub: Subscription | None = None
        self._consumer: str | None = None
        self._next_delivery = 1
        self._last_seen = time.monotonic()
        self._reconnects = store._client.stats["reconnects"]

    async def start(self, *, after: int | None) -> int:
        """Deliver from stream sequence ``after + 1``, or each key's latest if None.

        Return how many messages were waiting when the consumer was created.
        """
        store = self._store
        store._feeds.add(self)
        self._reconnects = store._client.stats["reconnects"]
        inbox = store._client.new_inbox()
        self._sub = await store._client.subscribe(inbox, cb=self._queue.put)
        config = ConsumerConfig(
            deliver_subject=inbox,
            filter_subject=self._filter,
            ack_policy=AckPolicy.NONE,
            flow_control=True,
            idle_heartbeat=store._heartbeat,
            # Lost with a server restart, which the watch handles anyway.
            mem_storage=True,
            num_replicas=1,
            inactive_threshold=max(30.0, 10 * store._heartbeat),
        )
        if after is None:
            config.deliver_policy = DeliverPolicy.LAST_PER_SUBJECT
        else:
            config.deliver_policy = DeliverPolicy.BY_START_SEQUENCE
            config.opt_start_seq = after + 1
        info = await store._jsm.add_consumer(store._stream, config)
        self._consumer = info.name
        self._last_seen = time.monotonic()
        return info.num_pending or 0

    async def next(self, within: float) -> Msg | None:
        """The next stream message, or None after ``within`` seconds or :meth:`wake`.

        Raise :class:`_FeedBrokenError` on a delivery gap, a status the server
        only sends to a consumer in trouble, three missed heartbeats, or a
        reconnect (the server may have restarted and lost the consumer, which
        lives in its memory).
        """
        while True:
            try:
                async with asyncio.timeout(within):
                    msg = await self._queue.get()
            except TimeoutError:
                if self._store._client.stats["reconnects"] != self._reconnects:
                    raise _FeedBrokenError("reconnected") from None
                if time.monotonic() - self._last_seen > 3 * self._store._heartbeat:
                    raise _FeedBrokenError("heartbeats stopped") from None
                return None
            if msg is None:
                return None
            self._last_seen = time.monotonic()
            headers = msg.headers or {}
            status = headers.get(Header.STATUS.value)
            if status is None:
                delivery = msg.metadata.sequence.consumer
                if delivery != self._next_delivery:
                    raise _FeedBrokenError(f"delivery {delivery} after {self._next_delivery - 1}")
                self._next_delivery += 1
                return msg
            if status != "100":
                raise _FeedBrokenError(f"status {status} {headers.get(Header.DESCRIPTION.value)}")
            await self._control(msg, headers)

    async def _control(self, msg: Msg, headers: Mapping[str, str]) -> None:
        client = self._store._client
        if msg.reply:  # a flow-control request: everything before it has been read
            await client.publish(msg.reply)
        stalled = headers.get(Header.CONSUMER_STALLED.value)
        if stalled:
            await client.publish(stalled)
        last = headers.get(Header.LAST_CONSUMER.value)
        if last is not None and int(last) != self._next_delivery - 1:
            raise _FeedBrokenError(f"heartbeat says delivery {last}")

    def wake(self) -> None:
        """Make a waiting :meth:`next` return None now."""
        self._queue.put_nowait(None)

    async def stop(self) -> None:
        """Unsubscribe and delete the consumer, as far as the connection allows."""
        store = self._store
        store._feeds.discard(self)
        sub, self._sub = self._sub, None
        consumer, self._consumer = self._consumer, None
        if sub is not None:
            with contextlib.suppress(nats.errors.Error):
                await sub.unsubscribe()
        # A consumer left behind has no interest and expires by itself; deleting
        # it is only worth one prompt request.
        if consumer is not None and store._client.is_connected:
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                await store._jsm.delete_consumer(store._stream, consumer)


def _encode_key(key: ResourceKey) -> str:
    check_key(key)
    return f"{key.kind}.{key.namespace or _NO_NAMESPACE}.{key.name}"


def _decode_key(subject_key: str) -> ResourceKey | None:
    parts = subject_key.split(".")
    if len(parts) != 3:
        return None
    kind, namespace, name = parts
    key = ResourceKey(kind, name, "" if namespace == _NO_NAMESPACE else namespace)
    try:
        return check_key(key)
    except InvalidError:
        return None


def _expect(key: ResourceKey, expected: int, actual: int) -> None:
    if expected != actual:
        raise _conflict(key, expected, actual)


def _conflict(key: ResourceKey, expected: int, actual: int) -> ConflictError:
    return ConflictError(
        "resource changed since it was read", key=str(key), expected=expected, actual=actual
    )


@contextlib.contextmanager
def _translated(action: str, **details: Any) -> Iterator[None]:
    """Turn nats-py errors into kubefox errors; nothing above this module sees them."""
    try:
        yield
    except KubeFoxError:
        raise
    except nats.errors.MaxPayloadError as exc:
        raise ContentTooLargeError(f"{action}: larger than nats allows", **details) from exc
    except (
        nats.errors.TimeoutError,
        nats.errors.NoRespondersError,
        nats.errors.ConnectionClosedError,
        nats.errors.ConnectionDrainingError,
        nats.errors.ConnectionReconnectingError,
        nats.errors.StaleConnectionError,
        nats.errors.OutboundBufferLimitError,
        nats.js.errors.ServiceUnavailableError,
        TimeoutError,
    ) as exc:
        raise UnavailableError(f"{action}: jetstream is not answering", **details) from exc
    except nats.errors.Error as exc:
        raise KubeFoxError(f"{action}: {exc}", **details) from exc
