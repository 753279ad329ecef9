"""HTTP load: wrk when it is installed, else a Python load generator in its own process.

Both keep ``connections`` keep-alive connections busy with ``GET url`` for a
warm-up (thrown away) and then for the measured duration, and report the
same figures: requests per second, p50/p90/p99 latency in milliseconds, and
the count of failed requests (socket errors and non-2xx answers). wrk is the
reference (DESIGN.md's figures were taken with it); it runs one thread, as in
``../shared/reference/dependencies.md`` §3, so it takes one core at most.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import statistics
import subprocess
from typing import Any

from bench.options import duration, warmup
from bench.processes import Child, python_module

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
_PERCENTILE = re.compile(r"^\s+(50|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$", re.MULTILINE)
_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_TOTAL = re.compile(r"^\s+(\d+) requests in", re.MULTILINE)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LoadResult:
    """One measured load phase."""

    connections: int
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: int

    def report(self) -> dict[str, Any]:
        return {
            "rps": round(self.rps, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p90_ms": round(self.p90_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "requests": self.requests,
            "errors": self.errors,
        }


def combined(phases: list[LoadResult]) -> LoadResult:
    """One result of several phases of the same load: their totals, and their median percentiles.

    Throughput is all requests over all seconds. Latency percentiles cannot be
    merged exactly from the phases' own, so each is the median of the phases'.
    """
    if not phases:
        raise ValueError("no phase to combine")
    seconds = sum(phase.seconds for phase in phases)
    requests = sum(phase.requests for phase in phases)
    return LoadResult(
        connections=phases[0].connections,
        seconds=seconds,
        requests=requests,
        rps=sum(phase.rps * phase.seconds for phase in phases) / seconds,
        p50_ms=statistics.median(phase.p50_ms for phase in phases),
        p90_ms=statistics.median(phase.p90_ms for phase in phases),
        p99_ms=statistics.median(phase.p99_ms for phase in phases),
        errors=sum(phase.errors for phase in phases),
    )


def generator() -> str:
    """``wrk`` if it is on PATH, else ``python``."""
    return "wrk" if shutil.which("wrk") else "python"


def run_load(url: str, connections: int, seconds: float) -> LoadResult:
    """Load ``GET url`` with ``connections`` connections for ``seconds``."""
    if generator() == "wrk":
        return _parse_wrk(_wrk(url, connections, seconds), connections, seconds)
    return _python(url, connections, seconds)


def warm_up(url: str, connections: int) -> None:
    """Load ``url`` for :func:`warmup` seconds and forget the figures."""
    run_load(url, connections, warmup())


def measure(url: str, connections: int) -> LoadResult:
    """Load ``url`` for :func:`duration` seconds."""
    return run_load(url, connections, duration())


def _wrk(url: str, connections: int, seconds: float) -> str:
    wrk = shutil.which("wrk") or "wrk"
    args = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", url]
    done = subprocess.run(args, capture_output=True, text=True, check=True, timeout=seconds + 30)
    return done.stdout


def _parse_wrk(text: str, connections: int, seconds: float) -> LoadResult:
    percentiles = {int(q): float(v) * _UNITS[unit] for q, v, unit in _PERCENTILE.findall(text)}
    rate, total = _RATE.search(text), _TOTAL.search(text)
    if rate is None or total is None or len(percentiles) != 3:
        raise RuntimeError(f"cannot read wrk's output:\n{text}")
    non_2xx = _NON_2XX.search(text)
    sockets = _SOCKET.search(text)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    errors += sum(int(n) for n in sockets.groups()) if sockets else 0
    return LoadResult(
        connections=connections,
        seconds=seconds,
        requests=int(total.group(1)),
        rps=float(rate.group(1)),
        p50_ms=percentiles[50],
        p90_ms=percentiles[90],
        p99_ms=percentiles[99],
        errors=errors,
    )


def _python(url: str, connections: int, seconds: float) -> LoadResult:
    args = [url, str(connections), "0", str(seconds)]
    with Child("pyload", python_module("bench.pyload", *args)) as child:
        data = child.read_json(timeout=seconds + 60)
    return LoadResult(connections=connections, seconds=seconds, **data)
