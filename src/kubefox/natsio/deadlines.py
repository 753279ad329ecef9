"""One loop timer for many deadlines: armed for the earliest, handing back the due ones.

Nearly every request is answered, and nearly every handler done, long before
its deadline, yet a loop timer per deadline is made, armed, cancelled and
freed each time (on uvloop a libuv timer: that cost more than the rest of the
wait). natsio's requests and the Kit's handlers watch their deadlines here
instead.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class DeadlineTimer(Generic[K]):
    """Calls ``due(key, when)`` once for each watched key whose deadline ``when`` has come."""

    __slots__ = ("_due", "_loop", "_timer", "_timer_at", "_watched")

    def __init__(self, loop: asyncio.AbstractEventLoop, due: Callable[[K, float], None]) -> None:
        self._loop = loop
        self._due = due
        self._watched: dict[K, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def __len__(self) -> int:
        return len(self._watched)

    def watch(self, key: K, when: float) -> None:
        """Call ``due`` for ``key`` at ``when`` (loop time) unless :meth:`forget` comes first."""
        self._watched[key] = when
        if when < self._timer_at:
            self._arm(when)

    def forget(self, key: K) -> None:
        """Stop watching ``key`` (done in time, or already due)."""
        self._watched.pop(key, None)

    def close(self) -> None:
        """Stop the timer and watch nothing more."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = math.inf
        self._watched.clear()

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._expire)

    def _expire(self) -> None:
        # What the timer was armed for is due even if the loop's clock reads a
        # little earlier (libuv counts whole milliseconds), as with a timer per key.
        due = max(self._loop.time(), self._timer_at)
        self._timer = None
        self._timer_at = math.inf
        expired = [(key, when) for key, when in self._watched.items() if when <= due]
        for key, when in expired:
            del self._watched[key]
            self._due(key, when)
        if self._watched:
            self._arm(min(self._watched.values()))
