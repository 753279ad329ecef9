"""LocalScheduler: real (tiny) processes, no NATS.

Each component here is a few lines of Python that reports to a loopback
server when it is ready (:class:`Readiness`), so the tests synchronise on
events rather than sleeps.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from kubefox.core.errors import InvalidError, NotFoundError, UnavailableError
from kubefox.operator import InstanceSpec, InstanceState, InstanceStatus, LocalScheduler
from kubefox.store.artifacts import MemoryArtifactStore, artifact_name
from tests.unit.operator.helpers import Readiness, Signal, is_alive, running, tar_gz, wait_exited

APP = "hello-world"
HASH = "0123456789abcdef0123456789abcdef"

SERVING = Readiness.CLIENT + (
    "import signal, sys\n"
    "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
    "print('hello from', os.environ['KUBEFOX_KIT_NAME'], flush=True)\n"
    "ready('leak' if 'KUBEFOX_OPERATOR_SECRET' in os.environ else 'clean')\n"
    "while True:\n"
    "    signal.pause()\n"
)
STUBBORN = Readiness.CLIENT + (
    "import signal\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "ready()\n"
    "while True:\n"
    "    signal.pause()\n"
)
CRASHING = Readiness.CLIENT + "import sys\nready()\nsys.exit(3)\n"
FORKING = Readiness.CLIENT + (
    "import signal, subprocess, sys\n"
    "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "ready(str(child.pid))\n"
    "while True:\n"
    "    signal.pause()\n"
)


def make_scheduler(
    tmp_path: Path, artifacts: MemoryArtifactStore, **options: float
) -> LocalScheduler:
    values = {"backoff_initial": 0.05, "backoff_max": 0.1, "backoff_reset": 5.0, "stop_grace": 2.0}
    values.update(options)
    return LocalScheduler(
        artifacts=artifacts,
        work_dir=tmp_path / "work",
        backoff_initial=values["backoff_initial"],
        backoff_max=values["backoff_max"],
        backoff_reset=values["backoff_reset"],
        stop_grace=values["stop_grace"],
    )


async def component(
    artifacts: MemoryArtifactStore, name: str, script: str, ready: Readiness, **env: str
) -> InstanceSpec:
    """Store ``script`` as the main.py of component ``name`` and return its spec."""
    artifact = artifact_name(APP, name, HASH)
    await artifacts.put(artifact, tar_gz({"main.py": script, "lib/data.txt": "data"}))
    return InstanceSpec(
        app=APP,
        component=name,
        hash=HASH,
        artifact=artifact,
        env={"KUBEFOX_KIT_NAME": name, "READY_PORT": str(ready.port), **env},
    )


def only(scheduler: LocalScheduler) -> InstanceState:
    (state,) = scheduler.instances()
    return state


async def test_process_runs_in_its_directory_with_its_env_and_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The artifact is extracted, main.py runs there, told who it is, logging to its file."""
    monkeypatch.setenv("KUBEFOX_OPERATOR_SECRET", "s3cret")
    artifacts = MemoryArtifactStore()
    async with Readiness() as ready, running(make_scheduler(tmp_path, artifacts)) as scheduler:
        spec = await component(artifacts, "backend", SERVING, ready)

        await scheduler.ensure(spec)
        pid, instance_id, leaked = await ready.next()

        state = only(scheduler)
        assert (state.key, state.status, state.pid, state.instance_id) == (
            spec.key,
            InstanceStatus.RUNNING,
            int(pid),
            instance_id,
        )
        assert leaked == "clean"
        directory = tmp_path / "work" / "components" / f"{APP}-backend-{HASH}"
        assert (directory / "lib" / "data.txt").read_text() == "data"
        await scheduler.remove(spec.key)
    log = (tmp_path / "work" / "logs" / f"{APP}-backend-{HASH[:7]}.log").read_text()
    assert "hello from backend" in log
    assert f"instance {instance_id} (pid {pid}) exited with 0" in log


async def test_remove_stops_the_process_with_sigterm(tmp_path: Path) -> None:
    """remove() returns once the process has exited cleanly; the set is forgotten."""
    artifacts = MemoryArtifactStore()
    async with Readiness() as ready, running(make_scheduler(tmp_path, artifacts)) as scheduler:
        spec = await component(artifacts, "backend", SERVING, ready)
        await scheduler.ensure(spec)
        pid = int((await ready.next())[0])

        await scheduler.remove(spec.key)

        assert scheduler.instances() == []
        assert not is_alive(pid)


async def test_a_process_ignoring_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    """SIGTERM, stop_grace, then SIGKILL."""
    artifacts = MemoryArtifactStore()
    scheduler = make_scheduler(tmp_path, artifacts, stop_grace=0.3)
    async with Readiness() as ready, running(scheduler):
        spec = await component(artifacts, "stubborn", STUBBORN, ready)
        await scheduler.ensure(spec)
        pid = int((await ready.next())[0])

        await scheduler.remove(spec.key)

        assert not is_alive(pid)
    log = (tmp_path / "work" / "logs" / f"{APP}-stubborn-{HASH[:7]}.log").read_text()
    assert "exited with -9" in log


async def test_a_crashing_process_is_restarted_with_backoff(tmp_path: Path) -> None:
    """Each exit is followed by a new process; failures and the exit code are reported."""
    artifacts = MemoryArtifactStore()
    changes = Signal()
    scheduler = make_scheduler(tmp_path, artifacts)
    scheduler.on_change(changes)
    async with Readiness() as ready, running(scheduler):
        spec = await component(artifacts, "crasher", CRASHING, ready)

        await scheduler.ensure(spec)
        await changes.until(lambda: only(scheduler).failures >= 3)

        state = only(scheduler)
        assert state.restarts >= 3
        assert state.last_exit_code == 3
        reports = [await ready.next() for _ in range(3)]
        assert len({instance for _, instance in reports}) == 3  # a fresh id per start


