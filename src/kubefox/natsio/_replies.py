"""Request/reply over one wildcard inbox subscription: a future per request, by reply subject.

Every request of a client gets the reply subject ``<prefix>.<random>.<n>``
and the client subscribes once to ``<prefix>.<random>.*`` (nats-py's
"new style" requests): no SUB/UNSUB per request, one dict entry instead.

The timeouts share one loop timer, armed for the earliest deadline of the
requests waiting, instead of a timer per request: nearly every reply comes
long before its deadline, and on uvloop arming and cancelling a timer for
each request cost more than the rest of the wait (a libuv timer made,
started, stopped and closed every time).
"""

from __future__ import annotations

import asyncio
import math
import secrets

from kubefox.natsio.errors import RequestTimeoutError
from kubefox.natsio.headers import NO_RESPONDERS, STATUS, Headers
from kubefox.natsio.parser import Payload
from kubefox.natsio.subscription import Msg


class Replies:
    """The requests in flight of one client; :meth:`handle` is the inbox's handler."""

    __slots__ = ("_futures", "_loop", "_next", "_timer", "_timer_at", "_waiting", "prefix")

    def __init__(self, inbox_prefix: str, loop: asyncio.AbstractEventLoop) -> None:
        self.prefix = f"{inbox_prefix}.{secrets.token_hex(11)}."
        self._loop = loop
        self._futures: dict[str, asyncio.Future[Msg | None]] = {}
        self._next = 0
        #: The futures being waited for: their deadline (loop time), subject and timeout.
        self._waiting: dict[asyncio.Future[Msg | None], tuple[float, str, float]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    @property
    def wildcard(self) -> str:
        """The subject the inbox subscription listens on."""
        return self.prefix + "*"

    def expect(self) -> tuple[str, asyncio.Future[Msg | None]]:
        """A fresh reply subject and the future its reply (``None``: no responders) will set."""
        self._next += 1
        reply = f"{self.prefix}{self._next}"
        future: asyncio.Future[Msg | None] = self._loop.create_future()
        self._futures[reply] = future
        return reply, future

    def forget(self, reply: str, future: asyncio.Future[Msg | None]) -> None:
        """Drop the request of ``reply`` (answered, timed out or failed) and its deadline."""
        self._futures.pop(reply, None)
        self._waiting.pop(future, None)

    def watch(self, future: asyncio.Future[Msg | None], subject: str, timeout: float) -> None:
        """Fail ``future``, the request to ``subject``, unless answered within ``timeout`` seconds.

        The future then holds :class:`RequestTimeoutError`; :meth:`forget` ends the watch.
        """
        when = self._loop.time() + timeout
        self._waiting[future] = (when, subject, timeout)
        if when < self._timer_at:
            self._arm(when)

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._expire)

    def _expire(self) -> None:
        # What the timer was armed for is due even if the loop's clock reads a
        # little earlier (libuv counts whole milliseconds), as with a timer per request.
        due = max(self._loop.time(), self._timer_at)
        self._timer = None
        self._timer_at = math.inf
        earliest = math.inf
        for future, (when, subject, timeout) in self._waiting.items():
            if when <= due:
                if not future.done():
                    future.set_exception(
                        RequestTimeoutError(f"no reply from {subject} within {timeout:.3g}s")
                    )
            elif when < earliest:
                earliest = when
        if earliest < math.inf:
            self._arm(earliest)

    def handle(self, subject: str, reply: str, data: Payload, headers: Headers | None) -> None:
        """Resolve the request whose reply subject is ``subject``; late replies are dropped."""
        future = self._futures.pop(subject, None)
        if future is None or future.done():
            return
        if headers is not None and not data and headers.get(STATUS) == NO_RESPONDERS:
            future.set_result(None)
        else:
            future.set_result(Msg(subject, reply, data, headers))

    def fail_all(self, exc: Exception) -> None:
        """Fail every request in flight with ``exc`` (the client is closing)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = math.inf
        futures, self._futures = self._futures, {}
        for future in futures.values():
            if not future.done():
                future.set_exception(exc)
