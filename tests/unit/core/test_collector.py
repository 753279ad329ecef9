"""The collector settings a server process settles into once started."""

from __future__ import annotations

import json
import subprocess
import sys

from kubefox.core import collector

_PROBE = """
import gc, json
from kubefox.core import collector
kept = [object() for _ in range(3)]
before = gc.get_freeze_count()
collector.settle()
after = gc.get_freeze_count()
print(json.dumps({"before": before, "after": after, "threshold": gc.get_threshold()}))
"""


def test_settle_freezes_start_up_and_raises_only_the_young_threshold() -> None:
    # In a process of its own: freezing pytest's objects would keep them for the whole run.
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    seen = json.loads(done.stdout)

    assert seen["before"] == 0
    assert seen["after"] > 1000  # the interpreter's and our modules' objects
    assert seen["threshold"] == [collector.YOUNG_THRESHOLD, 10, 10]
