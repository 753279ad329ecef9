"""LocalScheduler credential renewal: make-before-break, with real (tiny) processes.

The credentials are a fake (no NATS here): the first one a process gets is
short-lived, so a renewal comes within a second; later ones last a minute.
Components report ``up`` when they serve and ``term`` when SIGTERM arrives
(:class:`Readiness`), and the scheduler's readiness check waits for ``up``.
A report cut short by a signal arrives empty: lookups skip those.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kubefox.operator import InstanceSpec, InstanceState, InstanceStatus, LocalScheduler
from kubefox.operator.local import InstanceCredential, InstanceReadiness
from kubefox.store.artifacts import MemoryArtifactStore, artifact_name
from tests.unit.operator.helpers import Readiness, Signal, is_alive, running, tar_gz

APP = "hello-world"
HASH = "0123456789abcdef0123456789abcdef"

# Drains for a moment on SIGTERM, as the Kit does, so that a credential revoked
# before the exit would show.
RENEWABLE = Readiness.CLIENT + (
    "import signal, sys, time\n"
    "def term(*_):\n"
    "    ready('term')\n"
    "    time.sleep(0.3)\n"
    "    sys.exit(0)\n"
    "signal.signal(signal.SIGTERM, term)\n"
    "ready('up')\n"
    "while True:\n"
    "    signal.pause()\n"
)
# Only the first process of the set starts; every later one exits at once.
FIRST_ONLY = (
    "import os, pathlib, sys\n"
    "marker = pathlib.Path(os.environ['MARKER'])\n"
    "if marker.exists():\n"
    "    sys.exit(1)\n"
    "marker.touch()\n"
) + RENEWABLE


class FakeCredentials:
    """InstanceCredentials: the first expires after ``first_ttl`` s, later ones after a minute.

    Records each revocation with whether the process was still alive then.
    """

    def __init__(self, ready: Readiness, *, first_ttl: float) -> None:
        self.issued: list[str] = []
        self.revoked: list[tuple[str, bool]] = []
        self.changed = Signal()
        self._ready = ready
        self._ttls: Iterator[float] = itertools.chain([first_ttl], itertools.repeat(60.0))

    async def issue(
        self, spec: InstanceSpec, instance_id: str, directory: Path
    ) -> InstanceCredential:
        creds = directory / "test.creds"
        creds.write_text(instance_id)
        self.issued.append(instance_id)
        self.changed()
        return InstanceCredential(
            env={"TEST_CREDS_FILE": str(creds)},
            expires_at=datetime.now(UTC) + timedelta(seconds=next(self._ttls)),
        )

    async def revoke(self, instance_id: str) -> None:
        pids = [int(report[0]) for report in self._ready.history if report[1:2] == [instance_id]]
        self.revoked.append((instance_id, any(is_alive(pid) for pid in pids)))
        self.changed()


def reported_up(ready: Readiness) -> InstanceReadiness:
    """A readiness check: the process has reported ``up``."""

    async def check(spec: InstanceSpec, instance_id: str) -> None:
        await ready.changed.until(lambda: reported(ready, instance_id, "up"), timeout=60)

    return check


async def never_ready(spec: InstanceSpec, instance_id: str) -> None:
    """A readiness check that never passes."""
    await asyncio.Event().wait()


def make_scheduler(
    tmp_path: Path,
    artifacts: MemoryArtifactStore,
    credentials: FakeCredentials,
    readiness: InstanceReadiness | None,
    *,
    renew_fraction: float = 2 / 3,
    ready_timeout: float = 30.0,
    ready_delay: float = 2.0,
) -> LocalScheduler:
    return LocalScheduler(
        artifacts=artifacts,
        work_dir=tmp_path / "work",
        backoff_initial=0.05,
        backoff_max=0.1,
        backoff_reset=5.0,
        stop_grace=2.0,
        credentials=credentials,
        readiness=readiness,
        renew_fraction=renew_fraction,
        ready_timeout=ready_timeout,
        ready_delay=ready_delay,
    )


async def component(
    artifacts: MemoryArtifactStore, script: str, ready: Readiness, **env: str
) -> InstanceSpec:
    artifact = artifact_name(APP, "backend", HASH)
    await artifacts.put(artifact, tar_gz({"main.py": script}))
    return InstanceSpec(
        app=APP,
        component="backend",
        hash=HASH,
        artifact=artifact,
        env={"KUBEFOX_KIT_NAME": "backend", "READY_PORT": str(ready.port), **env},
    )


def only(scheduler: LocalScheduler) -> InstanceState:
    (state,) = scheduler.instances()
    return state


def pid_of(ready: Readiness, instance_id: str) -> int:
    """The pid of process ``instance_id``, from its reports."""
    (pid,) = {int(report[0]) for report in ready.history if report[1:2] == [instance_id]}
    return pid


def reported(ready: Readiness, instance_id: str, what: str) -> bool:
    return [instance_id, what] in [report[1:] for report in ready.history]


@pytest.mark.parametrize("check", ["registration", "fixed delay"])
async def test_a_successor_serves_before_the_old_process_is_signalled(
    tmp_path: Path, check: str
) -> None:
    """Renewal starts a successor, waits until it is ready, then SIGTERMs the old one."""
    artifacts = MemoryArtifactStore()
    async with Readiness() as ready:
        credentials = FakeCredentials(ready, first_ttl=1.5)
        readiness = reported_up(ready) if check == "registration" else None
        scheduler = make_scheduler(tmp_path, artifacts, credentials, readiness, ready_delay=2.0)
        async with running(scheduler):
            await scheduler.ensure(await component(artifacts, RENEWABLE, ready))
            changes = Signal()
            scheduler.on_change(changes)

            await credentials.changed.until(lambda: len(credentials.revoked) == 1)
            await changes.until(lambda: only(scheduler).instance_id == credentials.issued[1])

            old_id, new_id = credentials.issued
            events = [report[1:] for report in ready.history]
            assert [new_id, "up"] in events
            assert events.index([new_id, "up"]) < events.index([old_id, "term"])
            assert events.count([old_id, "term"]) == 1
            state = only(scheduler)
            assert (state.status, state.pid, state.instance_id) == (
                InstanceStatus.RUNNING,
                pid_of(ready, new_id),
                new_id,
            )
            assert (state.restarts, state.last_exit_code) == (0, None)  # not a crash
            assert not is_alive(pid_of(ready, old_id))
            assert is_alive(pid_of(ready, new_id))


async def test_the_old_credential_is_revoked_only_after_its_process_exits(
    tmp_path: Path,
) -> None:
    """The old process drains after SIGTERM; its credential is revoked once it has exited."""
    artifacts = MemoryArtifactStore()
    async with Readiness() as ready:
        credentials = FakeCredentials(ready, first_ttl=1.5)
        scheduler = make_scheduler(tmp_path, artifacts, credentials, reported_up(ready))
        changes = Signal()
        scheduler.on_change(changes)
        instances = tmp_path / "work" / "instances"
        async with running(scheduler):
            await scheduler.ensure(await component(artifacts, RENEWABLE, ready))

            await credentials.changed.until(lambda: len(credentials.revoked) == 1)
            await changes.until(lambda: len(list(instances.iterdir())) == 1)

            old_id, new_id = credentials.issued
            assert credentials.revoked == [(old_id, False)]
            assert [path.name for path in instances.iterdir()] == [new_id]


@pytest.mark.parametrize("failure", ["successor exits", "successor never ready"])
async def test_a_failing_successor_leaves_the_old_process_serving(
    tmp_path: Path, failure: str
) -> None:
    """Each failed successor is stopped and revoked and tried again; the old one keeps running."""
    artifacts = MemoryArtifactStore()
    async with Readiness() as ready:
        # renewal after 1 s; the old credential lasts 10 s: time for several attempts
        credentials = FakeCredentials(ready, first_ttl=10.0)
        if failure == "successor exits":
            script, readiness, timeout = FIRST_ONLY, reported_up(ready), 30.0
        else:
            script, readiness, timeout = RENEWABLE, never_ready, 0.2
        scheduler = make_scheduler(
            tmp_path,
            artifacts,
            credentials,
            readiness,
            renew_fraction=0.1,
            ready_timeout=timeout,
        )
        async with running(scheduler):
            spec = await component(artifacts, script, ready, MARKER=str(tmp_path / "marker"))
            await scheduler.ensure(spec)

            await credentials.changed.until(lambda: len(credentials.revoked) >= 3)

            old_id = credentials.issued[0]
            await ready.changed.until(lambda: reported(ready, old_id, "up"))
            old_pid = pid_of(ready, old_id)
            assert not reported(ready, old_id, "term")
            assert is_alive(old_pid)
            assert all(not alive and instance != old_id for instance, alive in credentials.revoked)
            state = only(scheduler)
            assert (state.status, state.pid, state.instance_id, state.restarts) == (
                InstanceStatus.RUNNING,
                old_pid,
                old_id,
                0,
            )


@pytest.mark.parametrize("how", ["remove", "aclose"])
async def test_stopping_during_a_renewal_stops_both_processes(tmp_path: Path, how: str) -> None:
    """remove() or aclose() while a successor is starting: both exit, both credentials go."""
    artifacts = MemoryArtifactStore()
    async with Readiness() as ready:
        credentials = FakeCredentials(ready, first_ttl=1.5)
        scheduler = make_scheduler(tmp_path, artifacts, credentials, never_ready)
        async with running(scheduler):
            spec = await component(artifacts, RENEWABLE, ready)
            await scheduler.ensure(spec)
            await credentials.changed.until(lambda: len(credentials.issued) == 2)
            old_id, new_id = credentials.issued
            await ready.changed.until(  # both serve
                lambda: reported(ready, old_id, "up") and reported(ready, new_id, "up")
            )
            old_pid, new_pid = pid_of(ready, old_id), pid_of(ready, new_id)

            if how == "remove":
                await scheduler.remove(spec.key)
            else:
                await scheduler.aclose()

            assert scheduler.instances() == []
            assert not is_alive(old_pid)
            assert not is_alive(new_pid)
            assert sorted(credentials.revoked) == sorted([(old_id, False), (new_id, False)])
            assert not list((tmp_path / "work" / "instances").iterdir())
