"""Request/reply over one wildcard inbox subscription: a future per request, by reply subject.

Every request of a client gets the reply subject ``<prefix>.<random>.<n>``
and the client subscribes once to ``<prefix>.<random>.*`` (nats-py's
"new style" requests): no SUB/UNSUB per request, one dict entry instead.

The timeouts share one loop timer (:class:`~kubefox.natsio.deadlines.DeadlineTimer`)
instead of a timer per request.
"""

from __future__ import annotations

import asyncio
import secrets

from kubefox.natsio.deadlines import DeadlineTimer
from kubefox.natsio.errors import RequestTimeoutError
from kubefox.natsio.headers import NO_RESPONDERS, STATUS, Headers
from kubefox.natsio.parser import Payload
from kubefox.natsio.subscription import Msg


class Replies:
    """The requests in flight of one client; :meth:`handle` is the inbox's handler."""

    __slots__ = ("_deadlines", "_futures", "_loop", "_next", "_waiting", "prefix")

    def __init__(self, inbox_prefix: str, loop: asyncio.AbstractEventLoop) -> None:
        self.prefix = f"{inbox_prefix}.{secrets.token_hex(11)}."
        self._loop = loop
        self._futures: dict[str, asyncio.Future[Msg | None]] = {}
        self._next = 0
        #: The futures being waited for: the subject and timeout of their request.
        self._waiting: dict[asyncio.Future[Msg | None], tuple[str, float]] = {}
        self._deadlines: DeadlineTimer[asyncio.Future[Msg | None]] = DeadlineTimer(
            loop, self._timed_out
        )

    @property
    def waiting(self) -> int:
        """Requests sent and not answered yet."""
        return len(self._futures)

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
        self._deadlines.forget(future)

    def watch(self, future: asyncio.Future[Msg | None], subject: str, timeout: float) -> None:
        """Fail ``future``, the request to ``subject``, unless answered within ``timeout`` seconds.

        The future then holds :class:`RequestTimeoutError`; :meth:`forget` ends the watch.
        """
        self._waiting[future] = (subject, timeout)
        self._deadlines.watch(future, self._loop.time() + timeout)

    def _timed_out(self, future: asyncio.Future[Msg | None], _when: float) -> None:
        subject, timeout = self._waiting.pop(future)
        if not future.done():
            future.set_exception(
                RequestTimeoutError(f"no reply from {subject} within {timeout:.3g}s")
            )

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
        self._deadlines.close()
        self._waiting.clear()
        futures, self._futures = self._futures, {}
        for future in futures.values():
            if not future.done():
                future.set_exception(exc)
