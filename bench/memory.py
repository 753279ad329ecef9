"""Resident memory of every process of an idle embedded platform serving hello-world.

The embedded platform runs its roles (httpsrv, broker, operator, the router
and operator views of the store) as tasks of one process, so they are
measured together as ``platform``; nats-server and each component instance
are processes of their own. Figures are ``VmRSS`` in MiB, taken after the
deployment is available and one request has been answered, then a short
rest. Target (issue 8): an idle component instance under 60 MB.
"""

from __future__ import annotations

import time
import urllib.request
from typing import Any

from bench.processes import rss_mb
from bench.variants import start_platform

LIMIT_MB = 60.0
SETTLE_SECONDS = 2.0


def run_memory() -> dict[str, Any]:
    """RSS (MiB) of the platform process, nats-server and each component instance."""
    ready, platform = start_platform()
    try:
        url = next(url for url in ready["urls"] if "/qa/hello?kf-dep=" in url)
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - our own URL
            answer.read()
        time.sleep(SETTLE_SECONDS)
        rss = {name: rss_mb(pid) for name, pid in ready["pids"].items()}
    finally:
        platform.stop()
    components = {name: mb for name, mb in rss.items() if name.startswith("component ")}
    return {
        "rss_mb": rss,
        "largest_component_mb": max(components.values()),
        "targets": {"idle_component_under_60mb": max(components.values()) < LIMIT_MB},
    }
