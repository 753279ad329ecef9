"""Platform variants side by side: one embedded platform per setting, and what one costs.

The ``tracing`` and ``security`` scenarios each start the hello-world platform
several times with different ``KUBEFOX_PLATFORM_*`` variables and compare
their throughput in one run.
"""

from __future__ import annotations

from typing import Any

from bench.e2e import APP
from bench.load import LoadResult
from bench.processes import Child, python_module


def start_platform(name: str, env: dict[str, str]) -> tuple[dict[str, Any], Child]:
    """An embedded platform serving hello-world with ``env`` set; what it reported, and it."""
    child = Child(f"platform-{name}", python_module("bench.embedded", str(APP)), env=env)
    try:
        ready: dict[str, Any] = child.read_json(timeout=120)
    except BaseException:
        child.stop()
        raise
    return ready, child


def throughput_cost(variant: LoadResult, base: LoadResult) -> float:
    """The share of ``base``'s throughput ``variant`` loses (``nan`` if ``base`` did nothing)."""
    return round(1 - variant.rps / base.rps, 3) if base.rps else float("nan")
