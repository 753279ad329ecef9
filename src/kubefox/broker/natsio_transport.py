"""The broker's NATS adapter on :mod:`kubefox.natsio`: the data path runs inside the socket read.

One natsio connection carries the brokers' queue subscription, the relayed
events and the broker's own requests. Its handler is called synchronously
for each message, inside the read that brought it (:data:`Deliver`), and
:meth:`NatsioTransport.send` is synchronous too, so a request the broker
relays at once costs no task and no turn of the event loop: what the
handlers publish during one read leaves in one write at its end.

The resource store is JetStream, which natsio does not speak: when the broker
has to read the resources itself (no router given), :meth:`open_store` opens
a second connection, with nats-py, for the store alone. The embedded platform
gives its brokers a router, so there they hold one connection each.

Every natsio exception is translated here into a kubefox error.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable
from typing import Protocol, Self, TypeAlias

import structlog

from kubefox import natsio
from kubefox.core.errors import (
    BrokerUnavailableError,
    ContentTooLargeError,
    DeadlineExceededError,
    UnavailableError,
)
from kubefox.core.nats_options import NatsConnectOptions
from kubefox.store.jetstream import JetStreamStore
from kubefox.store.nats_client import as_options, connect_client, report_refusal

#: The natsio client type, for callers that share their own connection.
NatsClient: TypeAlias = natsio.Client

#: Called once per message, synchronously, inside the read: ``(subject, reply, data,
#: headers)``; ``reply`` is ``""`` when absent. ``data`` may be a view of the read's
#: bytes (valid as long as it is kept). It must not block: anything that waits is a task.
Deliver: TypeAlias = Callable[[str, str, natsio.Payload, "dict[str, str] | None"], None]

_RECONNECT_WAIT = 0.5
_CLOSE_FLUSH_TIMEOUT = 1.0

log = structlog.get_logger(__name__)


class _Closable(Protocol):
    async def close(self) -> None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Reply:
    """What came back for a request: the data and the NATS headers, as received."""

    data: natsio.Payload
    headers: dict[str, str] | None


def _failure(action: str, exc: Exception) -> ContentTooLargeError | BrokerUnavailableError:
    """The kubefox error for natsio's ``exc`` while doing ``action``."""
    if isinstance(exc, natsio.MaxPayloadError):
        return ContentTooLargeError(f"{action}: the message is larger than NATS accepts")
    return BrokerUnavailableError(f"{action}: {type(exc).__name__}: {exc}")


