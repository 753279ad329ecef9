"""nats-server killed (SIGKILL) and started again on the same port and data directory.

Every part reconnects by itself: httpsrv, the broker, the component instances,
the operator, the store and its watches (the router's view, the operator's
view, the instance registry). Every resource write JetStream acknowledged
before the kill is still there afterwards, and routing resumes.

SIGKILL of the server loses nothing the kernel already holds, so this shows
that acknowledged writes survive a server crash, not a power cut; that takes
``sync_interval: always`` (checked in ``tests/integration/test_natsd.py``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from kubefox.platform import EmbeddedPlatform
from kubefox.resources import Environment
from tests.e2e.gitapps import commit_all
from tests.e2e.platforms import running_platform
from tests.faults.harness import (
    MARGIN,
    STEADY,
    Writes,
    deploy,
    keep_writing,
    stored_names,
    timed_get,
    until,
)

pytestmark = pytest.mark.faults

CONTEXT = {"kf-dep": "steady-main", "kf-ve": "steady"}
TIMEOUT = 3.0


async def test_a_nats_server_crash_loses_no_acknowledged_write_and_everything_reconnects(
    tmp_path: Path,
) -> None:
    """SIGKILL nats-server mid-writes, restart it: writes kept, every part back, routing on."""
    async with running_platform(tmp_path / "state") as (platform, http):
        await deploy(platform, STEADY, tmp_path, event_timeout=TIMEOUT)
        port = platform.nats.port
        writes, stop = Writes(), asyncio.Event()
        writer = asyncio.create_task(keep_writing(platform, writes, stop, prefix="w"))
        await until(lambda: _acknowledged(writes, 20), within=10)
        pid = platform.nats.pid
        assert pid is not None

        os.kill(pid, signal.SIGKILL)
        await until(lambda: _down(platform), within=5)
        during = await timed_get(http, "/steady/chain", params=CONTEXT)
        health_during = (await http.get("/_kf/health")).status_code
        await platform.nats.start()
        restarted_at = time.monotonic()
        await until(lambda: _healthy(http), within=20)
        await until(lambda: _routes(http, "/steady/chain"), within=20)
        resumed_in = time.monotonic() - restarted_at
        target = len(writes.acknowledged) + 20
        await until(lambda: _acknowledged(writes, target), within=20)
        stop.set()
        await writer
        stored = await stored_names(platform, "w")
        chain = await timed_get(http, "/steady/chain", params=CONTEXT)

        # The router's view follows the store again: a renamed route answers.
        environment = await platform.resources.get(Environment, "steady")
        renamed = environment.model_copy(
            update={"data": environment.data.model_copy(update={"vars": {"subPath": "moved"}})}
        )
        await platform.resources.apply(renamed)
        await until(lambda: _routes(http, "/moved/ok"), within=10)
        # The operator, the scheduler, the artifact store and the registry work again:
        # a changed component gets a new process, which registers and serves.
        repo = tmp_path / "steady"
        front = repo / "components" / "front" / "main.py"
        front.write_text(front.read_text().replace('f"front {', 'f"new front {'))
        commit_all(repo, "A new front")
        await platform.publish(repo)
        await platform.wait_available("steady-main", within=30)
        new_front = await timed_get(http, "/moved/ok", params=CONTEXT)
        same_port = platform.nats.port == port

    assert during.status in {502, 503, 504}, during
    assert during.elapsed <= TIMEOUT + MARGIN
    assert health_during == 503
    assert same_port
    assert resumed_in < 15
    assert set(writes.acknowledged) <= stored, set(writes.acknowledged) - stored
    assert writes.slowest < 10  # a write during the outage fails, it does not hang
    assert chain.status == 200
    assert chain.text.startswith("front ")
    assert " back " in chain.text
    assert new_front.status == 200
    assert new_front.text.startswith("new front ")


async def _acknowledged(writes: Writes, count: int) -> bool:
    return len(writes.acknowledged) >= count


async def _down(platform: EmbeddedPlatform) -> bool:
    return not platform.nats.running


async def _healthy(http: httpx.AsyncClient) -> bool:
    return (await http.get("/_kf/health")).status_code == 200


async def _routes(http: httpx.AsyncClient, path: str) -> bool:
    return (await timed_get(http, path, params=CONTEXT)).status == 200
