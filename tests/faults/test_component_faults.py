"""A component instance killed mid-request while a second replica runs.

The operator runs one instance per component version; a second replica is
started by another process supervisor (:func:`~tests.faults.harness.second_node`),
as a second machine would. Both join the component's NATS queue group, so
requests are spread over them at random.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from kubefox.operator import InstanceStatus
from kubefox.platform import EmbeddedPlatform
from kubefox.store.instance_records import InstanceRecord
from tests.e2e.platforms import running_platform
from tests.faults.harness import (
    MARGIN,
    STEADY,
    by_status,
    deploy,
    instance_pid,
    replica_spec,
    second_node,
    timed_get,
    until,
)

pytestmark = pytest.mark.faults

CONTEXT = {"kf-dep": "steady-main", "kf-ve": "steady"}
TIMEOUT = 5.0  # 1 s of work each, so a loaded machine still answers well in time
IN_FLIGHT = 16  # spread at random over two replicas: all on one has odds of 2 in 65,536


def _fronts(records: list[InstanceRecord]) -> list[InstanceRecord]:
    return [r for r in records if (r.app, r.name) == ("steady", "front")]


async def test_a_killed_replica_fails_only_its_own_requests_and_is_restarted(
    tmp_path: Path,
) -> None:
    """SIGKILL one of two replicas: its requests 503/504 by the deadline, the other serves on."""
    async with running_platform(tmp_path / "state") as (platform, http):
        await deploy(platform, STEADY, tmp_path, event_timeout=TIMEOUT)
        async with second_node(platform, tmp_path / "node2") as node:
            await node.ensure(replica_spec(platform, "steady", "front"))
            records = await platform.registry.wait_for(
                lambda records: len(_fronts(records)) == 2, timeout=30
            )
            victim = instance_pid(platform, "steady", "front")
            (survivor,) = {r.pid for r in _fronts(records)} - {victim}
            slow = [
                asyncio.create_task(
                    timed_get(http, "/steady/slow", params={**CONTEXT, "ms": "1000"})
                )
                for _ in range(IN_FLIGHT)
            ]
            # Let the requests reach their handlers (1 s of work each); nothing to await on.
            await asyncio.sleep(0.4)

            os.kill(victim, signal.SIGKILL)
            # Once the supervisor has seen it exit, the server has seen its connection close.
            await until(lambda: _exited(platform, victim), within=5)
            served_after_kill = [
                await timed_get(http, "/steady/ok", params=CONTEXT) for _ in range(20)
            ]
            in_flight = await asyncio.gather(*slow)
            restarted = await platform.registry.wait_for(
                lambda records: any(r.pid not in {victim, survivor} for r in _fronts(records)),
                timeout=30,
            )
            afterwards = [await timed_get(http, "/steady/ok", params=CONTEXT) for _ in range(20)]

    statuses = by_status(in_flight)
    assert set(statuses) <= {200, 503, 504}, statuses
    assert statuses.get(200, 0) >= 1, statuses  # the survivor finished its share
    assert statuses.get(503, 0) + statuses.get(504, 0) >= 1, statuses  # the victim's share failed
    assert all(o.text == f"front {survivor}" for o in in_flight if o.status == 200)
    assert max(o.elapsed for o in in_flight) <= TIMEOUT + MARGIN
    # The survivor, or the victim's replacement once it has started: never the victim.
    assert by_status(served_after_kill) == {200: 20}, served_after_kill
    assert all(o.text != f"front {victim}" for o in served_after_kill)
    assert any(r.pid not in {victim, survivor} for r in _fronts(restarted))
    assert by_status(afterwards) == {200: 20}


async def _exited(platform: EmbeddedPlatform, pid: int) -> bool:
    return all(
        s.pid != pid or s.status != InstanceStatus.RUNNING for s in platform.scheduler.instances()
    )
