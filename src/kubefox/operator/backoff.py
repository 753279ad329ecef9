"""Restart backoff: how long a supervisor waits before starting a crashed process again.

Exponential (doubling) from an initial delay up to a cap, and back to the
initial delay once a process has stayed up long enough to count as healthy,
so one crash after days of service restarts at once while a crash loop
settles at one attempt per ``maximum`` seconds. Kept apart from the
supervisor so that the schedule is testable without processes or clocks.
"""

from __future__ import annotations


class Backoff:
    """The delays before consecutive restarts: ``initial``, ``2*initial``, ... up to ``maximum``.

    Call :meth:`next_delay` after each exit, passing how long the process ran;
    a run of at least ``reset_after`` seconds starts the schedule over.
    :attr:`failures` counts the quick exits in a row.
    """

    def __init__(self, *, initial: float, maximum: float, reset_after: float) -> None:
        if initial <= 0 or maximum < initial:
            raise ValueError("need 0 < initial <= maximum")
        self.initial = initial
        self.maximum = maximum
        self.reset_after = reset_after
        self.failures = 0

    def next_delay(self, ran_for: float) -> float:
        """The wait before the next start, for a process that exited after ``ran_for`` s."""
        if ran_for >= self.reset_after:
            self.failures = 0
        delay = min(self.initial * 2.0 ** min(self.failures, 64), self.maximum)
        self.failures += 1
        return delay
