"""Route-matching latency as the number of released deployments grows.

Each deployment contributes five routes with its own host and path prefix,
resolved from templates as a release would resolve them. For every size we
time :meth:`RouteMatcher.match` call by call (20,000 calls per case, after a
warm-up) on genesis events that match a random deployment's route and on
events that match nothing.
``build_ms`` is compiling the resolved rules and indexing them. The targets:
p50 under 20 µs at 10,000 deployments, and no worse than twice the p50 at
1,000 (matching must not be a scan over all routes).
"""

from __future__ import annotations

import gc
import random
import statistics
import sys
import time
from typing import Any

from kubefox.core.events import TYPE_HTTP, Event
from kubefox.core.matcher import RouteMatcher, compile_route
from kubefox.core.routes import resolve

SIZES = (10, 1000, 10000)
ITERATIONS = 20_000
WARM_UP = 500
EVENTS = 1_000
SEED = 20240611

# One deployment's routes, as a component would declare them.
RULES = (
    "Host(`{{.Vars.host}}`) && Path(`/{{.Vars.sub}}/hello`)",
    "PathPrefix(`/{{.Vars.sub}}/static`)",
    "Method(`GET`) && Path(`/{{.Vars.sub}}/items/{id}`)",
    "Header(`X-Tenant`, `{{.Vars.tenant}}`) && Path(`/{{.Vars.sub}}/tenant`)",
    "Query(`v`, `{[0-9]+}`) && PathPrefix(`/{{.Vars.sub}}/search`)",
)


def _data(i: int) -> dict[str, Any]:
    return {"host": f"app{i}.example.com", "sub": f"d{i}", "tenant": f"t{i}"}


def _resolved(count: int) -> list[tuple[str, tuple[int, int]]]:
    return [(resolve(rule, _data(i)), (i, j)) for i in range(count) for j, rule in enumerate(RULES)]


def _build(resolved: list[tuple[str, tuple[int, int]]]) -> RouteMatcher[tuple[int, int]]:
    return RouteMatcher(
        compile_route(rule, target=target, id=target[1]) for rule, target in resolved
    )


def _event(
    path: str,
    host: str,
    *,
    method: str = "GET",
    header: dict[str, list[str]] | None = None,
    query: dict[str, list[str]] | None = None,
) -> Event:
    return Event(
        type=TYPE_HTTP,
        values={
            "method": method,
            "path": path,
            "host": host,
            "header": header or {"Accept": ["*/*"]},
            "queryParam": query or {},
        },
    )


def _hit(i: int, kind: int) -> Event:
    host = f"app{i}.example.com:8080"
    if kind == 0:
        return _event(f"/d{i}/hello", host)
    if kind == 1:
        return _event(f"/d{i}/static/css/site.css", host)
    if kind == 2:
        return _event(f"/d{i}/items/42", host)
    if kind == 3:
        return _event(f"/d{i}/tenant", host, header={"X-Tenant": [f"t{i}"]})
    return _event(f"/d{i}/search/all", host, query={"v": ["7"]})


def _miss(i: int, kind: int) -> Event:
    host = f"app{i}.example.com:8080"
    if kind == 0:
        return _event(f"/d{i}/nothing/here", host)  # a deployment's prefix, no route
    if kind == 1:
        return _event(f"/d{i}/items/42", host, method="DELETE")
    if kind == 2:
        return _event(f"/d{i}/tenant", host, header={"X-Tenant": ["someone-else"]})
    return _event("/unknown/path", "elsewhere.example.org")


def _time(matcher: RouteMatcher[Any], events: list[Event], *, expect_hit: bool) -> list[int]:
    """Nanoseconds per ``match`` call, one sample per event."""
    match = matcher.match
    clock = time.perf_counter_ns
    samples: list[int] = []
    for event in events:
        start = clock()
        found = match(event)
        samples.append(clock() - start)
        if (found is not None) != expect_hit:
            raise AssertionError(f"unexpected result for {event.values}")
    return samples


def _percentile(samples: list[int], q: int) -> float:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return round(cuts[q - 1] / 1000, 3)


class _Case:
    """One deployment count: its matcher, its events and the samples taken so far."""

    def __init__(self, count: int, rng: random.Random) -> None:
        resolved = _resolved(count)
        start = time.perf_counter_ns()
        self.matcher = _build(resolved)
        self.build_ms = (time.perf_counter_ns() - start) / 1e6
        self.hits = [_hit(rng.randrange(count), rng.randrange(5)) for _ in range(EVENTS)]
        self.misses = [_miss(rng.randrange(count), rng.randrange(4)) for _ in range(EVENTS)]
        self.hit_samples: list[int] = []
        self.miss_samples: list[int] = []
        _time(self.matcher, self.hits[:WARM_UP], expect_hit=True)
        _time(self.matcher, self.misses[:WARM_UP], expect_hit=False)

    def round(self) -> None:
        self.hit_samples += _time(self.matcher, self.hits, expect_hit=True)
        self.miss_samples += _time(self.matcher, self.misses, expect_hit=False)

    def report(self) -> dict[str, float]:
        return {
            "match_p50_us": _percentile(self.hit_samples, 50),
            "match_p99_us": _percentile(self.hit_samples, 99),
            "miss_p50_us": _percentile(self.miss_samples, 50),
            "miss_p99_us": _percentile(self.miss_samples, 99),
            "build_ms": round(self.build_ms, 3),
        }


def run_router() -> dict[str, Any]:
    """Match and miss latency (µs) and build time (ms) at each deployment count."""
    rng = random.Random(SEED)
    cases: dict[str, _Case] = {}
    for count in SIZES:
        print(f"router: building {count} deployments", file=sys.stderr)
        cases[str(count)] = _Case(count, rng)
    # Sizes take turns, round by round, so a burst of load from elsewhere on
    # the machine lands on all of them alike instead of skewing one size.
    # The collector is off while timing, as in timeit: a full collection over
    # the heap of routes would be charged to whichever call it interrupts.
    gc.collect()
    gc.disable()
    try:
        for _ in range(ITERATIONS // EVENTS):
            for case in cases.values():
                case.round()
    finally:
        gc.enable()
    report: dict[str, Any] = {name: case.report() for name, case in cases.items()}
    p50_1000 = report["1000"]["match_p50_us"]
    p50_10000 = report["10000"]["match_p50_us"]
    ratio = round(p50_10000 / p50_1000, 3)
    report["targets"] = {
        "p50_at_10000_under_20us": p50_10000 < 20,
        "p50_10000_vs_1000_ratio": ratio,
        "ratio_under_2x": ratio < 2,
    }
    return report