class NatsioTransport:
    """The broker's side of NATS over one natsio connection.

    Build one with :meth:`connect` (opens, and on :meth:`close` closes, its own
    connection) or :meth:`using` (shares a connection the caller keeps owning).
    """

    def __init__(self, client: NatsClient, *, owned: bool) -> None:
        self._client = client
        self._owned = owned
        self._subscriptions: list[natsio.Subscription] = []
        self._store_clients: list[_Closable] = []  # the nats-py connections of open_store
        self._closing = False
        self._down = False

    @classmethod
    async def connect(
        cls,
        url: str | NatsConnectOptions,
        *,
        name: str = "kubefox-broker",
        connect_timeout: float = 2.0,
    ) -> Self:
        """Connect to ``url`` (comma-separated URLs allowed) or as the options say.

        Once connected, the connection reconnects forever.

        Raises:
            BrokerUnavailableError: no server accepted within ``connect_timeout`` seconds.
        """
        options = as_options(url, name=name)
        holder: list[NatsioTransport] = []
        client = natsio.Client(
            options,
            connect_timeout=connect_timeout,
            reconnect_wait=_RECONNECT_WAIT,
            on_error=lambda exc: holder[0]._on_error(exc) if holder else None,
            on_disconnected=lambda: holder[0]._on_disconnected() if holder else None,
            on_reconnected=lambda: holder[0]._on_reconnected() if holder else None,
        )
        transport = cls(client, owned=True)
        holder.append(transport)
        try:
            await client.connect()
        except (natsio.NatsIOError, OSError, TimeoutError) as exc:
            raise BrokerUnavailableError(
                f"cannot reach NATS at {options.url}: {type(exc).__name__}: {exc}"
            ) from exc
        return transport

    @classmethod
    def using(cls, client: NatsClient) -> Self:
        """Use ``client``, which the caller connected and will close."""
        return cls(client, owned=False)

    @property
    def client(self) -> NatsClient:
        """The natsio connection."""
        return self._client

    async def open_store(self, *, bucket: str) -> JetStreamStore:
        """The resource store in ``bucket``, over a JetStream connection of its own.

        :meth:`close` closes that connection too (closing the store keeps it open).

        Raises:
            UnavailableError: the store's connection cannot be made.
        """
        options = self._client.options
        client = await connect_client(
            dataclasses.replace(options, name=f"{options.name} store"), log_prefix="broker"
        )
        self._store_clients.append(client)
        return await JetStreamStore.open(client, bucket=bucket)

    async def subscribe(self, subject: str, *, queue: str, deliver: Deliver) -> None:
        """Call ``deliver`` for every message on ``subject`` (queue group ``queue``).

        Returns once the server has the subscription (tests and readiness count on it).

        Raises:
            BrokerUnavailableError: the subscription cannot be made.
        """
        try:
            sub = self._client.subscribe(subject, deliver, queue=queue)
            self._subscriptions.append(sub)
            await self._client.flush()
        except (natsio.NatsIOError, ValueError) as exc:
            raise _failure(f"subscribe to {subject}", exc) from exc

    async def drain(self) -> None:
        """Stop receiving; messages the server sent before it saw that are still delivered.

        Never raises. If this is cancelled part way (a shutdown deadline), more
        messages may still be delivered: the receiver has to refuse them itself.
        """
        subscriptions, self._subscriptions = self._subscriptions, []
        await self._client.drain_subscriptions(subscriptions)

    def send(self, subject: str, data: natsio.Payload, *, reply: str = "") -> None:
        """Publish ``data`` to ``subject`` now, with ``reply`` as the subject to answer to.

        Raises:
            ContentTooLargeError: ``data`` is larger than the server's max payload.
            BrokerUnavailableError: the client is closed, or it is disconnected and
                its reconnect buffer is full.
        """
        try:
            self._client.publish(subject, data, reply=reply)
        except (natsio.NatsIOError, ValueError) as exc:
            raise _failure(f"publish to {subject}", exc) from exc

    async def publish(
        self,
        subject: str,
        data: natsio.Payload,
        *,
        reply: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        """:meth:`send`, with headers, after waiting for room in the socket's buffer.

        Raises:
            ContentTooLargeError: ``data`` is larger than the server's max payload.
            BrokerUnavailableError: the connection is closed or its buffer is full.
        """
        client = self._client
        try:
            await client.wait_writable()
            client.publish(subject, data, reply=reply, headers=headers)
        except (natsio.NatsIOError, ValueError) as exc:
            raise _failure(f"publish to {subject}", exc) from exc

    async def request(
        self,
        subject: str,
        data: natsio.Payload,
        *,
        timeout: float,  # noqa: ASYNC109 - natsio's request owns the wait and its reply inbox
    ) -> Reply:
        """Send ``data`` to ``subject`` with this connection's inbox and return the reply.

        Raises:
            UnavailableError: nobody subscribes to ``subject`` (nats-server says so at once).
            DeadlineExceededError: no reply came within ``timeout`` seconds.
            ContentTooLargeError: ``data`` is larger than the server's max payload.
            BrokerUnavailableError: the connection is closed or broken.
        """
        try:
            msg = await self._client.request(subject, data, timeout=timeout)
        except natsio.NoRespondersError as exc:
            raise UnavailableError(f"nobody subscribes to {subject}") from exc
        except natsio.RequestTimeoutError as exc:
            raise DeadlineExceededError(f"no reply within {timeout:.3g}s") from exc
        except (natsio.NatsIOError, ValueError) as exc:
            raise _failure("request", exc) from exc
        return Reply(msg.data, msg.headers)

    def _on_error(self, exc: Exception) -> None:
        if report_refusal("broker", exc):
            return
        # While disconnected every failed reconnect attempt lands here; the
        # disconnect was reported once already.
        (log.debug if self._down else log.warning)(
            "nats.error", error=f"{type(exc).__name__}: {exc}"
        )

    def _on_disconnected(self) -> None:
        self._down = True
        if not self._closing:
            log.warning("nats.disconnected")

    def _on_reconnected(self) -> None:
        self._down = False
        log.info("nats.reconnected")

    async def close(self) -> None:
        """Drop the subscriptions, close the store's connection and ours if we opened it.

        Idempotent; never raises.
        """
        subscriptions, self._subscriptions = self._subscriptions, []
        for sub in subscriptions:
            sub.unsubscribe()
        stores, self._store_clients = self._store_clients, []
        for store in stores:
            await _close_store_client(store)
        client = self._client
        if not self._owned or client.is_closed:
            return
        self._closing = True
        if client.is_connected:
            with contextlib.suppress(natsio.NatsIOError):
                await client.flush(_CLOSE_FLUSH_TIMEOUT)
        await client.close()


async def _close_store_client(client: _Closable) -> None:
    try:
        async with asyncio.timeout(_CLOSE_FLUSH_TIMEOUT * 2):
            await client.close()
    except Exception as exc:  # noqa: BLE001 - closing must never hide why the broker stopped
        log.debug("nats.store_close_failed", error=f"{type(exc).__name__}: {exc}")
