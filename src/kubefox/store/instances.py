"""The live map of registered component instances, fed by a watch on the instances KV bucket.

Component processes register in the ``kubefox-instances`` bucket (see
:mod:`kubefox.store.instance_records`); this registry follows that bucket for one
platform and keeps the records in memory, so the operator can ask "does
anything serve app/component/hash?" without a round trip.

Two things the bucket cannot say on its own are handled here:

* **Expiry.** The bucket's max age removes stale records silently (no delete
  marker reaches a watcher), so the registry forgets a record itself when it
  has not been refreshed for ``ttl`` seconds, by *this* process's monotonic
  clock: no clock of another host is trusted.
* **Reconnects.** After a reconnect (the server may have restarted, and the
  bucket, kept in memory, may be gone) the watch is rebuilt from scratch and
  the map replaced by what the bucket holds then.

This is the only operator module that imports ``nats`` (import-linter).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any, Self

import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from kubefox.core.errors import DeadlineExceededError, InvalidError, UnavailableError
from kubefox.core.nats_options import NatsConnectOptions
from kubefox.store.instance_records import InstanceRecord, parse_record
from kubefox.store.nats_client import connect_client

log = structlog.get_logger(__name__)

_DELETES = {"DEL", "PURGE"}
_TICK = 0.25  # how often an idle watch looks for a reconnect or a close
_RETRY_MAX = 5.0


class InstanceRegistry:
    """Registered instances of one platform (a ``Registrations`` implementation).

    Build one with :meth:`connect` (owns its connection) or :meth:`open` (shares
    the caller's). :meth:`run` follows the bucket; :meth:`aclose` ends it.
    """

    def __init__(
        self, client: Client, *, bucket: str, platform: str, ttl: float, request_timeout: float
    ) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self._client = client
        self._bucket = bucket
        self._platform = platform
        self._ttl = ttl
        self._request_timeout = request_timeout
        self._kv: KeyValue | None = None
        self._records: dict[str, InstanceRecord] = {}
        self._seen: dict[str, float] = {}  # key -> monotonic time of the last put
        self._listeners: list[Callable[[], None]] = []
        self._ready = asyncio.Event()
        self._changed = asyncio.Event()
        self._closed = asyncio.Event()
        self._owns_client = False

    @classmethod
    async def connect(
        cls,
        url: str | NatsConnectOptions,
        *,
        bucket: str,
        platform: str,
        ttl: float,
        connect_timeout: float = 2.0,
        request_timeout: float = 5.0,
        name: str = "kubefox-operator-registry",
    ) -> Self:
        """Connect to ``url`` and open (creating if needed) ``bucket``.

        The connection reconnects forever; :meth:`aclose` closes it.

        Raises:
            UnavailableError: no server answered within ``connect_timeout``.
        """
        client = await connect_client(
            url, name=name, connect_timeout=connect_timeout, log_prefix="registry"
        )
        registry = cls(
            client, bucket=bucket, platform=platform, ttl=ttl, request_timeout=request_timeout
        )
        registry._owns_client = True
        try:
            await registry._open_bucket()
        except BaseException:
            await registry.aclose()
            raise
        return registry

    @classmethod
    async def open(
        cls,
        client: Client,
        *,
        bucket: str,
        platform: str,
        ttl: float,
        request_timeout: float = 5.0,
    ) -> Self:
        """Open (creating if needed) ``bucket`` over a connection the caller keeps owning."""
        registry = cls(
            client, bucket=bucket, platform=platform, ttl=ttl, request_timeout=request_timeout
        )
        await registry._open_bucket()
        return registry

    # -- reading -------------------------------------------------------------------------

    @property
    def bucket(self) -> str:
        """The KV bucket this registry follows."""
        return self._bucket

    def records(self) -> list[InstanceRecord]:
        """Every record refreshed within the TTL, sorted by key."""
        now = time.monotonic()
        return [
            self._records[key]
            for key in sorted(self._records)
            if now - self._seen.get(key, now) <= self._ttl
        ]

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every change of :meth:`records` (expiry included)."""
        self._listeners.append(listener)

    async def wait_ready(self) -> None:
        """Return once the records present when the watch started have been read."""
        await self._ready.wait()

    async def wait_for(
        self,
        predicate: Callable[[list[InstanceRecord]], bool],
        *,
        timeout: float,  # noqa: ASYNC109 - a deadline for the caller, not for one I/O call
    ) -> list[InstanceRecord]:
        """Return :meth:`records` once ``predicate`` holds for them.

        Raises:
            DeadlineExceededError: it did not hold within ``timeout`` seconds.
        """
        try:
            async with asyncio.timeout(timeout):
                while True:
                    changed = self._changed
                    records = self.records()
                    if predicate(records):
                        return records
                    await changed.wait()
        except TimeoutError:
            raise DeadlineExceededError(
                "registrations did not reach the expected state", timeout=timeout
            ) from None

    # -- following -----------------------------------------------------------------------

    async def run(self) -> None:
        """Follow the bucket and expire stale records until :meth:`aclose` or cancellation."""
        async with asyncio.TaskGroup() as tg:
            follower = tg.create_task(self._follow())
            expirer = tg.create_task(self._expire())
            await self._closed.wait()
            follower.cancel()
            expirer.cancel()

    async def aclose(self) -> None:
        """End :meth:`run` and close the connection if :meth:`connect` opened it. Idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self._owns_client:
            with contextlib.suppress(nats.errors.Error, OSError):
                await self._client.close()

    async def _open_bucket(self) -> KeyValue:
        js = self._client.jetstream(timeout=self._request_timeout)
        with _translated("open the instances bucket", bucket=self._bucket):
            try:
                self._kv = await js.key_value(self._bucket)
            except nats.js.errors.BucketNotFoundError:
                # Registrations are worth nothing after a restart: memory storage.
                # Identical concurrent creates succeed.
                config = KeyValueConfig(
                    bucket=self._bucket, history=1, ttl=self._ttl, storage=StorageType.MEMORY
                )
                try:
                    self._kv = await js.create_key_value(config)
                except nats.js.errors.BadRequestError:
                    # Someone (a Kit) created it meanwhile with another configuration.
                    self._kv = await js.key_value(self._bucket)
        return self._kv

    async def _follow(self) -> None:
        failures = 0
        while not self._closed.is_set():
            try:
                await self._watch_once()
                failures = 0
            except (UnavailableError, nats.errors.Error, TimeoutError, OSError) as exc:
                if self._client.is_closed:
                    return
                failures += 1
                log.info("registry.watch_resuming", reason=repr(exc))
                await asyncio.sleep(min(_TICK * 2**failures, _RETRY_MAX))

    async def _watch_once(self) -> None:
        """Watch from a fresh snapshot until a reconnect shows; then return to start over."""
        while not self._client.is_connected:
            if self._client.is_closed:
                raise UnavailableError("the nats connection is closed")
            await asyncio.sleep(_TICK)
        reconnects = self._client.stats["reconnects"]
        kv = await self._open_bucket()
        with _translated("watch the instances bucket", bucket=self._bucket):
            watcher = await kv.watch(f"{self._platform}.>")
        snapshot: dict[str, InstanceRecord] | None = {}
        try:
            while True:
                try:
                    entry = await watcher.updates(timeout=_TICK)  # type: ignore[no-untyped-call]
                except nats.errors.TimeoutError:
                    if self._client.stats["reconnects"] != reconnects:
                        return
                    continue
                if entry is None:  # the end of what the bucket held at the start
                    if snapshot is not None:
                        self._replace(snapshot)
                        snapshot = None
                    continue
                self._apply(entry.key, entry.value, entry.operation, snapshot)
        finally:
            with contextlib.suppress(nats.errors.Error, TimeoutError, OSError):
                await watcher.stop()  # type: ignore[no-untyped-call]

    def _apply(
        self,
        key: str,
        value: bytes | None,
        operation: str | None,
        snapshot: dict[str, InstanceRecord] | None,
    ) -> None:
        records = snapshot if snapshot is not None else self._records
        if operation in _DELETES:
            removed = records.pop(key, None)
            self._seen.pop(key, None)
            if removed is not None and snapshot is None:
                self._notify()
            return
        try:
            record = parse_record(key, value or b"")
        except InvalidError as exc:
            log.warning("registry.record_skipped", key=key, error=str(exc))
            return
        records[key] = record
        self._seen[key] = time.monotonic()
        if snapshot is None:
            self._notify()

    def _replace(self, snapshot: dict[str, InstanceRecord]) -> None:
        now = time.monotonic()
        self._records = snapshot
        # What the bucket still holds is at most its max age old.
        self._seen = {key: self._seen.get(key, now) for key in snapshot}
        self._ready.set()
        self._notify()

    async def _expire(self) -> None:
        while True:
            now = time.monotonic()
            deadlines = [seen + self._ttl for seen in self._seen.values()]
            wait = min(deadlines) - now if deadlines else None
            changed = self._changed
            if wait is None or wait > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await changed.wait()
                continue
            expired = [key for key, seen in self._seen.items() if now - seen > self._ttl]
            if not expired:
                # Exactly at the deadline: look again a moment later.
                await asyncio.sleep(0.01)
                continue
            for key in expired:
                self._seen.pop(key, None)
                self._records.pop(key, None)
            log.info("registry.records_expired", keys=expired)
            self._notify()

    def _notify(self) -> None:
        # Wake every waiter: they all wait on the event being replaced.
        self._changed.set()
        self._changed = asyncio.Event()
        for listener in self._listeners:
            listener()


@contextlib.contextmanager
def _translated(action: str, **details: Any) -> Iterator[None]:
    """Turn nats-py errors into kubefox errors; nothing above this module sees them."""
    try:
        yield
    except (nats.errors.Error, TimeoutError, OSError) as exc:
        raise UnavailableError(f"{action}: {type(exc).__name__}: {exc}", **details) from exc
