"""Run-wide options of ``python -m bench``: how long each load phase lasts.

The issue asks for 10 s per load phase; ``--duration S`` on the command line
or ``BENCH_DURATION`` in the environment shortens (or lengthens) every phase
for a quick run. The scenarios that count samples instead of seconds (hop)
scale their counts with it. Read at call time, so ``--duration`` can set it.
"""

from __future__ import annotations

import os

DURATION_ENV = "BENCH_DURATION"
DEFAULT_DURATION = 10.0


def duration() -> float:
    """Seconds of each measured load phase (default 10)."""
    raw = os.environ.get(DURATION_ENV, "")
    return float(raw) if raw else DEFAULT_DURATION


def warmup() -> float:
    """Seconds of load thrown away before each measured phase: 2 s, less for short runs."""
    return min(2.0, max(0.5, duration() / 5))


def take_options(argv: list[str]) -> list[str]:
    """Apply ``--duration S`` (or ``--duration=S``) from ``argv``; the remaining arguments."""
    rest: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--duration":
            value = next(args, "")
        elif arg.startswith("--duration="):
            value = arg.partition("=")[2]
        else:
            rest.append(arg)
            continue
        if float(value) <= 0:
            raise ValueError(f"--duration must be positive, not {value!r}")
        os.environ[DURATION_ENV] = value
    return rest
