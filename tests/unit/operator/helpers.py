"""Builders and fakes for the operator tests (a plain module, never a conftest).

The integration tests use the artifact and AppDeployment builders too.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import os
import tarfile
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubefox.core.errors import DeadlineExceededError
from kubefox.operator import (
    InstanceSpec,
    InstanceState,
    InstanceStatus,
)
from kubefox.operator.local import LocalScheduler
from kubefox.resources import AppDeployment, parse_resource
from kubefox.store.instance_records import InstanceRecord, record_key

NAMESPACE = "kubefox-test"
PLATFORM = "demo"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
BACKEND_HASH = "b" * 32
FRONTEND_HASH = "f" * 32
FRONTEND_HASH_2 = "e" * 32


def tar_gz(files: Mapping[str, str | bytes]) -> bytes:
    """A component artifact: ``files`` (path -> content) in a tar.gz, as ``fox publish`` packs."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path, content in sorted(files.items()):
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def app_deployment(
    name: str,
    components: Mapping[str, str],
    *,
    app: str = "hello-world",
    generation: int = 1,
    dependencies: Mapping[str, Mapping[str, str]] | None = None,
) -> AppDeployment:
    """An AppDeployment of ``app`` with ``components`` (name -> hash), all of type KubeFox."""
    specs: dict[str, Any] = {}
    for component, hash_ in components.items():
        spec: dict[str, Any] = {"type": "KubeFox", "hash": hash_}
        if dependencies and component in dependencies:
            spec["dependencies"] = {
                dep: {"type": kind} for dep, kind in dependencies[component].items()
            }
        specs[component] = spec
    resource = parse_resource(
        {
            "apiVersion": "kubefox.xigxog.io/v1alpha1",
            "kind": "AppDeployment",
            "metadata": {"name": name, "namespace": NAMESPACE, "generation": generation},
            "spec": {
                "appName": app,
                "commit": COMMIT,
                "commitTime": "2024-02-01T16:24:21Z",
                "components": specs,
            },
        }
    )
    assert isinstance(resource, AppDeployment)
    return resource


def state(
    spec: InstanceSpec,
    *,
    status: InstanceStatus = InstanceStatus.RUNNING,
    pid: int | None = 4242,
    failures: int = 0,
    restarts: int = 0,
    last_exit_code: int | None = None,
) -> InstanceState:
    """What a scheduler would report for ``spec``."""
    return InstanceState(
        key=spec.key,
        app=spec.app,
        component=spec.component,
        hash=spec.hash,
        status=status,
        pid=pid,
        instance_id="inst",
        restarts=restarts,
        failures=failures,
        last_exit_code=last_exit_code,
        since=datetime.now(UTC),
    )


class Signal:
    """Counts change notifications and lets a test wait for a condition on them."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def __call__(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def until(
        self,
        predicate: Callable[[], bool],
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline for the whole wait
    ) -> None:
        """Return once ``predicate()`` holds, re-checking after every notification."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    event = self._event
                    if predicate():
                        return
                    await event.wait()
        except TimeoutError:
            raise DeadlineExceededError("condition not reached", timeout=timeout) from None


class FakeScheduler:
    """A Scheduler that runs nothing: it records specs and reports states tests set."""

    def __init__(self) -> None:
        self.specs: dict[str, InstanceSpec] = {}
        self.states: dict[str, InstanceState] = {}
        self.ensure_calls: list[str] = []
        self.removed: list[str] = []
        self.closed = False
        self._listeners: list[Callable[[], None]] = []
        self._closed = asyncio.Event()

    async def ensure(self, spec: InstanceSpec) -> None:
        self.ensure_calls.append(spec.key)
        if self.specs.get(spec.key) == spec:
            return
        self.specs[spec.key] = spec
        self.states[spec.key] = state(spec, status=InstanceStatus.STARTING, pid=None)
        self._notify()

    async def remove(self, key: str) -> None:
        if self.specs.pop(key, None) is not None:
            self.states.pop(key, None)
            self.removed.append(key)
            self._notify()

    def instances(self) -> list[InstanceState]:
        return [self.states[key] for key in sorted(self.states)]

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    async def run(self) -> None:
        await self._closed.wait()

    async def aclose(self) -> None:
        self.closed = True
        self.specs.clear()
        self.states.clear()
        self._closed.set()

    def set_state(self, key: str, **changes: Any) -> None:
        """Replace fields of the state of ``key`` and tell the listeners."""
        self.states[key] = dataclasses.replace(self.states[key], **changes)
        self._notify()

    def _notify(self) -> None:
        for listener in self._listeners:
            listener()


