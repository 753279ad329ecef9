"""What telemetry costs hello-world: tracing at 100 % against tracing off, in one run.

Three embedded platforms serve ``examples/hello-world`` side by side
(:mod:`bench.embedded`, configured through ``KUBEFOX_PLATFORM_TELEMETRY*``):

* ``off``: telemetry off (no store, no receiver, no spans, no metrics);
* ``unsampled``: telemetry on, sampling ratio 0: metrics and log lines are
  recorded, no request is traced (a request's cost when it is not sampled);
* ``sampled``: every request traced (ratio 1): five spans per request
  (httpsrv, frontend handler, its call, broker, backend), exported over
  OTLP/HTTP to the platform's receiver and stored in SQLite.

For each concurrency the three take turns twelve times (each phase a sixth
of the duration, so each system is measured for twice the duration; each
round led by the next one), so drifting load on a shared machine hits each
alike. On our two-core machines one round's cost ranges over tens of
percent while twelve rounds' agree within a few. The cost is
``1 - rps(sampled) / rps(off)`` over all rounds (each round's own is
reported too, and their median); the issue's target is under 15 % at 100 %
sampling. A sampled system exports its spans every two seconds under load,
partly while the others are measured, which slows them too and so makes
this cost look lower than it is; ``cost_sampled_vs_off_by_whole_run_cpu``
is the check: the cost the CPU each system used over the whole run (between
its phases too) would make on these CPU-bound machines.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.load import generator
from bench.options import duration
from bench.processes import Child
from bench.variants import (
    PLATFORM_REQUEST,
    measure_in_turns,
    round_costs,
    start_platforms,
    throughput_cost,
)

CONCURRENCY = (1, 50)
SYSTEMS: dict[str, dict[str, str]] = {
    "off": {"KUBEFOX_PLATFORM_TELEMETRY": "false"},
    "unsampled": {"KUBEFOX_PLATFORM_TELEMETRY_SAMPLING_RATIO": "0"},
    "sampled": {"KUBEFOX_PLATFORM_TELEMETRY_SAMPLING_RATIO": "1"},
}
TARGET_COST = 0.15
#: The three take turns twelve times, each phase a sixth of the duration (see measure_in_turns).
ROUNDS = 12
PHASES_PER_DURATION = 6


def run_tracing() -> dict[str, Any]:
    """Throughput and latency of hello-world with telemetry off, unsampled and sampled."""
    children: list[Child] = []
    try:
        urls, pids = start_platforms(SYSTEMS, children)
        phases, cpu, rounds = measure_in_turns(
            "tracing",
            urls,
            pids,
            CONCURRENCY,
            rounds=ROUNDS,
            seconds=duration() / PHASES_PER_DURATION,
        )
    finally:
        for child in reversed(children):
            child.stop()
    report: dict[str, Any] = {
        "load_generator": generator(),
        "seconds_per_phase": duration() / PHASES_PER_DURATION,
        "rounds": ROUNDS,
        "request": PLATFORM_REQUEST,
    }
    for connections, results in phases.items():
        report[f"c{connections}"] = {
            **{
                name: {**result.report(), "cpu_us": cpu[connections][name]}
                for name, result in results.items()
            },
            "cost_sampled_vs_off": throughput_cost(results["sampled"], results["off"]),
            "cost_unsampled_vs_off": throughput_cost(results["unsampled"], results["off"]),
            "cost_sampled_vs_off_per_round": (
                per_round := round_costs(rounds[connections]["sampled"], rounds[connections]["off"])
            ),
            "cost_sampled_vs_off_median_round": statistics.median(per_round),
            # Throughput follows CPU on these two saturated cores: what the extra CPU
            # of the whole run (exports between phases too) would cost.
            "cost_sampled_vs_off_by_whole_run_cpu": round(
                1
                - cpu[connections]["off"]["total_whole_run"]
                / cpu[connections]["sampled"]["total_whole_run"],
                3,
            ),
        }
    top = report[f"c{CONCURRENCY[-1]}"]
    report["targets"] = {"sampled_cost_under_15_percent": top["cost_sampled_vs_off"] < TARGET_COST}
    return report
