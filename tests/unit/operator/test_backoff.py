"""The restart backoff schedule."""

from __future__ import annotations

import pytest

from kubefox.operator import Backoff


def test_delays_double_up_to_the_maximum() -> None:
    """Quick exits in a row wait initial, 2x, 4x ... and then the maximum, forever."""
    backoff = Backoff(initial=0.5, maximum=4.0, reset_after=10.0)

    delays = [backoff.next_delay(ran_for=0.1) for _ in range(7)]

    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    assert backoff.failures == 7


def test_a_long_run_starts_the_schedule_over() -> None:
    """A process that ran for reset_after seconds restarts after the initial delay again."""
    backoff = Backoff(initial=0.5, maximum=30.0, reset_after=10.0)
    for _ in range(4):
        backoff.next_delay(ran_for=1.0)

    delay = backoff.next_delay(ran_for=10.0)

    assert delay == 0.5
    assert backoff.failures == 1


def test_many_failures_do_not_overflow() -> None:
    """Thousands of crashes keep the delay at the maximum."""
    backoff = Backoff(initial=0.01, maximum=30.0, reset_after=10.0)

    delays = [backoff.next_delay(ran_for=0.0) for _ in range(5000)]

    assert delays[-1] == 30.0


@pytest.mark.parametrize(("initial", "maximum"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0)])
def test_nonsense_parameters_are_refused(initial: float, maximum: float) -> None:
    """The initial delay is positive and at most the maximum."""
    with pytest.raises(ValueError, match="initial"):
        Backoff(initial=initial, maximum=maximum, reset_after=1.0)
