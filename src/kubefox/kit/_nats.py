"""The NATS adapter of the Kit's transport port: the only kit module that imports ``nats``.

Requests use NATS request/reply, so a reply comes straight back to this
instance's inbox, and nats-server's "no responders" status turns a request
nobody can take into :class:`UnavailableError` at once instead of a timeout.
The connection reconnects forever, a short wait apart, so short blips are
survived; the Kit's watchdog decides when a loss has lasted too long, using
the ``wait_disconnected``/``wait_connected`` signals fed by nats-py's callbacks.
Every nats-py exception is translated here into a kubefox error.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Iterator

import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from kubefox.core.errors import (
    BrokerUnavailableError,
    ContentTooLargeError,
    DeadlineExceededError,
    UnavailableError,
)
from kubefox.kit._settings import KitSettings
from kubefox.kit._transport import Receiver

#: The KV bucket holding one registration record per running component instance.
#: Shortest life of a registration record when the Kit has to create the bucket itself.
MIN_RECORD_AGE = 15.0

_RECONNECT_WAIT = 0.5
_CONNECT_TIMEOUT = 2
_FLUSH_ON_CLOSE = 1

_log = structlog.get_logger("kubefox.kit.nats")


@contextlib.contextmanager
def _translated(action: str) -> Iterator[None]:
    """Turn nats-py's exceptions into kubefox errors naming ``action``."""
    try:
        yield
    except nats.errors.MaxPayloadError as exc:
        raise ContentTooLargeError(f"{action}: the message is larger than NATS accepts") from exc
    except (nats.errors.Error, OSError) as exc:
        raise BrokerUnavailableError(f"{action}: {type(exc).__name__}: {exc}") from exc


