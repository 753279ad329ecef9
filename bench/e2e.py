"""The hello-world request end to end: the platform against the same app written natively.

Platform: ``examples/hello-world`` published on an embedded platform
(:mod:`bench.embedded`), ``GET /qa/hello?kf-dep=hello-world-main&kf-ve=qa``:
HTTP → httpsrv → frontend → broker → backend → replies straight back.
Native: the same two services as Starlette apps on the same server
(:mod:`bench.native`), ``GET /qa/hello``: HTTP → frontend → pooled HTTP → backend,
once with httpx as the client (``native``, the issue's baseline) and once with
aiohttp (``native_aiohttp``): httpx costs about half a millisecond of CPU per
call on these machines and slows down under concurrency (encode/httpx#3215),
so the second baseline shows what the platform is up against with a fast client.

All run side by side; for each concurrency the phases take turns, so drifting
load on a shared machine hits each alike.
Every answer is checked once before the load starts, and failed requests
during the load are counted. Each measured phase also reports the CPU time
every process of the system under load used per request (``cpu_us``):
throughput on a shared 2-core machine is CPU per request, and this says
where it goes, even when other work on the machine skews the rates.

The targets (issue 8): at concurrency 50 the platform serves at least 1.0x
the native throughput, with a p99 no worse than 1.2x native.
"""

from __future__ import annotations

from typing import Any

from bench.load import LoadResult, generator
from bench.options import duration
from bench.processes import Child, python_module
from bench.variants import PLATFORM_REQUEST, measure_in_turns, platform_url, start_platform

CONCURRENCY = (1, 50)
#: The native baselines: result name -> the frontend role of :mod:`bench.native`.
NATIVE = {"native": "frontend", "native_aiohttp": "frontend-aiohttp"}


def start_native(frontend_role: str = "frontend") -> tuple[str, list[Child]]:
    """A native backend and frontend (in that order); the URL of the hello request."""
    backend = Child("native-backend", python_module("bench.native", "backend"))
    children = [backend]
    try:
        backend_url = backend.read_json(timeout=30)["url"]
        frontend = Child(
            f"native-{frontend_role}", python_module("bench.native", frontend_role, backend_url)
        )
        children.append(frontend)
        frontend_url = frontend.read_json(timeout=30)["url"]
    except BaseException:
        for child in children:
            child.stop()
        raise
    return f"{frontend_url}/qa/hello", children


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("nan")


def run_e2e() -> dict[str, Any]:
    """Throughput and latency of hello-world on the platform and natively, and their ratios."""
    children: list[Child] = []
    try:
        urls: dict[str, str] = {}
        pids: dict[str, dict[str, int]] = {}
        for name, role in NATIVE.items():
            urls[name], native = start_native(role)
            children += native
            pids[name] = {"backend": native[0].pid, "frontend": native[1].pid}
        ready, platform = start_platform()
        children.append(platform)
        urls["platform"] = platform_url(ready)
        pids["platform"] = ready["pids"]
        phases, cpu, _ = measure_in_turns("e2e", urls, pids, CONCURRENCY)
    finally:
        for child in reversed(children):
            child.stop()
    report: dict[str, Any] = {
        "load_generator": generator(),
        "seconds_per_phase": duration(),
        "platform_request": PLATFORM_REQUEST,
        "native_request": "GET /qa/hello",
    }
    for connections, results in phases.items():
        platform_result = results["platform"]
        entry: dict[str, Any] = {
            name: {**result.report(), "cpu_us": cpu[connections][name]}
            for name, result in results.items()
        }
        for name in NATIVE:
            # platform / native: above 1 is better for rps, worse for latency.
            entry[f"ratio_vs_{name}"] = _ratios(platform_result, results[name])
        report[f"c{connections}"] = entry
    top = report[f"c{CONCURRENCY[-1]}"]
    report["targets"] = {
        f"c{CONCURRENCY[-1]}_vs_{name}": {
            "rps_ratio_at_least_1_0": top[f"ratio_vs_{name}"]["rps"] >= 1.0,
            "p99_ratio_at_most_1_2": top[f"ratio_vs_{name}"]["p99"] <= 1.2,
        }
        for name in NATIVE
    }
    return report


def _ratios(platform: LoadResult, native: LoadResult) -> dict[str, float]:
    return {
        "rps": _ratio(platform.rps, native.rps),
        "p50": _ratio(platform.p50_ms, native.p50_ms),
        "p90": _ratio(platform.p90_ms, native.p90_ms),
        "p99": _ratio(platform.p99_ms, native.p99_ms),
    }
