"""The short version of ``load_with_kills.py``: load, a writer and one kill, in ``make test``.

``make fuzz`` runs the long version (50 clients, 60 s, a kill every 10 s).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.harness import MARGIN
from tests.faults.load_with_kills import TIMEOUT, run

pytestmark = pytest.mark.faults


async def test_load_with_a_killed_instance_loses_no_write_and_leaves_no_request_hanging(
    tmp_path: Path,
) -> None:
    """10 clients for 6 s, one instance killed at 3 s: writes all kept, every request ends."""
    report = await run(clients=10, seconds=6.0, kill_every=3.0, workdir=tmp_path)

    assert len(report["kills"]) == 1, report
    assert report["restarts"] >= 1, report
    assert set(report["byStatus"]) <= {"200", "502", "503", "504"}, report
    assert report["byStatus"]["200"] > 0.9 * report["requests"], report
    assert report["latency"]["max"] <= TIMEOUT + MARGIN, report
    assert report["writes"]["acknowledged"] > 0, report
    assert report["writes"]["lost"] == 0, report