class NatsTransport:
    """The Kit's transport over one nats-py connection (see :func:`connect`)."""

    def __init__(self, settings: KitSettings) -> None:
        self._settings = settings
        self._client = Client()
        self._subscriptions: list[Subscription] = []
        self._kv: KeyValue | None = None
        self._up = asyncio.Event()
        self._down = asyncio.Event()

    async def open(self) -> None:
        """Connect; see :func:`connect`."""
        s = self._settings
        servers = [url.strip() for url in s.nats_url.split(",") if url.strip()]
        try:
            # nats-py retries a failed first connect like a reconnect, which is
            # forever here, so the deadline has to come from outside.
            async with asyncio.timeout(s.platform_grace):
                await self._client.connect(
                    servers=servers,
                    name=f"kubefox-kit {s.app}.{s.name}.{s.instance_id}",
                    connect_timeout=_CONNECT_TIMEOUT,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    # nats-py annotates these seconds as int but waits any float.
                    reconnect_time_wait=_RECONNECT_WAIT,  # type: ignore[arg-type]
                    # A dead server is noticed after two unanswered pings.
                    ping_interval=max(1, math.ceil(s.platform_grace / 3)),
                    max_outstanding_pings=2,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                    closed_cb=self._on_closed,
                )
        except (TimeoutError, OSError, nats.errors.Error) as exc:
            await self.close()
            raise BrokerUnavailableError(
                f"cannot reach NATS at {s.nats_url} within {s.platform_grace:g}s"
            ) from exc
        self._up.set()

    async def _on_error(self, exc: Exception) -> None:
        # While disconnected every failed reconnect attempt lands here; the
        # watchdog already reports the outage, so keep those out of the way.
        level = _log.debug if self._down.is_set() else _log.warning
        level("nats.error", error=f"{type(exc).__name__}: {exc}")

    async def _on_disconnected(self) -> None:
        self._up.clear()
        self._down.set()

    async def _on_reconnected(self) -> None:
        self._down.clear()
        self._up.set()

    async def _on_closed(self) -> None:
        self._up.clear()
        self._down.set()

    async def subscribe(self, subject: str, *, queue: str, receiver: Receiver) -> None:
        """Pass every message on ``subject`` (queue group ``queue``) to ``receiver``."""

        async def deliver(msg: Msg) -> None:
            await receiver(msg.data, msg.reply)

        with _translated(f"subscribe to {subject}"):
            sub = await self._client.subscribe(subject, queue=queue, cb=deliver)
        self._subscriptions.append(sub)

    async def unsubscribe(self) -> None:
        """Drain every subscription: no new messages, received ones are still delivered."""
        subscriptions, self._subscriptions = self._subscriptions, []
        for sub in subscriptions:
            with contextlib.suppress(nats.errors.Error):
                await sub.drain()  # type: ignore[no-untyped-call]  # nats-py leaves it unannotated

    async def request(
        self,
        subject: str,
        data: bytes,
        *,
        timeout: float,  # noqa: ASYNC109 - nats-py's request owns the wait and its reply inbox
    ) -> bytes:
        """Send ``data`` to ``subject`` and return the reply's data."""
        try:
            msg = await self._client.request(subject, data, timeout=timeout)
        except nats.errors.NoRespondersError as exc:
            raise UnavailableError("nothing is running that could take the request") from exc
        except nats.errors.TimeoutError as exc:
            raise DeadlineExceededError(f"no reply within {timeout:.3g}s") from exc
        except nats.errors.MaxPayloadError as exc:
            raise ContentTooLargeError("the request is larger than NATS accepts") from exc
        except (nats.errors.Error, OSError) as exc:
            raise BrokerUnavailableError(f"request failed: {type(exc).__name__}: {exc}") from exc
        return msg.data

    async def respond(self, reply: str, data: bytes) -> None:
        """Publish ``data`` to the ``reply`` subject of a received request."""
        # Once per event: plain try/except, cheaper than entering _translated.
        try:
            await self._client.publish(reply, data)
        except nats.errors.MaxPayloadError as exc:
            raise ContentTooLargeError("reply: the message is larger than NATS accepts") from exc
        except (nats.errors.Error, OSError) as exc:
            raise BrokerUnavailableError(f"reply: {type(exc).__name__}: {exc}") from exc

    async def _bucket(self) -> KeyValue:
        if self._kv is not None:
            return self._kv
        js = self._client.jetstream()
        try:
            self._kv = await js.key_value(self._settings.instances_bucket)
        except nats.js.errors.BucketNotFoundError:
            # The platform normally creates it; if not, create it so a component
            # started alone still registers. Identical concurrent creates succeed.
            ttl = max(MIN_RECORD_AGE, 3 * self._settings.heartbeat_interval)
            config = KeyValueConfig(
                bucket=self._settings.instances_bucket,
                history=1,
                ttl=ttl,
                storage=StorageType.MEMORY,
            )
            try:
                self._kv = await js.create_key_value(config)
            except nats.js.errors.BadRequestError:
                # Someone created it meanwhile with another configuration: use theirs.
                self._kv = await js.key_value(self._settings.instances_bucket)
        return self._kv

    async def register(self, key: str, record: bytes) -> None:
        """Put ``record`` under ``key`` in the instances bucket."""
        with _translated("register"):
            kv = await self._bucket()
            await kv.put(key, record)

    async def deregister(self, key: str) -> None:
        """Delete ``key`` from the instances bucket."""
        with _translated("deregister"):
            kv = await self._bucket()
            await kv.delete(key)

    async def wait_disconnected(self) -> None:
        """Return once the connection is down."""
        await self._down.wait()

    async def wait_connected(self) -> None:
        """Return once the connection is up."""
        await self._up.wait()

    async def close(self) -> None:
        """Flush what is pending (briefly) and close; idempotent."""
        client = self._client
        if client.is_closed:
            return
        if client.is_connected:
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                await client.flush(timeout=_FLUSH_ON_CLOSE)
        try:
            await client.close()
        except Exception as exc:  # noqa: BLE001 - closing must never hide why the Kit stopped
            # nats-py can fail on a transport that died under it (uvloop raises
            # RuntimeError writing to a closed handle); the socket is gone either way.
            _log.debug("nats.close_failed", error=f"{type(exc).__name__}: {exc}")


async def connect(settings: KitSettings) -> NatsTransport:
    """Connect to NATS at ``settings.nats_url``; reconnects forever once connected.

    Raises:
        BrokerUnavailableError: no server answered within ``settings.platform_grace``.
    """
    transport = NatsTransport(settings)
    await transport.open()
    return transport
