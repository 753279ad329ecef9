"""Faults a user must survive, end to end: a handler that raises, an instance that dies."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from kubefox.platform import EmbeddedPlatform
from tests.e2e.gitapps import TEST_APPS, app_repo
from tests.e2e.platforms import running_platform

pytestmark = pytest.mark.e2e

CONTEXT = {"kf-dep": "faulty-main", "kf-ve": "faulty"}
PLATFORM_WITH_SHORT_TIMEOUT = """
apiVersion: kubefox.xigxog.io/v1alpha1
kind: Platform
metadata:
  name: demo
spec:
  events:
    timeoutSeconds: 3
"""


async def _deploy_faulty(platform: EmbeddedPlatform, tmp_path: Path) -> None:
    repo = app_repo(TEST_APPS / "faulty", tmp_path / "faulty")
    await platform.apply_yaml(PLATFORM_WITH_SHORT_TIMEOUT)
    await platform.publish(repo)
    await platform.apply_path(repo / "hack" / "environments")
    await platform.wait_available("faulty-main")


def _api_pid(platform: EmbeddedPlatform) -> int:
    (state,) = [s for s in platform.scheduler.instances() if s.component == "api"]
    assert state.pid is not None
    return state.pid


async def test_handler_exception_is_a_clean_500_and_the_component_keeps_serving(
    tmp_path: Path,
) -> None:
    """A raising handler gives 500 with the event id and no internals; the next call works."""
    async with running_platform(tmp_path / "state") as (platform, http):
        await _deploy_faulty(platform, tmp_path)

        boom = await http.get("/faulty/boom", params=CONTEXT)
        ok = await http.get("/faulty/ok", params=CONTEXT)

    event_id = boom.headers["kubefox-event-id"]
    assert boom.status_code == 500
    assert boom.text == f"unexpected error: handler failed (event {event_id})"
    assert "secret internal detail" not in boom.text
    assert (ok.status_code, ok.text) == (200, "ok")


async def test_killed_instance_fails_in_flight_request_within_deadline_and_restarts(
    tmp_path: Path,
) -> None:
    """SIGKILL mid-request: 503/504 by the deadline, never a hang; the operator restarts it."""
    async with running_platform(tmp_path / "state") as (platform, http):
        await _deploy_faulty(platform, tmp_path)
        old_pid = _api_pid(platform)
        started = time.monotonic()
        in_flight = asyncio.create_task(http.get("/faulty/slow", params=CONTEXT))
        await asyncio.sleep(0.3)  # let the request reach the handler; nothing to await on

        os.kill(old_pid, signal.SIGKILL)
        response = await in_flight
        elapsed = time.monotonic() - started
        records = await platform.registry.wait_for(
            lambda records: any(r.name == "api" and r.pid not in {None, old_pid} for r in records),
            timeout=30,
        )
        ok = await http.get("/faulty/ok", params=CONTEXT)
        pids = {r.pid for r in records if r.name == "api"}

    assert response.status_code in {503, 504}
    assert elapsed < 3 + 2
    assert pids - {old_pid}  # a new process registered (the killed one's record expires later)
    assert ok.text == "ok"
