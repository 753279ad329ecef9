"""Systems serving hello-world, measured side by side in turns, and what one costs.

The ``e2e``, ``tracing`` and ``security`` scenarios start several systems (the
platform with different ``KUBEFOX_PLATFORM_*`` variables, the native pairs),
check each answers hello-world, then load them in turns per concurrency, so
drifting load on a shared machine hits each alike, and report the CPU every
process of a system used per request.
"""

from __future__ import annotations

import sys
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from bench.load import LoadResult, measure, warm_up
from bench.processes import ROOT, Child, cpu_seconds, python_module

EXPECTED = "👋 Hello World!"
APP = ROOT / "examples" / "hello-world"
#: The request every platform variant is loaded with.
PLATFORM_REQUEST = "GET /qa/hello?kf-dep=hello-world-main&kf-ve=qa"

#: Result name -> phases per concurrency, and each phase's CPU per request by process.
Phases = dict[int, dict[str, LoadResult]]
Cpu = dict[int, dict[str, dict[str, float]]]


def start_platform(
    app: str = str(APP), *, name: str = "platform", env: dict[str, str] | None = None
) -> tuple[dict[str, Any], Child]:
    """An embedded platform serving ``app`` with ``env`` set; what it reported when ready."""
    child = Child(name, python_module("bench.embedded", app), env=env)
    try:
        ready: dict[str, Any] = child.read_json(timeout=120)
    except BaseException:
        child.stop()
        raise
    return ready, child


def platform_url(ready: Mapping[str, Any]) -> str:
    """The URL of :data:`PLATFORM_REQUEST` on a platform that reported ``ready``."""
    urls: list[str] = ready["urls"]
    return next(url for url in urls if "/qa/hello?kf-dep=" in url)


def start_platforms(
    systems: Mapping[str, dict[str, str]], children: list[Child]
) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """One platform per entry of ``systems`` (name -> env), appended to ``children``.

    Returns each one's request URL and the process ids of its parts.
    """
    urls: dict[str, str] = {}
    pids: dict[str, dict[str, int]] = {}
    for name, env in systems.items():
        ready, child = start_platform(name=f"platform-{name}", env=env)
        children.append(child)
        urls[name] = platform_url(ready)
        pids[name] = ready["pids"]
    return urls, pids


def measure_in_turns(
    scenario: str,
    urls: Mapping[str, str],
    pids: Mapping[str, dict[str, int]],
    concurrency: Sequence[int],
) -> tuple[Phases, Cpu]:
    """Check every system answers, then load each in turn at every concurrency."""
    for name, url in urls.items():
        _check(url, name)
    phases: Phases = {}
    cpu: Cpu = {}
    for connections in concurrency:
        for name, url in urls.items():
            print(f"{scenario}: {name}, {connections} connections", file=sys.stderr)
            warm_up(url, connections)
            before = {role: cpu_seconds(pid) for role, pid in pids[name].items()}
            result = measure(url, connections)
            phases.setdefault(connections, {})[name] = result
            cpu.setdefault(connections, {})[name] = _cpu_per_request(before, pids[name], result)
    return phases, cpu


def throughput_cost(variant: LoadResult, base: LoadResult) -> float:
    """The share of ``base``'s throughput ``variant`` loses (``nan`` if ``base`` did nothing)."""
    return round(1 - variant.rps / base.rps, 3) if base.rps else float("nan")


def _check(url: str, name: str) -> None:
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - our own http URL
        body = answer.read().decode()
    if body != EXPECTED:
        raise RuntimeError(f"{name} answered {body!r}, not {EXPECTED!r}")


def _cpu_per_request(
    before: dict[str, float], pids: dict[str, int], result: LoadResult
) -> dict[str, float]:
    """Microseconds of CPU each process used per answered request; ``total`` sums them."""
    used = {role: cpu_seconds(pid) - before[role] for role, pid in pids.items()}
    per_request = {role: round(s * 1e6 / max(1, result.requests), 1) for role, s in used.items()}
    per_request["total"] = round(sum(per_request.values()), 1)
    return per_request
