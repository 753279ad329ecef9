"""Systems serving hello-world, measured side by side in turns, and what one costs.

The ``e2e``, ``tracing`` and ``security`` scenarios start several systems (the
platform with different ``KUBEFOX_PLATFORM_*`` variables, the native pairs),
check each answers hello-world, then load them in turns per concurrency, so
drifting load on a shared machine hits each alike, and report the CPU every
process of a system used per request: during its own phases (by process),
and over the whole run (``total_whole_run``: from after the warm-ups to a
moment after the last phase, so work a system does between its phases, a
batch of spans exported while another system is measured, counts too).
"""

from __future__ import annotations

import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from bench.load import LoadResult, combined, run_load, warm_up
from bench.options import duration
from bench.processes import ROOT, Child, cpu_seconds, python_module

EXPECTED = "👋 Hello World!"
APP = ROOT / "examples" / "hello-world"
#: The request every platform variant is loaded with.
PLATFORM_REQUEST = "GET /qa/hello?kf-dep=hello-world-main&kf-ve=qa"

#: Seconds waited after the last phase before the whole run's CPU is read: longer than
#: a telemetry role's export delay under load (2 s), so what it still exports counts.
SETTLE_SECONDS = 2.5

#: Result name -> phases per concurrency, and each phase's CPU per request by process.
Phases = dict[int, dict[str, LoadResult]]
Cpu = dict[int, dict[str, dict[str, float]]]
#: Each round's result per concurrency and system (one round unless asked for more).
Rounds = dict[int, dict[str, list[LoadResult]]]


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
    *,
    rounds: int = 1,
    seconds: float | None = None,
) -> tuple[Phases, Cpu, Rounds]:
    """Check every system answers, then load each in turn at every concurrency.

    With ``rounds`` > 1 the systems take turns that many times, each phase
    lasting ``seconds`` (:func:`~bench.options.duration` / ``rounds`` unless given) and each round
    starting with the next system: a drift of the machine's speed (other
    work on it, or what the previous system left running) then falls on
    every system alike instead of on whichever one ran during it. Each
    system's result combines its phases (:func:`~bench.load.combined`); the
    rounds' own results are returned too.
    """
    for name, url in urls.items():
        _check(url, name)
    phases: Phases = {}
    cpu: Cpu = {}
    per_round: Rounds = {}
    if seconds is None:
        seconds = duration() / rounds
    for connections in concurrency:
        parts: dict[str, list[LoadResult]] = {name: [] for name in urls}
        used: dict[str, dict[str, float]] = {name: {} for name in urls}
        names = list(urls)
        for name in names:
            warm_up(urls[name], connections)
        started = {name: _cpu_of(pids[name]) for name in names}
        for round_ in range(rounds):
            # Each round starts with the next system: what one leaves running when its
            # phase ends (a store's writes, say) then slows each system alike.
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                url = urls[name]
                turn = f" (round {round_ + 1} of {rounds})" if rounds > 1 else ""
                print(f"{scenario}: {name}, {connections} connections{turn}", file=sys.stderr)
                before = {role: cpu_seconds(pid) for role, pid in pids[name].items()}
                parts[name].append(run_load(url, connections, seconds))
                for role, pid in pids[name].items():
                    used[name][role] = used[name].get(role, 0.0) + cpu_seconds(pid) - before[role]
        time.sleep(SETTLE_SECONDS)
        phases[connections] = {name: combined(results) for name, results in parts.items()}
        per_round[connections] = parts
        cpu[connections] = {
            name: {
                **_cpu_per_request(used[name], phases[connections][name]),
                "total_whole_run": round(
                    (_cpu_of(pids[name]) - started[name])
                    * 1e6
                    / max(1, phases[connections][name].requests),
                    1,
                ),
            }
            for name in urls
        }
    return phases, cpu, per_round


def throughput_cost(variant: LoadResult, base: LoadResult) -> float:
    """The share of ``base``'s throughput ``variant`` loses (``nan`` if ``base`` did nothing)."""
    return round(1 - variant.rps / base.rps, 3) if base.rps else float("nan")


def round_costs(rounds: Sequence[LoadResult], bases: Sequence[LoadResult]) -> list[float]:
    """:func:`throughput_cost` of each round against the same round of the base."""
    return [throughput_cost(variant, base) for variant, base in zip(rounds, bases, strict=True)]


def _check(url: str, name: str) -> None:
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - our own http URL
        body = answer.read().decode()
    if body != EXPECTED:
        raise RuntimeError(f"{name} answered {body!r}, not {EXPECTED!r}")


def _cpu_of(pids: Mapping[str, int]) -> float:
    """CPU seconds the processes ``pids`` (role -> pid) have used."""
    return sum(cpu_seconds(pid) for pid in pids.values())


def _cpu_per_request(used: dict[str, float], result: LoadResult) -> dict[str, float]:
    """Microseconds of CPU each process used per answered request; ``total`` sums them."""
    per_request = {role: round(s * 1e6 / max(1, result.requests), 1) for role, s in used.items()}
    per_request["total"] = round(sum(per_request.values()), 1)
    return per_request
