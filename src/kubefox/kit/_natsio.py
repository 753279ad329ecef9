"""The Kit's transport port on :mod:`kubefox.natsio`: events handed on inside the socket read.

:meth:`NatsioTransport.subscribe_direct` calls the server's synchronous
``deliver`` for each event right where the read parsed it, so receiving an
event costs the one task that runs its handler and nothing else. Requests go
through natsio's request/reply on this instance's inbox (nats-server's "no
responders" status becomes :class:`UnavailableError` at once); replies are a
publish to the requester's reply subject.

The registration record lives in a JetStream KV bucket, spoken here in plain
NATS, exactly what a component's permissions allow
(:func:`kubefox.security.nats_auth.component_permissions`): a put is a request
to ``$KV.<bucket>.<key>`` answered by JetStream's PubAck (or an error) in
JSON, a delete the same with the header ``KV-Operation: DEL``. Only when
no stream answers a put is the bucket checked with
``$JS.API.STREAM.INFO.KV_<bucket>`` and, if it does not exist, created, as
nats-py's KV would, so that a component started alone still registers. So a
component needs no nats-py at all.

The connection reconnects forever, a short wait apart; the Kit's watchdog
decides when a loss has lasted too long, from :meth:`wait_disconnected` and
:meth:`wait_connected`. Every natsio exception is translated here into a
kubefox error.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import structlog

from kubefox import natsio
from kubefox.core import subjects
from kubefox.core.errors import (
    BrokerUnavailableError,
    ContentTooLargeError,
    DeadlineExceededError,
    UnavailableError,
)
from kubefox.core.nats_options import NatsConnectOptions
from kubefox.kit._settings import KitSettings
from kubefox.kit._transport import Deliver, Receiver

#: Shortest life of a registration record when the Kit has to create the bucket itself.
MIN_RECORD_AGE = 15.0

_RECONNECT_WAIT = 0.5
_CONNECT_TIMEOUT = 2.0
_FLUSH_ON_CLOSE = 1.0
#: Seconds a JetStream API request (bucket info, create, put, delete) may take.
_JS_TIMEOUT = 5.0
_NS = 1_000_000_000
_STREAM_NOT_FOUND = 10059
_KV_DELETE = {"KV-Operation": "DEL"}

_log = structlog.get_logger("kubefox.kit.nats")


def _failure(action: str, exc: Exception) -> ContentTooLargeError | BrokerUnavailableError:
    if isinstance(exc, natsio.MaxPayloadError):
        return ContentTooLargeError(f"{action}: the message is larger than NATS accepts")
    return BrokerUnavailableError(f"{action}: {type(exc).__name__}: {exc}")


class NatsioTransport:
    """The Kit's transport over one natsio connection (see :func:`connect`)."""

    def __init__(self, settings: KitSettings) -> None:
        self._settings = settings
        s = settings
        self.options = NatsConnectOptions(
            url=s.nats_url,
            name=f"kubefox-kit {s.app}.{s.name}.{s.instance_id}",
            ca_file=s.nats_ca_file,
            creds_file=s.nats_creds_file,
            # the only inbox this instance's credential lets it hear replies on
            inbox_prefix=subjects.component_inbox(s.platform, s.app, s.name, s.hash, s.instance_id),
        )
        self._client: natsio.Client | None = None
        self._subscriptions: list[natsio.Subscription] = []
        self._pumps: list[asyncio.Task[None]] = []
        self._up = asyncio.Event()
        self._down = asyncio.Event()

    async def open(self) -> None:
        """Connect; see :func:`connect`."""
        s = self._settings
        last: Exception | None = None
        try:
            # A server that is not up yet is tried again until the platform grace ends.
            async with asyncio.timeout(s.platform_grace):
                while True:
                    client = self._new_client()
                    try:
                        await client.connect()
                    except (natsio.NatsIOError, OSError) as exc:
                        last = exc
                        await asyncio.sleep(_RECONNECT_WAIT)
                        continue
                    self._client = client
                    break
        except TimeoutError as exc:
            raise BrokerUnavailableError(
                f"cannot reach NATS at {s.nats_url} within {s.platform_grace:g}s"
                + (f": {type(last).__name__}: {last}" if last is not None else "")
            ) from exc
        self._up.set()

    def _new_client(self) -> natsio.Client:
        return natsio.Client(
            self.options,
            connect_timeout=min(_CONNECT_TIMEOUT, self._settings.platform_grace),
            reconnect_wait=_RECONNECT_WAIT,
            # A dead server is noticed after two unanswered pings.
            ping_interval=max(1, math.ceil(self._settings.platform_grace / 3)),
            max_outstanding_pings=2,
            on_error=self._on_error,
            on_disconnected=self._on_disconnected,
            on_reconnected=self._on_reconnected,
        )

    @property
    def _nc(self) -> natsio.Client:
        client = self._client
        if client is None:
            raise BrokerUnavailableError("not connected to NATS")
        return client

    def _on_error(self, exc: Exception) -> None:
        # While disconnected every failed reconnect attempt lands here; the
        # watchdog already reports the outage, so keep those out of the way.
        level = _log.debug if self._down.is_set() else _log.warning
        level("nats.error", error=f"{type(exc).__name__}: {exc}")

    def _on_disconnected(self) -> None:
        self._up.clear()
        self._down.set()

    def _on_reconnected(self) -> None:
        self._down.clear()
        self._up.set()

    # -- receiving ----------------------------------------------------------------------

    async def subscribe_direct(self, subject: str, *, queue: str, deliver: Deliver) -> None:
        """Call ``deliver`` for every message on ``subject`` (queue group ``queue``), in the read.

        Raises:
            BrokerUnavailableError: the subscription cannot be made.
        """

        def handle(
            subject: str, reply: str, data: natsio.Payload, headers: dict[str, str] | None
        ) -> None:
            deliver(data, reply)

        await self._subscribe(subject, queue, handle)

    async def subscribe(self, subject: str, *, queue: str, receiver: Receiver) -> None:
        """Pass every message on ``subject`` (queue group ``queue``) to ``receiver``.

        The port's general form: one task awaits ``receiver`` for each message
        in turn, as nats-py did. The Kit's server uses :meth:`subscribe_direct`.

        Raises:
            BrokerUnavailableError: the subscription cannot be made.
        """
        queued: asyncio.Queue[tuple[bytes, str]] = asyncio.Queue()

        async def pump() -> None:
            while True:
                data, reply = await queued.get()
                await receiver(data, reply)

        def handle(
            subject: str, reply: str, data: natsio.Payload, headers: dict[str, str] | None
        ) -> None:
            queued.put_nowait((bytes(data), reply))

        self._pumps.append(asyncio.get_running_loop().create_task(pump()))
        await self._subscribe(subject, queue, handle)

    async def _subscribe(self, subject: str, queue: str, handler: natsio.Handler) -> None:
        client = self._nc
        try:
            self._subscriptions.append(client.subscribe(subject, handler, queue=queue))
            await client.flush()
        except (natsio.NatsIOError, ValueError) as exc:
            raise _failure(f"subscribe to {subject}", exc) from exc

    async def unsubscribe(self) -> None:
        """Drain every subscription: no new messages, received ones are still delivered."""
        subscriptions, self._subscriptions = self._subscriptions, []
        if self._client is not None and subscriptions:
            await self._client.drain_subscriptions(subscriptions)

    # -- sending ------------------------------------------------------------------------

    async def request(
        self,
        subject: str,
        data: bytes,
        *,
        timeout: float,  # noqa: ASYNC109 - natsio's request owns the wait and its reply inbox
    ) -> bytes:
        """Send ``data`` to ``subject`` and return the reply's data."""
        try:
            msg = await self._nc.request(subject, data, timeout=timeout)
        except natsio.NoRespondersError as exc:
            raise UnavailableError("nothing is running that could take the request") from exc
        except natsio.RequestTimeoutError as exc:
            raise DeadlineExceededError(f"no reply within {timeout:.3g}s") from exc
        except (natsio.NatsIOError, ValueError) as exc:
            raise _failure("request failed", exc) from exc
        answer = msg.data
        return answer if isinstance(answer, bytes) else bytes(answer)

    async def respond(self, reply: str, data: bytes, *, alone: bool = False) -> None:
        """Publish ``data`` to the ``reply`` subject of a received request; ``alone``: at once."""
        self.respond_now(reply, data, alone=alone)

    def respond_now(self, reply: str, data: bytes, *, alone: bool = False) -> None:
        """:meth:`respond`, synchronously (what a handler task calls last)."""
        try:
            self._nc.publish(reply, data, at_once=alone)
        except (natsio.NatsIOError, ValueError) as exc:
            raise _failure("reply", exc) from exc

    # -- the registration record --------------------------------------------------------

    async def _js(self, subject: str, data: bytes = b"", **kw: Any) -> dict[str, Any]:
        """A JetStream API (or KV) request; its JSON answer, errors raised as kubefox errors."""
        try:
            msg = await self._nc.request(subject, data, timeout=_JS_TIMEOUT, **kw)
        except natsio.NoRespondersError as exc:
            raise _NoStreamError(f"JetStream does not answer on {subject}") from exc
        except natsio.RequestTimeoutError as exc:
            raise BrokerUnavailableError(f"{subject}: no answer within {_JS_TIMEOUT:g}s") from exc
        except (natsio.NatsIOError, ValueError) as exc:
            raise _failure(subject, exc) from exc
        try:
            answer = json.loads(bytes(msg.data))
        except ValueError as exc:
            raise BrokerUnavailableError(f"{subject}: the answer is not JSON") from exc
        if not isinstance(answer, dict):
            raise BrokerUnavailableError(f"{subject}: the answer is not a JSON object")
        return answer

    async def _bind(self) -> None:
        """Check the bucket exists; create it if not (see the module docstring)."""
        s = self._settings
        stream = f"KV_{s.instances_bucket}"
        info = await self._js(f"$JS.API.STREAM.INFO.{stream}")
        error = info.get("error")
        if isinstance(error, dict) and error.get("err_code") == _STREAM_NOT_FOUND:
            await self._create(stream)
        elif error is not None:
            raise BrokerUnavailableError(f"bucket {s.instances_bucket}: {_describe(error)}")

    async def _create(self, stream: str) -> None:
        s = self._settings
        ttl = int(max(MIN_RECORD_AGE, 3 * s.heartbeat_interval) * _NS)
        # What nats-py's create_key_value sends for history=1, this ttl, memory storage,
        # so that identical concurrent creates (by other instances) succeed.
        config = {
            "name": stream,
            "subjects": [f"$KV.{s.instances_bucket}.>"],
            "max_consumers": -1,
            "max_msgs": -1,
            "discard": "new",
            "discard_new_per_subject": False,
            "max_age": ttl,
            "max_msgs_per_subject": 1,
            "storage": "memory",
            "num_replicas": 1,
            "no_ack": False,
            "duplicate_window": min(ttl, 120 * _NS),
            "sealed": False,
            "deny_delete": True,
            "deny_purge": False,
            "allow_rollup_hdrs": True,
            "allow_msg_ttl": True,
        }
        created = await self._js(f"$JS.API.STREAM.CREATE.{stream}", json.dumps(config).encode())
        error = created.get("error")
        # Created meanwhile with another configuration (code 400): use theirs.
        if isinstance(error, dict) and error.get("code") != 400:
            raise BrokerUnavailableError(f"cannot create {stream}: {_describe(error)}")

    async def _kv(self, action: str, key: str, data: bytes, headers: dict[str, str] | None) -> None:
        subject = f"$KV.{self._settings.instances_bucket}.{key}"
        try:
            # The put first: when the bucket exists (the platform makes it) that is
            # the only request, and it is all an app's NATS account can ask
            # JetStream (security.nats_tenancy imports the keys, not its API).
            try:
                ack = await self._js(subject, data, headers=headers)
            except _NoStreamError:
                await self._bind()  # no bucket (yet, or any more): check and make it
                ack = await self._js(subject, data, headers=headers)
        except _NoStreamError as exc:
            raise BrokerUnavailableError(f"{action}: {exc}") from exc
        error = ack.get("error")
        if error is not None:
            raise BrokerUnavailableError(f"{action}: {_describe(error)}")

    async def register(self, key: str, record: bytes) -> None:
        """Put ``record`` under ``key`` in the instances bucket."""
        await self._kv("register", key, record, None)

    async def deregister(self, key: str) -> None:
        """Delete ``key`` from the instances bucket."""
        await self._kv("deregister", key, b"", _KV_DELETE)

    # -- state --------------------------------------------------------------------------

    async def wait_disconnected(self) -> None:
        """Return once the connection is down."""
        await self._down.wait()

    async def wait_connected(self) -> None:
        """Return once the connection is up."""
        await self._up.wait()

    async def close(self) -> None:
        """Flush what is pending (briefly) and close; idempotent."""
        pumps, self._pumps = self._pumps, []
        for pump in pumps:
            pump.cancel()
        client = self._client
        self._up.clear()
        self._down.set()
        if client is None or client.is_closed:
            return
        if client.is_connected:
            try:
                await client.flush(_FLUSH_ON_CLOSE)
            except natsio.NatsIOError as exc:
                _log.debug("nats.flush_failed", error=f"{type(exc).__name__}: {exc}")
        await client.close()


class _NoStreamError(BrokerUnavailableError):
    """Nobody answers a JetStream subject: no stream (or no JetStream) for it."""


def _describe(error: object) -> str:
    if isinstance(error, dict):
        return f"{error.get('description', 'error')} (code {error.get('code')})"
    return str(error)


async def connect(settings: KitSettings) -> NatsioTransport:
    """Connect to NATS at ``settings.nats_url``; reconnects forever once connected.

    Raises:
        BrokerUnavailableError: no server answered within ``settings.platform_grace``.
    """
    transport = NatsioTransport(settings)
    await transport.open()
    return transport
