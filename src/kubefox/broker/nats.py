"""The broker's NATS adapter: one connection, the brokers' queue subscription, publish, request.

This is the only broker module that imports ``nats`` (import-linter). Every
nats-py exception is translated here into a kubefox error, so the engine
never sees a library type except :data:`NatsClient`, which callers may pass
in to share a connection they own.

Messages reach the engine as ``(subject, reply, data)``: the three things it
needs, with no wrapper object allocated per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable, Iterator
from typing import Self, TypeAlias

import nats.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from kubefox.core.errors import (
    BrokerUnavailableError,
    ContentTooLargeError,
    DeadlineExceededError,
    UnavailableError,
)
from kubefox.store.jetstream import JetStreamStore

#: The nats-py client type, for callers that share their own connection.
NatsClient: TypeAlias = Client

#: Called once per message: its subject, reply subject (``""`` if none) and data.
#: nats-py awaits it before passing the next message of the subscription on.
Receiver = Callable[[str, str, bytes], Awaitable[None]]

_RECONNECT_WAIT = 0.5
_CLOSE_FLUSH_TIMEOUT = 1

log = structlog.get_logger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class Reply:
    """What came back for a request: the data and the NATS headers, as received."""

    data: bytes
    headers: dict[str, str] | None


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
    """The broker's side of NATS over one nats-py connection.

    Build one with :meth:`connect` (opens, and on :meth:`close` closes, its own
    connection) or :meth:`using` (shares a connection the caller keeps owning).
    """

    def __init__(self, client: NatsClient, *, owned: bool) -> None:
        self._client = client
        self._owned = owned
        self._subscriptions: list[Subscription] = []
        self._down = False
        self._closing = False

    @classmethod
    async def connect(cls, url: str, *, name: str, connect_timeout: float = 2.0) -> Self:
        """Connect to ``url`` (comma-separated URLs allowed); reconnect forever once connected.

        Raises:
            BrokerUnavailableError: no server answered within ``connect_timeout`` seconds.
        """
        transport = cls(Client(), owned=True)
        client = transport._client
        servers = [part.strip() for part in url.split(",") if part.strip()]
        try:
            # nats-py retries a failed first connect like a reconnect, which is
            # forever here, so the deadline has to come from outside.
            async with asyncio.timeout(connect_timeout):
                await client.connect(
                    servers=servers,
                    name=name,
                    # nats-py annotates these seconds as int but waits any float.
                    connect_timeout=connect_timeout,  # type: ignore[arg-type]
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=_RECONNECT_WAIT,  # type: ignore[arg-type]
                    error_cb=transport._on_error,
                    disconnected_cb=transport._on_disconnected,
                    reconnected_cb=transport._on_reconnected,
                )
        except (TimeoutError, OSError, nats.errors.Error) as exc:
            with contextlib.suppress(nats.errors.Error, OSError):
                await client.close()
            raise BrokerUnavailableError(f"cannot reach NATS at {url}") from exc
        return transport

    @classmethod
    def using(cls, client: NatsClient) -> Self:
        """Use ``client``, which the caller connected and will close."""
        return cls(client, owned=False)

    async def open_store(self, *, bucket: str) -> JetStreamStore:
        """The resource store in ``bucket``, over this connection (closing it keeps ours open)."""
        return await JetStreamStore.open(self._client, bucket=bucket)

    async def subscribe(self, subject: str, *, queue: str, receiver: Receiver) -> None:
        """Pass every message on ``subject`` (queue group ``queue``) to ``receiver``.

        Raises:
            BrokerUnavailableError: the subscription cannot be made.
        """

        async def deliver(msg: Msg) -> None:
            await receiver(msg.subject, msg.reply, msg.data)

        with _translated(f"subscribe to {subject}"):
            sub = await self._client.subscribe(subject, queue=queue, cb=deliver)
            # Make the interest known before callers count on it (tests, readiness).
            await self._client.flush()
        self._subscriptions.append(sub)

    async def drain(self) -> None:
        """Stop receiving; messages already received are still passed on. Never raises.

        If this is cancelled part way (a shutdown deadline), the messages still
        pending may be passed on later: the receiver has to refuse them itself.
        """
        subscriptions, self._subscriptions = self._subscriptions, []
        for sub in subscriptions:
            with contextlib.suppress(nats.errors.Error):
                await sub.drain()  # type: ignore[no-untyped-call]  # nats-py leaves it unannotated

    async def publish(
        self, subject: str, data: bytes, *, reply: str = "", headers: dict[str, str] | None = None
    ) -> None:
        """Publish ``data`` to ``subject``, with ``reply`` as the subject to answer to.

        Raises:
            ContentTooLargeError: ``data`` is larger than the server's max payload.
            BrokerUnavailableError: the connection is closed or its buffer is full.
        """
        # Once per event: plain try/except, cheaper than entering _translated.
        try:
            await self._client.publish(subject, data, reply=reply, headers=headers)
        except nats.errors.MaxPayloadError as exc:
            raise ContentTooLargeError(
                f"publish to {subject}: the message is larger than NATS accepts"
            ) from exc
        except (nats.errors.Error, OSError) as exc:
            raise BrokerUnavailableError(
                f"publish to {subject}: {type(exc).__name__}: {exc}"
            ) from exc

    async def request(
        self,
        subject: str,
        data: bytes,
        *,
        timeout: float,  # noqa: ASYNC109 - nats-py's request owns the wait and its reply inbox
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
        except nats.errors.NoRespondersError as exc:
            raise UnavailableError(f"nobody subscribes to {subject}") from exc
        except nats.errors.TimeoutError as exc:
            raise DeadlineExceededError(f"no reply within {timeout:.3g}s") from exc
        except nats.errors.MaxPayloadError as exc:
            raise ContentTooLargeError("the request is larger than NATS accepts") from exc
        except (nats.errors.Error, OSError) as exc:
            raise BrokerUnavailableError(f"request failed: {type(exc).__name__}: {exc}") from exc
        return Reply(msg.data, msg.headers)

    async def _on_error(self, exc: Exception) -> None:
        # While disconnected every failed reconnect attempt lands here; the
        # disconnect was reported once already.
        (log.debug if self._down else log.warning)(
            "nats.error", error=f"{type(exc).__name__}: {exc}"
        )

    async def _on_disconnected(self) -> None:
        self._down = True
        if not self._closing:  # nats-py reports our own close as a disconnect too
            log.warning("nats.disconnected")

    async def _on_reconnected(self) -> None:
        self._down = False
        log.info("nats.reconnected")

    async def close(self) -> None:
        """Drop what is left of the subscriptions and close the connection if we opened it.

        Idempotent; never raises.
        """
        subscriptions, self._subscriptions = self._subscriptions, []
        for sub in subscriptions:
            with contextlib.suppress(nats.errors.Error):
                await sub.unsubscribe()
        client = self._client
        if not self._owned or client.is_closed:
            return
        self._closing = True
        if client.is_connected:
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                await client.flush(timeout=_CLOSE_FLUSH_TIMEOUT)
        try:
            await client.close()
        except Exception as exc:  # noqa: BLE001 - closing must never hide why the broker stopped
            # nats-py can fail on a transport that died under it; the socket is gone either way.
            log.debug("nats.close_failed", error=f"{type(exc).__name__}: {exc}")
