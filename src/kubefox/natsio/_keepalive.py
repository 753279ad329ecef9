"""A connection's liveness and flow control: PING/PONG, stale detection, write back-pressure.

Split from :mod:`.client` so that the client keeps to the protocol and the
connection's life cycle. Both classes are per client and survive reconnects:
:meth:`Pings.start` and :meth:`WriteGate.release` reset them for a new
connection.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

_PING = b"PING\r\n"


class Pings:
    """Our PINGs and the PONGs they wait for.

    A timer sends a PING every ``interval`` seconds; when ``max_outstanding``
    of them are still unanswered at the next tick, ``on_stale`` is called with
    that count and the timer stops (the client aborts the connection). A
    :meth:`expect` waiter (a flush) is resolved by the PONG of its own PING:
    the server answers PINGs in order.
    """

    __slots__ = (
        "_interval",
        "_max_outstanding",
        "_on_stale",
        "_out",
        "_timer",
        "_transport",
        "_waiters",
    )

    def __init__(
        self, interval: float, max_outstanding: int, on_stale: Callable[[int], None]
    ) -> None:
        self._interval = interval
        self._max_outstanding = max_outstanding
        self._on_stale = on_stale
        self._waiters: deque[asyncio.Future[None] | None] = deque()
        self._out = 0
        self._timer: asyncio.TimerHandle | None = None
        self._transport: asyncio.Transport | None = None

    def start(self, transport: asyncio.Transport) -> None:
        """A new connection: forget the old one's PINGs and start the timer."""
        self._waiters.clear()
        self._out = 0
        self._transport = transport
        self._schedule()

    def stop(self, reason: Exception | None = None) -> None:
        """Stop the timer; fail the waiting flushes with ``reason`` if given."""
        self._transport = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if reason is None:
            return
        waiters, self._waiters = self._waiters, deque()
        for waiter in waiters:
            if waiter is not None and not waiter.done():
                waiter.set_exception(reason)

    def expect(self) -> asyncio.Future[None]:
        """A future the PONG of the PING the caller sends next resolves."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        return future

    def pong(self) -> None:
        """A PONG arrived: the connection is alive; resolve the oldest PING's waiter."""
        self._out = 0
        if self._waiters:
            waiter = self._waiters.popleft()
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self._interval, self._tick)

    def _tick(self) -> None:
        self._timer = None
        transport = self._transport
        if transport is None:
            return
        if self._out >= self._max_outstanding:
            self._on_stale(self._out)
            return
        self._out += 1
        self._waiters.append(None)
        transport.write(_PING)
        self._schedule()


class WriteGate:
    """Back-pressure: past the socket's write limit, reading pauses and writers wait."""

    __slots__ = ("_writable", "paused")

    def __init__(self) -> None:
        #: Whether the socket's write buffer is above its limit (reading is paused).
        self.paused = False
        self._writable: asyncio.Future[None] | None = None

    def pause(self, transport: asyncio.Transport) -> None:
        """The write buffer went over its limit: stop reading (handlers stop publishing)."""
        self.paused = True
        transport.pause_reading()

    def release(self, transport: asyncio.Transport | None) -> None:
        """The buffer drained (or the connection is gone): read again, wake the writers."""
        if not self.paused:
            return
        self.paused = False
        if transport is not None and not transport.is_closing():
            transport.resume_reading()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    async def wait(self) -> None:
        """Return once the write buffer is below its limit."""
        while self.paused:
            if self._writable is None or self._writable.done():
                self._writable = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._writable)