class FakeRegistry:
    """Registrations a test adds and removes by hand."""

    def __init__(self) -> None:
        self._records: dict[str, InstanceRecord] = {}
        self._listeners: list[Callable[[], None]] = []
        self._closed = asyncio.Event()

    def records(self) -> list[InstanceRecord]:
        return [self._records[key] for key in sorted(self._records)]

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    async def wait_ready(self) -> None:
        return

    async def run(self) -> None:
        await self._closed.wait()

    def close(self) -> None:
        self._closed.set()

    def register(
        self, app: str, name: str, hash_: str, instance: str = "i1", *, platform: str = PLATFORM
    ) -> str:
        key = record_key(platform, app, name, hash_, instance)
        self._records[key] = InstanceRecord(
            key=key, platform=platform, app=app, name=name, hash=hash_, id=instance
        )
        self._notify()
        return key

    def deregister(self, key: str) -> None:
        del self._records[key]
        self._notify()

    def _notify(self) -> None:
        for listener in self._listeners:
            listener()


async def wait_exited(pid: int, *, timeout: float = 5.0) -> None:  # noqa: ASYNC109
    """Return once process ``pid`` has exited (reaped or not), without polling.

    Uses a pidfd, which becomes readable when the process terminates; works for
    processes that are not our children (a component's own children) too.
    """
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    loop = asyncio.get_running_loop()
    exited = asyncio.Event()
    loop.add_reader(fd, exited.set)
    try:
        async with asyncio.timeout(timeout):
            await exited.wait()
    finally:
        loop.remove_reader(fd)
        os.close(fd)


def is_alive(pid: int) -> bool:
    """Whether ``pid`` names a process that has not exited (zombies count as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class Readiness:
    """A loopback server test components report to: ``<pid> <instance id> [extra...]``."""

    #: Python that a component script can paste to report: ``ready("extra", ...)``.
    CLIENT = (
        "import os, socket\n"
        "def ready(*extra):\n"
        "    port = int(os.environ['READY_PORT'])\n"
        "    with socket.create_connection(('127.0.0.1', port)) as s:\n"
        "        words = [str(os.getpid()), os.environ['KUBEFOX_KIT_INSTANCE_ID'], *extra]\n"
        "        s.sendall((' '.join(words) + '\\n').encode())\n"
    )

    def __init__(self) -> None:
        self.reports: asyncio.Queue[list[str]] = asyncio.Queue()
        #: Every report so far, in order of arrival; ``changed`` fires after each.
        self.history: list[list[str]] = []
        self.changed = Signal()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Readiness:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        report = line.decode().split()
        self.reports.put_nowait(report)
        self.history.append(report)
        self.changed()
        writer.close()
        await writer.wait_closed()

    async def next(self, *, timeout: float = 5.0) -> list[str]:  # noqa: ASYNC109
        """The next report: ``[pid, instance id, *extra]``."""
        async with asyncio.timeout(timeout):
            return await self.reports.get()


@contextlib.asynccontextmanager
async def running(scheduler: LocalScheduler) -> AsyncIterator[LocalScheduler]:
    """Run ``scheduler`` for the block; close it (stopping every process) at the end."""
    async with asyncio.TaskGroup() as tg:
        tg.create_task(scheduler.run())
        try:
            yield scheduler
        finally:
            await scheduler.aclose()
