"""A small asyncio NATS core client for the hot path: publish, subscribe, request.

Built on ``asyncio.Protocol`` (so uvloop runs it in C up to our parser): a
read is parsed where it arrives, and each message's handler is called right
there, synchronously, with a zero-copy view of the payload. No queue, no task,
no message object per delivery; a handler that needs to await spawns its own
task. Whatever handlers publish while a read is being parsed goes out in one
write at the end of it; what tasks publish meanwhile goes out in one write at
the loop's next turn (one TLS record and one syscall for many messages),
except a message that has nothing to be gathered with: a request while no
other waits for its reply, or a publish the caller says is alone
(``at_once``), leaves at once when the connection has been quiet for
:data:`QUIET_NS`, instead of adding a turn of the loop to its latency.

What it does: the INFO/CONNECT handshake (headers and no-responders on), TLS
when the server requires it or the URL says ``tls://``, a user JWT and a
signed nonce from a ``.creds`` file, user/password or a token from the URL;
PUB/HPUB, SUB with queue groups, UNSUB; request/reply over one wildcard inbox
subscription, one token per request; PING/PONG both ways, with a stale
connection dropped after ``max_outstanding_pings`` unanswered pings; reconnect
forever through the server list, re-subscribing everything and then sending
what was published meanwhile (up to ``reconnect_buffer_size`` bytes);
back-pressure: past ``write_buffer_limit`` bytes queued for the socket it
stops reading (handlers stop publishing) and :meth:`Client.wait_writable`
blocks. Not here: JetStream, and the cluster's discovered servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from kubefox.core.nats_options import NatsConnectOptions
from kubefox.natsio._connection import Connection, Handshake, names, upgraded
from kubefox.natsio._keepalive import Pings, WriteGate
from kubefox.natsio._replies import Replies
from kubefox.natsio.auth import Secrets, ServerAddress, connect_line, parse_server
from kubefox.natsio.errors import (
    ConnectError,
    ConnectionClosedError,
    MaxPayloadError,
    NatsIOError,
    NoRespondersError,
    OutboundBufferFullError,
    ProtocolError,
    RequestTimeoutError,
    ServerError,
    server_error,
)
from kubefox.natsio.headers import Headers, encode_headers
from kubefox.natsio.parser import Parser, Payload
from kubefox.natsio.subscription import (
    ErrorCallback,
    Handler,
    Msg,
    StateCallback,
    Subscription,
)

DEFAULT_MAX_PAYLOAD = 1024 * 1024
DEFAULT_WRITE_BUFFER_LIMIT = 4 * 1024 * 1024
DEFAULT_RECONNECT_BUFFER_SIZE = 8 * 1024 * 1024

#: An ``at_once`` message leaves at once only when the connection wrote nothing for
#: this long; under load writes come closer together and are gathered per loop turn.
QUIET_NS = 200_000
_monotonic_ns = time.monotonic_ns
_CRLF = b"\r\n"
_PING = b"PING\r\n"
_PONG = b"PONG\r\n"
_CLOSE_GRACE = 2.0


async def connect(options: NatsConnectOptions, **settings: Any) -> Client:
    """A :class:`Client` connected to the first server of ``options`` that accepts it.

    ``settings`` are :class:`Client`'s keyword arguments.

    Raises:
        ConnectError: no server accepted (``__cause__`` is the last failure).
        ServerError: the server refused the connection (e.g. ``AuthorizationError``).
    """
    client = Client(options, **settings)
    await client.connect()
    return client


class Client:
    """One NATS connection (reconnecting) for one process; see the module docstring.

    Args:
        options: servers, TLS trust, credentials, inbox prefix, name.
        connect_timeout: seconds for one attempt: TCP, TLS, CONNECT and its PONG.
        reconnect_wait: seconds between two passes through the server list.
        ping_interval: seconds between our PINGs on an idle or busy connection.
        max_outstanding_pings: unanswered PINGs after which the connection is dropped.
        write_buffer_limit: bytes queued for the socket past which reading pauses.
        reconnect_buffer_size: bytes published while disconnected that are kept.
        on_error: errors nobody awaits (``-ERR``, failed reconnects, handler errors).
        on_disconnected: the connection was lost; reconnecting starts.
        on_reconnected: connected again, every subscription made again.
    """

    def __init__(
        self,
        options: NatsConnectOptions,
        *,
        connect_timeout: float = 2.0,
        reconnect_wait: float = 0.5,
        ping_interval: float = 20.0,
        max_outstanding_pings: int = 2,
        write_buffer_limit: int = DEFAULT_WRITE_BUFFER_LIMIT,
        reconnect_buffer_size: int = DEFAULT_RECONNECT_BUFFER_SIZE,
        on_error: ErrorCallback | None = None,
        on_disconnected: StateCallback | None = None,
        on_reconnected: StateCallback | None = None,
    ) -> None:
        self.options = options
        self._servers = [parse_server(url) for url in options.servers]
        if not self._servers:
            raise ConnectError("no server URL given")
        self._connect_timeout = connect_timeout
        self._reconnect_wait = reconnect_wait
        self._write_limit = write_buffer_limit
        self._reconnect_limit = reconnect_buffer_size
        self._on_error = on_error
        self._on_disconnected = on_disconnected
        self._on_reconnected = on_reconnected

        self._parser = Parser(
            on_msg=self._dispatch,
            on_ping=self._on_ping,
            on_pong=self._on_pong,
            on_info=self._on_info,
            on_err=self._on_err,
        )
        self._secrets = Secrets(options)
        self._conn: Connection | None = None
        # Kept from the first connection on: on 3.11 asyncio.get_running_loop()
        # costs a getpid() system call, and publishing from a task needs the loop.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._transport: asyncio.Transport | None = None  # set only once connected
        self._address: ServerAddress | None = None
        self._handshake: Handshake | None = None
        self._info: dict[str, Any] = {}
        self._max_payload = DEFAULT_MAX_PAYLOAD
        self._closed = False
        self._started = False
        self._subs: dict[int, Subscription] = {}
        self._next_sid = 0
        self._pings = Pings(ping_interval, max_outstanding_pings, self._stale)
        self._reconnect_task: asyncio.Task[None] | None = None
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._batch: list[bytes] | None = None
        self._written_at = 0  # monotonic ns of the last write to the socket
        self._gate = WriteGate()
        self._replies: Replies | None = None
        self._resp_sub: Subscription | None = None
        #: Set while connected, cleared while disconnected or closed.
        self.connected = asyncio.Event()
        #: The last error passed to ``on_error`` (also without a callback).
        self.last_error: Exception | None = None

    # ---- state -------------------------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        """Whether a connection is up and past its handshake."""
        return self._transport is not None

    @property
    def is_closed(self) -> bool:
        """Whether :meth:`close` (or :meth:`drain`) was called."""
        return self._closed

    @property
    def server_info(self) -> dict[str, Any]:
        """The server's latest INFO (empty before the first connection)."""
        return self._info

    @property
    def max_payload(self) -> int:
        """The largest message (headers included) the server accepts, from its INFO."""
        return self._max_payload

    @property
    def connected_address(self) -> ServerAddress | None:
        """The server of the current connection, if any."""
        return self._address if self._transport is not None else None

    # ---- connecting --------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect to the first server of the list that accepts; only once per client.

        Raises:
            ConnectError: no server accepted (``__cause__`` is the last failure).
            ServerError: the last server refused the connection (``-ERR``).
        """
        if self._started:
            raise ConnectError("connect() was already called")
        self._started = True
        last: Exception | None = None
        for address in self._servers:
            try:
                await self._open(address)
            except (NatsIOError, OSError, TimeoutError) as exc:
                last = exc
            else:
                return
        self._closed = True
        if isinstance(last, ServerError):
            raise last
        raise ConnectError(f"cannot connect to {names(self._servers)}: {last!r}") from last

    async def _open(self, address: ServerAddress) -> None:
        loop = asyncio.get_running_loop()
        conn = Connection(self, loop)
        handshake = self._handshake = Handshake(loop)
        self._parser.reset()
        self._conn = conn
        try:
            async with asyncio.timeout(self._connect_timeout):
                await loop.create_connection(lambda: conn, address.host, address.port)
                info = await handshake.info
                transport = conn.transport
                assert transport is not None  # noqa: S101 - set by connection_made
                tls = bool(info.get("tls_required")) or address.wants_tls
                if tls:
                    started = await loop.start_tls(
                        transport, conn, self._secrets.ssl_context(), server_hostname=address.host
                    )
                    transport = conn.transport = upgraded(started, address)
                creds = self._secrets.user_creds()
                line = connect_line(
                    name=self.options.name, address=address, info=info, creds=creds, tls=tls
                )
                transport.write(line + _PING)
                await handshake.pong
        except BaseException:
            if conn.transport is not None:
                conn.transport.abort()
            if self._conn is conn:
                self._conn = None
            raise
        finally:
            self._handshake = None
        if self._conn is not conn or conn.closed.done():
            raise ConnectionClosedError(f"connection to {address} lost during the handshake")
        self._established(address, info, transport)

    def _established(
        self, address: ServerAddress, info: dict[str, Any], transport: asyncio.Transport
    ) -> None:
        self._address = address
        self._info = info
        self._max_payload = int(info.get("max_payload", DEFAULT_MAX_PAYLOAD))
        self._loop = asyncio.get_running_loop()
        transport.set_write_buffer_limits(high=self._write_limit)
        # Subscriptions first, then what was published meanwhile (their replies may need them).
        out = [sub.line() for sub in self._subs.values()]
        out += self._pending
        self._pending = []
        self._pending_size = 0
        if out:
            transport.write(b"".join(out))
        self._transport = transport
        self._pings.start(transport)
        self.connected.set()

    async def _reconnect(self) -> None:
        while not self._closed:
            for address in self._servers:
                try:
                    await self._open(address)
                except (NatsIOError, OSError, TimeoutError) as exc:
                    self._report(exc)
                    continue
                if self._on_reconnected is not None:
                    self._call(self._on_reconnected)
                return
            await asyncio.sleep(self._reconnect_wait)

    # ---- publishing --------------------------------------------------------------------

    def publish(
        self,
        subject: str,
        data: Payload | bytearray = b"",
        *,
        reply: str = "",
        headers: Headers | None = None,
        at_once: bool = False,
    ) -> None:
        """Send ``data`` to ``subject``; returns once queued (see :meth:`wait_writable`).

        With ``at_once`` (nothing else is about to be published: the caller
        knows it is alone) the message is written now if the connection has
        been quiet for :data:`QUIET_NS` and no write is being gathered.

        Raises:
            MaxPayloadError: ``data`` (with the headers) exceeds the server's max_payload.
            ConnectionClosedError: the client is closed.
            OutboundBufferFullError: disconnected, and the reconnect buffer is full.
            ValueError: ``subject`` is empty or holds whitespace; a header is invalid.
        """
        if self._closed:
            raise ConnectionClosedError("the client is closed")
        if not subject or " " in subject:
            raise ValueError(f"invalid subject {subject!r}")
        size = len(data)
        if headers:
            block = encode_headers(headers)
            total = len(block) + size
            if total > self._max_payload:
                raise MaxPayloadError(total, self._max_payload)
            if reply:
                line = f"HPUB {subject} {reply} {len(block)} {total}\r\n"
            else:
                line = f"HPUB {subject} {len(block)} {total}\r\n"
            self._write(b"".join((line.encode(), block, data, _CRLF)), at_once=at_once)
            return
        if size > self._max_payload:
            raise MaxPayloadError(size, self._max_payload)
        line = f"PUB {subject} {reply} {size}\r\n" if reply else f"PUB {subject} {size}\r\n"
        self._write(b"".join((line.encode(), data, _CRLF)), at_once=at_once)

    def _write(self, data: bytes, *, at_once: bool = False) -> None:
        batch = self._batch
        if batch is not None:
            batch.append(data)
            return
        loop = self._loop
        transport = self._transport
        if transport is not None and loop is not None:  # the loop is set once connected
            if at_once:
                now = _monotonic_ns()
                if now - self._written_at >= QUIET_NS:
                    self._written_at = now
                    transport.write(data)
                    return
                # Alone, but the connection is busy: other writes are likely this turn.
            self._batch = [data]  # more may follow in this turn of the loop
            loop.call_soon(self._flush_batch)
            return
        if self._pending_size + len(data) > self._reconnect_limit:
            raise OutboundBufferFullError(
                f"disconnected, and {self._pending_size} bytes already wait for the reconnect"
            )
        self._pending.append(data)
        self._pending_size += len(data)

    def _flush_batch(self) -> None:
        batch, self._batch = self._batch, None
        if batch and self._transport is not None:
            self._written_at = _monotonic_ns()
            self._transport.write(b"".join(batch))

    async def wait_writable(self) -> None:
        """Return once the socket's write buffer is below ``write_buffer_limit``."""
        await self._gate.wait()

    async def flush(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - a PING's PONG
        """Return once the server has processed everything sent so far (PING, PONG).

        Waits for a connection first if there is none (within ``timeout``).

        Raises:
            RequestTimeoutError: no PONG within ``timeout`` seconds.
            ConnectionClosedError: the client is closed, or the connection dropped meanwhile.
        """
        if self._closed:
            raise ConnectionClosedError("the client is closed")
        try:
            async with asyncio.timeout(timeout):
                await self.connected.wait()
                if self._transport is None:  # closed while waiting
                    raise ConnectionClosedError("the client is closed")
                pong = self._pings.expect()
                self._write(_PING)
                await pong
        except TimeoutError as exc:
            raise RequestTimeoutError(f"no PONG within {timeout:.3g}s") from exc

    # ---- subscribing -------------------------------------------------------------------

    def subscribe(self, subject: str, callback: Handler, *, queue: str = "") -> Subscription:
        """Call ``callback`` for every message on ``subject`` (in queue group ``queue``).

        The callback runs inside the connection's read, synchronously: it must
        not block, and spawns a task for anything it awaits. Its exceptions go
        to ``on_error``. Interest is known to the server after a :meth:`flush`.

        Raises:
            ConnectionClosedError: the client is closed.
            ValueError: ``subject`` or ``queue`` is empty or holds whitespace.
        """
        if self._closed:
            raise ConnectionClosedError("the client is closed")
        if not subject or any(c.isspace() for c in subject) or any(c.isspace() for c in queue):
            raise ValueError(f"invalid subject {subject!r} or queue {queue!r}")
        self._next_sid += 1
        sub = Subscription(self, self._next_sid, subject, queue, callback)
        self._subs[sub.sid] = sub
        # While disconnected the reconnect sends it, with every other one.
        if self._transport is not None:
            self._write(sub.line())
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        if self._subs.get(sub.sid) is not sub:
            return
        del self._subs[sub.sid]
        if self._transport is not None:
            self._write(f"UNSUB {sub.sid}\r\n".encode())

    # ---- request/reply -----------------------------------------------------------------

    async def request(
        self,
        subject: str,
        data: Payload | bytearray = b"",
        *,
        timeout: float,  # noqa: ASYNC109 - one timer for all requests (see _replies)
        headers: Headers | None = None,
    ) -> Msg:
        """Send ``data`` to ``subject`` and return the first reply.

        Replies come through one wildcard subscription on
        ``<inbox_prefix>.<random>.*``, made at the first request.

        Raises:
            RequestTimeoutError: no reply within ``timeout`` seconds.
            NoRespondersError: nobody subscribes to ``subject``.
            MaxPayloadError, ConnectionClosedError, OutboundBufferFullError: as :meth:`publish`.
        """
        replies = self._replies or self._start_inbox()
        if self._gate.paused:
            await self._gate.wait()
        # The only request waiting for a reply (a sequential caller): nothing to gather it with.
        alone = not replies.waiting
        reply, future = replies.expect()
        try:
            self.publish(subject, data, reply=reply, headers=headers, at_once=alone)
            replies.watch(future, subject, timeout)
            msg = await future
        finally:
            replies.forget(reply, future)
        if msg is None:
            raise NoRespondersError(subject)
        return msg

    def _start_inbox(self) -> Replies:
        replies = Replies(self.options.inbox_prefix or "_INBOX", asyncio.get_running_loop())
        self._resp_sub = self.subscribe(replies.wildcard, replies.handle)
        self._replies = replies
        return replies

    # ---- from the connection -----------------------------------------------------------

    def _received(self, conn: Connection, data: bytes) -> None:
        if conn is not self._conn:
            return
        batch = self._batch  # what tasks published before this read goes out first
        if batch is None:
            batch = self._batch = []
        try:
            self._parser.feed(data)
        except ProtocolError as exc:
            self._report(exc)
            if conn.transport is not None:
                conn.transport.abort()
        finally:
            self._batch = None
            if batch and conn.transport is not None:
                self._written_at = _monotonic_ns()
                conn.transport.write(b"".join(batch))

    def _dispatch(
        self, sid: int, subject: str, reply: str, data: Payload, headers: Headers | None
    ) -> None:
        sub = self._subs.get(sid)
        if sub is None:
            return  # unsubscribed meanwhile
        try:
            sub.callback(subject, reply, data, headers)
        except Exception as exc:  # noqa: BLE001 - one handler's bug must not stop the parser
            self._report(exc)

    def _on_ping(self) -> None:
        if self._batch is not None:
            self._batch.append(_PONG)
        elif self._conn is not None and self._conn.transport is not None:
            self._conn.transport.write(_PONG)

    def _on_pong(self) -> None:
        handshake = self._handshake
        if handshake is not None:
            if not handshake.pong.done():
                handshake.pong.set_result(None)
            return
        self._pings.pong()

    def _on_info(self, info: dict[str, Any]) -> None:
        handshake = self._handshake
        if handshake is not None and not handshake.info.done():
            handshake.info.set_result(info)
            return
        self._info = {**self._info, **info}
        self._max_payload = int(self._info.get("max_payload", self._max_payload))

    def _on_err(self, text: str) -> None:
        error = server_error(text)
        if self._handshake is not None:
            self._handshake.fail(error)  # raised by connect(), or reported by the reconnect
        else:
            self._report(error)

    def _lost(self, conn: Connection, exc: Exception | None) -> None:
        if conn is not self._conn:
            return
        self._conn = None
        was_connected = self._transport is not None
        self._transport = None
        self.connected.clear()
        self._gate.release(conn.transport)
        reason = ConnectionClosedError(f"connection lost: {exc}" if exc else "connection closed")
        if self._handshake is not None:
            self._handshake.fail(reason)
        self._pings.stop(reason)
        if self._closed or not was_connected:
            return
        if self._on_disconnected is not None:
            self._call(self._on_disconnected)
        self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect())

    def _pause_writing(self, conn: Connection) -> None:
        if conn is self._conn and conn.transport is not None:
            self._gate.pause(conn.transport)

    def _resume_writing(self, conn: Connection) -> None:
        if conn is self._conn:
            self._gate.release(conn.transport)

    def _stale(self, unanswered: int) -> None:
        transport = self._transport
        if transport is None:
            return
        self._report(ConnectionClosedError(f"stale connection: {unanswered} pings unanswered"))
        transport.abort()  # connection_lost follows, then the reconnect

    # ---- closing -----------------------------------------------------------------------

    async def drain(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - a flush's bound
        """Drain every subscription (see :meth:`drain_subscriptions`), then :meth:`close`."""
        if self._closed:
            return
        await self.drain_subscriptions(
            [sub for sub in self._subs.values() if sub is not self._resp_sub], timeout
        )
        await self.close()

    async def drain_subscriptions(
        self,
        subs: list[Subscription],
        timeout: float = 5.0,  # noqa: ASYNC109 - a flush's bound
    ) -> None:
        """Unsubscribe ``subs`` and return once the server has seen it.

        Messages that arrive before the server processes the UNSUBs are still
        delivered (handlers run in the read, so they have run once this
        returns). Never raises for a dead connection.
        """
        subs = [sub for sub in subs if self._subs.get(sub.sid) is sub]
        if self._transport is not None and subs:
            self._write(b"".join(b"UNSUB %d\r\n" % sub.sid for sub in subs))
            with contextlib.suppress(NatsIOError):
                await self.flush(timeout)
        for sub in subs:
            self._subs.pop(sub.sid, None)

    async def close(self) -> None:
        """Close the connection and stop reconnecting; pending requests fail. Idempotent.

        What was published before is written out first (the transport flushes on close).
        """
        if self._closed and self._conn is None and self._reconnect_task is None:
            return
        self._closed = True
        self._pings.stop()
        self._flush_batch()
        task, self._reconnect_task = self._reconnect_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        reason = ConnectionClosedError("the client is closed")
        if self._replies is not None:
            self._replies.fail_all(reason)
        conn = self._conn
        if conn is not None and conn.transport is not None:
            conn.transport.close()
            try:
                async with asyncio.timeout(_CLOSE_GRACE):
                    await asyncio.shield(conn.closed)
            except TimeoutError:
                conn.transport.abort()
        self._conn = None
        self._transport = None
        self._pending = []
        self._pending_size = 0
        self.connected.clear()

    # ---- errors ------------------------------------------------------------------------

    def _report(self, exc: Exception) -> None:
        self.last_error = exc
        if self._on_error is not None:
            # An error callback's own failure must not break the read.
            with contextlib.suppress(Exception):
                self._on_error(exc)

    def _call(self, callback: StateCallback) -> None:
        try:
            callback()
        except Exception as exc:  # noqa: BLE001 - a state callback must not break the client
            self._report(exc)
