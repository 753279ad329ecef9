"""Entry point of ``python -m bench [scenario ...]``: one JSON document on stdout.

Scenarios are named functions returning JSON-ready dicts; add one to
``SCENARIOS`` and it runs by default and by name. Progress goes to stderr so
stdout stays a single parseable document.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from bench.e2e import run_e2e
from bench.hop import run_hop
from bench.memory import run_memory
from bench.options import take_options
from bench.releases import run_releases
from bench.router import run_router
from bench.security import run_security
from bench.tracing import run_tracing

SCENARIOS: dict[str, Callable[[], dict[str, Any]]] = {
    "router": run_router,
    "e2e": run_e2e,
    "hop": run_hop,
    "memory": run_memory,
    "releases": run_releases,
    "tracing": run_tracing,
    "security": run_security,
}


def main(argv: list[str]) -> int:
    names = take_options(argv) or list(SCENARIOS)
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        print(
            f"unknown scenario: {', '.join(unknown)} (known: {', '.join(SCENARIOS)})",
            file=sys.stderr,
        )
        return 2
    report = {name: SCENARIOS[name]() for name in names}
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
