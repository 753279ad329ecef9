"""Request/reply over one wildcard inbox subscription: a future per request, by reply subject.

Every request of a client gets the reply subject ``<prefix>.<random>.<n>``
and the client subscribes once to ``<prefix>.<random>.*`` (nats-py's
"new style" requests): no SUB/UNSUB per request, one dict entry instead.
"""

from __future__ import annotations

import asyncio
import secrets

from kubefox.natsio.errors import NoRespondersError, RequestTimeoutError
from kubefox.natsio.headers import NO_RESPONDERS, STATUS, Headers
from kubefox.natsio.parser import Payload
from kubefox.natsio.subscription import Msg


class Replies:
    """The requests in flight of one client; :meth:`handle` is the inbox's handler."""

    __slots__ = ("_futures", "_next", "prefix")

    def __init__(self, inbox_prefix: str) -> None:
        self.prefix = f"{inbox_prefix}.{secrets.token_hex(11)}."
        self._futures: dict[str, asyncio.Future[Msg | None]] = {}
        self._next = 0

    @property
    def wildcard(self) -> str:
        """The subject the inbox subscription listens on."""
        return self.prefix + "*"

    def expect(self) -> tuple[str, asyncio.Future[Msg | None]]:
        """A fresh reply subject and the future its reply (``None``: no responders) will set."""
        self._next += 1
        reply = f"{self.prefix}{self._next}"
        future: asyncio.Future[Msg | None] = asyncio.get_running_loop().create_future()
        self._futures[reply] = future
        return reply, future

    def forget(self, reply: str) -> None:
        """Drop the request of ``reply`` (answered, timed out or failed)."""
        self._futures.pop(reply, None)

    async def wait(
        self,
        future: asyncio.Future[Msg | None],
        subject: str,
        timeout: float,  # noqa: ASYNC109 - one timer per request, cheaper than a scope
    ) -> Msg:
        """The reply of the request to ``subject`` behind ``future``.

        Raises:
            RequestTimeoutError: no reply within ``timeout`` seconds.
            NoRespondersError: nobody subscribes to ``subject``.
        """
        timer = asyncio.get_running_loop().call_later(timeout, _expire, future, subject, timeout)
        try:
            msg = await future
        finally:
            timer.cancel()
        if msg is None:
            raise NoRespondersError(subject)
        return msg

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
        futures, self._futures = self._futures, {}
        for future in futures.values():
            if not future.done():
                future.set_exception(exc)


def _expire(future: asyncio.Future[Msg | None], subject: str, timeout: float) -> None:
    if not future.done():
        future.set_exception(RequestTimeoutError(f"no reply from {subject} within {timeout:.3g}s"))
