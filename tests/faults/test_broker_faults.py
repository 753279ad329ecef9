"""One of two brokers killed under load: requests keep succeeding, the few that fail fail cleanly.

Brokers share ``kf.<platform>.brk.>`` as one queue group. Killing one (its task
cancelled mid-flight, its connection closed) loses the events it held: each
such request ends in 504 at its deadline, never later; the other broker takes
every event from then on.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.e2e.platforms import running_platform
from tests.faults.harness import MARGIN, STEADY, by_status, deploy, run_load, task_named

pytestmark = pytest.mark.faults

CONTEXT = {"kf-dep": "steady-main", "kf-ve": "steady"}
TIMEOUT = 3.0
CLIENTS = 10
KILL_AT = 1.5
SECONDS = KILL_AT + TIMEOUT + 1.5


async def test_killing_one_of_two_brokers_under_load_fails_only_what_it_held(
    tmp_path: Path,
) -> None:
    """Front -> broker -> back under load; one broker dies: <= in-flight failures, none hang."""
    async with running_platform(tmp_path / "state", brokers=2) as (platform, http):
        await deploy(platform, STEADY, tmp_path, event_timeout=TIMEOUT)
        warm = await http.get("/steady/chain", params=CONTEXT)
        victim = task_named("broker-1")
        survivor = task_named("broker-0")
        load = asyncio.create_task(
            run_load(http, "/steady/chain", params=CONTEXT, clients=CLIENTS, seconds=SECONDS)
        )
        await asyncio.sleep(KILL_AT)  # under load for a while; the load itself is the clock

        victim.cancel()
        sent = await load
        survivor_serves = not survivor.done()

    assert warm.status_code == 200
    assert victim.cancelled()
    assert survivor_serves
    statuses = by_status([s.outcome for s in sent])
    failed = [s for s in sent if s.outcome.status != 200]
    assert set(statuses) <= {200, 502, 503, 504}, statuses
    assert len(failed) <= CLIENTS, statuses  # at most what was in flight when it died
    assert max(s.outcome.elapsed for s in sent) <= TIMEOUT + MARGIN
    assert all(s.at < KILL_AT + 0.5 for s in failed), [(s.at, s.outcome) for s in failed]
    after = [s for s in sent if s.at > KILL_AT + TIMEOUT]
    assert after
    assert all(s.outcome.status == 200 for s in after)
    assert statuses[200] > 10 * CLIENTS
