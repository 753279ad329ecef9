"""Bounds added where none existed: component logs of a crash loop stop growing.

The other limits are exercised where they bite: httpsrv's in
``tests/fuzz/test_http_requests.py``, the codec's and the YAML reader's in
``tests/fuzz``; ``docs/reliability.md`` lists them all.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kubefox.operator import InstanceSpec, LocalScheduler, local
from kubefox.store.artifacts import MemoryArtifactStore, artifact_name
from tests.unit.operator.helpers import Readiness, tar_gz

pytestmark = pytest.mark.faults

APP = "chatty"
HASH = "0123456789abcdef0123456789abcdef"
LIMIT = 4096
LINE = 3000
CHATTY_CRASH = (
    Readiness.CLIENT + f"import sys\nprint('x' * {LINE}, flush=True)\nready()\nsys.exit(3)\n"
)


async def test_a_crash_looping_component_log_is_rotated_at_each_start_past_the_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each restart moves a log over MAX_LOG_BYTES to .1: two files, each about the bound."""
    monkeypatch.setattr(local, "MAX_LOG_BYTES", LIMIT)
    artifacts = MemoryArtifactStore()
    name = artifact_name(APP, "api", HASH)
    await artifacts.put(name, tar_gz({"main.py": CHATTY_CRASH}))
    scheduler = LocalScheduler(
        artifacts=artifacts, work_dir=tmp_path, backoff_initial=0.01, backoff_max=0.01
    )
    async with Readiness() as ready, asyncio.TaskGroup() as tasks:
        tasks.create_task(scheduler.run())
        spec = InstanceSpec(
            app=APP, component="api", hash=HASH, artifact=name, env={"READY_PORT": str(ready.port)}
        )
        await scheduler.ensure(spec)
        for _ in range(8):  # eight runs of 3 kB each: 24 kB unrotated
            await ready.next()
        await scheduler.aclose()
    log = tmp_path / "logs" / f"{APP}-api-{HASH[:7]}.log"
    rotated = log.with_name(log.name + ".1")

    assert rotated.exists()
    assert log.stat().st_size <= LIMIT + 2 * (LINE + 300)
    assert rotated.stat().st_size <= LIMIT + 2 * (LINE + 300)
