"""Handler deadlines: each handler's task cancelled at its deadline, from one shared loop timer.

``asyncio.timeout_at`` arms a loop timer for each scope and, entering, looks
up the current task (on Python 3.11 a ``getpid`` system call each time):
about a fifth of a component's own work per event. The Kit knows the task
that runs each handler, so :class:`Deadlines` does what an asyncio
``Timeout`` does for it, the same way: at the deadline it cancels the task
and notes that it did; when the handler is done, :meth:`Deadlines.forget`
withdraws that cancel (``Task.uncancel``) and says whether it happened, so
the server turns the handler's ``CancelledError`` into a deadline error only
when the cancel was the deadline's and nobody else's (asyncio's own rule: no
other cancel outstanding). A handler's own ``asyncio.timeout`` scopes nest
inside as usual.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kubefox.natsio.deadlines import DeadlineTimer

Task = asyncio.Task[Any]


class Deadlines:
    """Cancels watched tasks at their deadlines, from one timer."""

    __slots__ = ("_expired", "_timer")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer: DeadlineTimer[Task] = DeadlineTimer(loop, self._expire)
        self._expired: set[Task] = set()

    def __len__(self) -> int:
        return len(self._timer)

    def watch(self, task: Task, when: float) -> None:
        """Cancel ``task`` at ``when`` (loop time) unless :meth:`forget` comes first.

        A deadline already past cancels it at the loop's next turn, as
        ``timeout_at`` does. Call :meth:`forget` once what is watched is done.
        """
        self._timer.watch(task, when)

    def forget(self, task: Task) -> bool:
        """Stop watching ``task``; whether its deadline cancelled it (that cancel is withdrawn)."""
        self._timer.forget(task)
        if task not in self._expired:
            return False
        self._expired.discard(task)
        task.uncancel()
        return True

    def close(self) -> None:
        """Stop the timer and watch nothing more."""
        self._timer.close()
        self._expired.clear()

    def _expire(self, task: Task, when: float) -> None:
        if task.done():  # pragma: no cover - a task is forgotten before it can end
            return
        self._expired.add(task)
        task.cancel()
