"""What security costs hello-world: TLS and operator-mode NATS against plain NATS, in one run.

Two embedded platforms serve ``examples/hello-world`` side by side
(:mod:`bench.embedded`):

* ``off``: ``KUBEFOX_PLATFORM_SECURITY=false`` (plain NATS, no credentials);
* ``on``: the default: nats-server with TLS from the platform CA and in
  operator mode, every role and component instance with its own user and
  permissions.

Both have telemetry at its default (unsampled). The two take turns, so
drifting load on a shared machine hits each alike. The cost is
``1 - rps(on) / rps(off)`` at 50 connections.
"""

from __future__ import annotations

import sys
from typing import Any

from bench.e2e import _check, _cpu_per_request
from bench.load import LoadResult, generator, measure, warm_up
from bench.options import duration
from bench.processes import Child, cpu_seconds
from bench.variants import start_platform, throughput_cost

CONNECTIONS = 50
SYSTEMS: dict[str, dict[str, str]] = {
    "off": {"KUBEFOX_PLATFORM_SECURITY": "false"},
    "on": {"KUBEFOX_PLATFORM_SECURITY": "true"},
}


def run_security() -> dict[str, Any]:
    """Throughput and latency of hello-world at 50 connections with security off and on."""
    children: list[Child] = []
    urls: dict[str, str] = {}
    pids: dict[str, dict[str, int]] = {}
    results: dict[str, LoadResult] = {}
    cpu: dict[str, dict[str, float]] = {}
    try:
        for name, env in SYSTEMS.items():
            ready, child = start_platform(name, env)
            children.append(child)
            urls[name] = next(url for url in ready["urls"] if "/qa/hello?kf-dep=" in url)
            pids[name] = ready["pids"]
        for name, url in urls.items():
            _check(url, name)
        for name, url in urls.items():
            print(f"security: {name}, {CONNECTIONS} connections", file=sys.stderr)
            warm_up(url, CONNECTIONS)
            before = {role: cpu_seconds(pid) for role, pid in pids[name].items()}
            results[name] = measure(url, CONNECTIONS)
            cpu[name] = _cpu_per_request(before, pids[name], results[name])
    finally:
        for child in reversed(children):
            child.stop()
    return {
        "load_generator": generator(),
        "seconds_per_phase": duration(),
        "request": "GET /qa/hello?kf-dep=hello-world-main&kf-ve=qa",
        f"c{CONNECTIONS}": {
            **{name: {**result.report(), "cpu_us": cpu[name]} for name, result in results.items()},
            "cost_on_vs_off": throughput_cost(results["on"], results["off"]),
        },
    }
