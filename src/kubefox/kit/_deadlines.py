"""Handler deadlines from one shared loop timer instead of one per event.

``asyncio.timeout_at`` arms a loop timer for each scope. The Kit runs each
handler in an ``asyncio.timeout_at(None)`` scope instead, which asyncio still
owns (the cancel, the uncancel, the ``CancelledError`` turned into
``TimeoutError``, ``expired()``), and :class:`Deadlines` reschedules a scope
to its deadline when that comes, from one
:class:`~kubefox.natsio.deadlines.DeadlineTimer`, so asyncio expires each
one just as its own timer would have.
"""

from __future__ import annotations

import asyncio

from kubefox.natsio.deadlines import DeadlineTimer


def _expire(scope: asyncio.Timeout, when: float) -> None:
    scope.reschedule(when)


class Deadlines:
    """Expires watched ``asyncio.Timeout`` scopes at their deadlines, from one timer."""

    __slots__ = ("_loop", "_timer")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._timer: DeadlineTimer[asyncio.Timeout] = DeadlineTimer(loop, _expire)

    def __len__(self) -> int:
        return len(self._timer)

    def watch(self, scope: asyncio.Timeout, when: float) -> None:
        """Expire ``scope``, entered with no deadline, at ``when`` (loop time).

        Call :meth:`forget` before the scope exits. A deadline already past
        expires the scope at the loop's next turn, as ``timeout_at`` does.
        """
        if when <= self._loop.time():
            scope.reschedule(when)
            return
        self._timer.watch(scope, when)

    def forget(self, scope: asyncio.Timeout) -> None:
        """Stop watching ``scope`` (its handler is done, or it was expired)."""
        self._timer.forget(scope)

    def close(self) -> None:
        """Stop the timer and watch nothing more."""
        self._timer.close()
