"""One loop timer for the deadlines of every handler in flight, instead of one per event.

``asyncio.timeout_at`` arms a loop timer for each scope: on uvloop a libuv
timer made, started, stopped and closed for every event, although nearly
every handler answers long before its deadline. The Kit runs each handler in
an ``asyncio.timeout_at(None)`` scope instead, which asyncio still owns (the
cancel, the uncancel, the ``CancelledError`` turned into ``TimeoutError``,
``expired()``), and :class:`Deadlines` arms one timer for the earliest
deadline in flight. When it fires, the scopes that are due are rescheduled to
their deadline, so asyncio expires each one just as its own timer would have.
"""

from __future__ import annotations

import asyncio
import math


class Deadlines:
    """Expires watched ``asyncio.Timeout`` scopes at their deadlines, from one timer."""

    __slots__ = ("_loop", "_scopes", "_timer", "_timer_at")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._scopes: dict[asyncio.Timeout, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def __len__(self) -> int:
        return len(self._scopes)

    def watch(self, scope: asyncio.Timeout, when: float) -> None:
        """Expire ``scope``, entered with no deadline, at ``when`` (loop time).

        Call :meth:`forget` before the scope exits. A deadline already past
        expires the scope at the loop's next turn, as ``timeout_at`` does.
        """
        if when <= self._loop.time():
            scope.reschedule(when)
            return
        self._scopes[scope] = when
        if when < self._timer_at:
            self._arm(when)

    def forget(self, scope: asyncio.Timeout) -> None:
        """Stop watching ``scope`` (its handler is done, or it was expired)."""
        self._scopes.pop(scope, None)

    def close(self) -> None:
        """Stop the timer and watch nothing more."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = math.inf
        self._scopes.clear()

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._expire)

    def _expire(self) -> None:
        # What the timer was armed for is due even if the loop's clock reads a
        # little earlier (libuv counts whole milliseconds), as with a timer per scope.
        due = max(self._loop.time(), self._timer_at)
        self._timer = None
        self._timer_at = math.inf
        expired = [(scope, when) for scope, when in self._scopes.items() if when <= due]
        for scope, when in expired:
            del self._scopes[scope]
            scope.reschedule(when)
        if self._scopes:
            self._arm(min(self._scopes.values()))