async def test_a_killed_process_is_started_again(tmp_path: Path) -> None:
    """SIGKILL from outside: the supervisor starts a new process with a new pid."""
    artifacts = MemoryArtifactStore()
    async with Readiness() as ready, running(make_scheduler(tmp_path, artifacts)) as scheduler:
        spec = await component(artifacts, "backend", SERVING, ready)
        await scheduler.ensure(spec)
        first = int((await ready.next())[0])

        os.kill(first, signal.SIGKILL)
        second = int((await ready.next())[0])

        assert second != first
        state = only(scheduler)
        assert (state.restarts, state.last_exit_code) == (1, -signal.SIGKILL)


async def test_ensure_is_idempotent_and_a_new_spec_replaces(tmp_path: Path) -> None:
    """The same spec twice keeps the process; a changed spec replaces it."""
    artifacts = MemoryArtifactStore()
    async with Readiness() as ready, running(make_scheduler(tmp_path, artifacts)) as scheduler:
        spec = await component(artifacts, "backend", SERVING, ready)
        await scheduler.ensure(spec)
        first = int((await ready.next())[0])

        await scheduler.ensure(spec)
        assert only(scheduler).pid == first

        changed = InstanceSpec(
            app=spec.app,
            component=spec.component,
            hash=spec.hash,
            artifact=spec.artifact,
            env={**spec.env, "KUBEFOX_KIT_LOG_LEVEL": "debug"},
        )
        await scheduler.ensure(changed)
        second = int((await ready.next())[0])

        assert second != first
        assert not is_alive(first)


async def test_the_artifact_is_extracted_once(tmp_path: Path) -> None:
    """A second start of the same hash reuses the directory, even if the artifact is gone."""
    artifacts = MemoryArtifactStore()
    async with Readiness() as ready, running(make_scheduler(tmp_path, artifacts)) as scheduler:
        spec = await component(artifacts, "backend", SERVING, ready)
        await scheduler.ensure(spec)
        await ready.next()
        await scheduler.remove(spec.key)
        await artifacts.aclose()  # any further fetch would fail

        await scheduler.ensure(spec)

        await ready.next()


async def test_missing_artifact_is_not_found(tmp_path: Path) -> None:
    """ensure() raises NotFoundError and starts nothing."""
    artifacts = MemoryArtifactStore()
    async with running(make_scheduler(tmp_path, artifacts)) as scheduler:
        spec = InstanceSpec(app=APP, component="ghost", hash=HASH, artifact="nope")

        with pytest.raises(NotFoundError):
            await scheduler.ensure(spec)

        assert scheduler.instances() == []


@pytest.mark.parametrize(
    "data",
    [tar_gz({"app.py": "print()"}), tar_gz({"../main.py": "print()"}), b"not a tarball"],
)
async def test_unusable_artifact_is_invalid_and_leaves_nothing(tmp_path: Path, data: bytes) -> None:
    """No main.py at the top, an unsafe path, or no tar.gz: InvalidError, no directory left."""
    artifacts = MemoryArtifactStore()
    await artifacts.put("bad", data)
    async with running(make_scheduler(tmp_path, artifacts)) as scheduler:
        spec = InstanceSpec(app=APP, component="bad", hash=HASH, artifact="bad")

        with pytest.raises(InvalidError):
            await scheduler.ensure(spec)

        assert scheduler.instances() == []
        assert list((tmp_path / "work" / "components").iterdir()) == []


async def test_aclose_stops_every_process_and_what_it_forked(tmp_path: Path) -> None:
    """After aclose() neither the components nor their children are alive."""
    artifacts = MemoryArtifactStore()
    scheduler = make_scheduler(tmp_path, artifacts)
    async with Readiness() as ready, running(scheduler):
        await scheduler.ensure(await component(artifacts, "forker", FORKING, ready))
        await scheduler.ensure(await component(artifacts, "backend", SERVING, ready))
        reports = [await ready.next(), await ready.next()]
        pids = [int(r[0]) for r in reports] + [int(r[2]) for r in reports if r[2].isdigit()]
        assert len(pids) == 3

        await scheduler.aclose()

        for pid in pids:
            await wait_exited(pid)
        assert scheduler.instances() == []
    with pytest.raises(UnavailableError):
        await scheduler.ensure(InstanceSpec(app=APP, component="x", hash=HASH, artifact="x"))


async def test_cancelled_supervision_kills_the_processes(tmp_path: Path) -> None:
    """If run() is cancelled instead of closed, the processes are killed on the way out."""
    artifacts = MemoryArtifactStore()
    scheduler = make_scheduler(tmp_path, artifacts)
    async with Readiness() as ready:
        spec = await component(artifacts, "backend", SERVING, ready)
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(scheduler.run())
            await scheduler.ensure(spec)
            pid = int((await ready.next())[0])

            task.cancel()

        await wait_exited(pid)
        assert not is_alive(pid)


async def test_ensure_before_run_starts_when_run_does(tmp_path: Path) -> None:
    """Specs ensured before run() wait for it; nothing runs without supervision."""
    artifacts = MemoryArtifactStore()
    scheduler = make_scheduler(tmp_path, artifacts)
    async with Readiness() as ready:
        await scheduler.ensure(await component(artifacts, "backend", SERVING, ready))
        assert only(scheduler).status is InstanceStatus.STARTING

        async with running(scheduler):
            await ready.next()
