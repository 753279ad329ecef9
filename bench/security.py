"""What security costs hello-world: TLS and operator-mode NATS against plain NATS, in one run.

Two embedded platforms serve ``examples/hello-world`` side by side
(:mod:`bench.embedded`):

* ``off``: ``KUBEFOX_PLATFORM_SECURITY=false`` (plain NATS, no credentials);
* ``on``: the default: nats-server with TLS from the platform CA and in
  operator mode, every role and component instance with its own user and
  permissions.

Both have telemetry at its default (unsampled). The two take turns six
times (each phase a sixth of the duration, each round led by the other
one), so drifting load on a shared machine hits each alike. The cost is
``1 - rps(on) / rps(off)`` at 50 connections over all rounds (each round's
own is reported too).
"""

from __future__ import annotations

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

CONNECTIONS = 50
#: The two take turns six times, each phase a sixth of the duration (see measure_in_turns).
ROUNDS = 6
SYSTEMS: dict[str, dict[str, str]] = {
    "off": {"KUBEFOX_PLATFORM_SECURITY": "false"},
    "on": {"KUBEFOX_PLATFORM_SECURITY": "true"},
}


def run_security() -> dict[str, Any]:
    """Throughput and latency of hello-world at 50 connections with security off and on."""
    children: list[Child] = []
    try:
        urls, pids = start_platforms(SYSTEMS, children)
        phases, cpu, rounds = measure_in_turns(
            "security", urls, pids, (CONNECTIONS,), rounds=ROUNDS
        )
    finally:
        for child in reversed(children):
            child.stop()
    results, cpu_us = phases[CONNECTIONS], cpu[CONNECTIONS]
    return {
        "load_generator": generator(),
        "seconds_per_phase": duration(),
        "rounds": ROUNDS,
        "request": PLATFORM_REQUEST,
        f"c{CONNECTIONS}": {
            **{
                name: {**result.report(), "cpu_us": cpu_us[name]}
                for name, result in results.items()
            },
            "cost_on_vs_off": throughput_cost(results["on"], results["off"]),
            "cost_on_vs_off_per_round": round_costs(
                rounds[CONNECTIONS]["on"], rounds[CONNECTIONS]["off"]
            ),
        },
    }
