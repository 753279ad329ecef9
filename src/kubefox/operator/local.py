"""The local process supervisor: the :class:`Scheduler` that runs components on this machine.

Each instance set is one process (two for a moment during a renewal, below),
supervised by an :class:`~kubefox.operator.supervisor.InstanceSupervisor`:
``<python> main.py`` in the directory holding
the component's files, extracted once from its artifact into
``<work_dir>/components/<app>-<component>-<hash>/`` (content-addressed, so a
directory that exists is already right). The process learns who it is from
``KUBEFOX_KIT_*`` variables; only a few basics of the operator's own
environment (``PATH``, ``HOME``, locale, ...) are passed on, so the operator's
settings and secrets do not leak into user code. Output goes, appended, to
``<work_dir>/logs/<app>-<component>-<hash7>.log``; a log larger than
:data:`MAX_LOG_BYTES` when a process starts is moved to ``.log.1`` first (the
older ``.1`` is dropped), so a component restarting in a loop cannot fill the
disk. The output of one run is not bounded.

A process that exits without being asked to is started again after an
exponential backoff (:class:`~kubefox.operator.backoff.Backoff`). Stopping is
SIGTERM, ``stop_grace`` seconds, then SIGKILL. Every process is the leader of
its own process group (a new session), and signals go to the whole group, so
nothing it forked outlives it; :meth:`LocalScheduler.aclose` stops them all,
and if supervision is cancelled instead, each supervisor kills its group on
the way out. POSIX only (``killpg``), like the rest of the local mode.

With :class:`InstanceCredentials` (the embedded platform's security), every
process gets its own NATS user credential, issued just before it starts into
``<work_dir>/instances/<instance id>/`` (a ``0700`` directory, the file
``0600``) and named by ``KUBEFOX_KIT_NATS_CREDS_FILE``; it is revoked, and the
directory removed, as soon as the process has exited.

A credential expires (``credential_ttl``), so at ``renew_fraction`` of its
lifetime the process is renewed *make-before-break*: a successor (fresh
instance id, fresh credential) is started beside it; once the successor is
ready to take events, it becomes the instance set's process
(:meth:`LocalScheduler.instances` shows its id and pid), the old process gets
SIGTERM (the Kit drains what it is handling and deregisters; SIGKILL after
``stop_grace``) and its credential is revoked once it has exited. *Ready* is
what the :class:`InstanceReadiness` check says (the embedded platform's: the
successor has registered in the instances bucket, which the Kit does after
subscribing); without a check the successor is taken as ready once it has
stayed up for ``ready_delay`` seconds, a guess. A successor that exits, or is
not ready within ``ready_timeout``, is stopped (its credential revoked),
logged (``instance.renewal_failed``) and tried again after a backoff while the
old process keeps serving, until its credential is nearly expired
(``min(stop_grace, half of what was left at renewal time)`` before it); then
the renewal falls back to break-before-make (``instance.renewal_abandoned``:
SIGTERM, then a normal start). Renewals are not counted as crashes; an old
process that exits on its own during a renewal is (and the successor takes
over at once).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from kubefox.core.errors import InvalidError, UnavailableError
from kubefox.operator.backoff import Backoff
from kubefox.operator.credentials import (
    InstanceCredential,
    InstanceCredentials,
    InstanceReadiness,
    ProcessCredentials,
)
from kubefox.operator.processes import ENTRY_POINT, inherited_environment
from kubefox.operator.scheduler import InstanceSpec, InstanceState
from kubefox.operator.settings import OperatorSettings
from kubefox.operator.supervisor import InstanceSupervisor, SupervisionOptions
from kubefox.publish.packaging import extract
from kubefox.store.artifacts import ArtifactStore

__all__ = [
    "MAX_LOG_BYTES",
    "READY_DELAY",
    "READY_TIMEOUT",
    "RENEW_FRACTION",
    "InstanceCredential",  # where kubefox.platform.security imports it from
    "InstanceCredentials",
    "InstanceReadiness",
    "LocalScheduler",
]

#: Size beyond which an instance set's log is rotated when its next process starts.
MAX_LOG_BYTES = 16 * 1024 * 1024
#: Share of a credential's lifetime after which its process is renewed.
RENEW_FRACTION = 2 / 3
#: How long a renewal waits for a successor to become ready before trying again.
READY_TIMEOUT = 30.0
#: Without a readiness check: how long a successor must stay up to be taken as ready.
READY_DELAY = 2.0


class LocalScheduler:
    """Runs each instance set as a supervised local process (a :class:`Scheduler`)."""

    def __init__(
        self,
        *,
        artifacts: ArtifactStore,
        work_dir: Path,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        backoff_reset: float = 10.0,
        stop_grace: float = 10.0,
        python: str = sys.executable,
        base_env: Mapping[str, str] | None = None,
        credentials: InstanceCredentials | None = None,
        renew_fraction: float = RENEW_FRACTION,
        readiness: InstanceReadiness | None = None,
        ready_timeout: float = READY_TIMEOUT,
        ready_delay: float = READY_DELAY,
    ) -> None:
        if not 0 < renew_fraction < 1:
            raise ValueError("renew_fraction must be between 0 and 1")
        if ready_timeout <= 0 or ready_delay < 0:
            raise ValueError("need ready_timeout > 0 and ready_delay >= 0")
        self._artifacts = artifacts
        self._components_dir = Path(work_dir) / "components"
        self._logs_dir = Path(work_dir) / "logs"
        new_backoff = functools.partial(
            Backoff, initial=backoff_initial, maximum=backoff_max, reset_after=backoff_reset
        )
        new_backoff()  # reject bad parameters now, not at the first crash
        self._options = SupervisionOptions(
            python=python,
            base_env=dict(inherited_environment() if base_env is None else base_env),
            credentials=ProcessCredentials(credentials, Path(work_dir) / "instances"),
            new_backoff=new_backoff,
            stop_grace=stop_grace,
            max_log_bytes=MAX_LOG_BYTES,
            renew_fraction=renew_fraction,
            readiness=readiness,
            ready_timeout=ready_timeout,
            ready_delay=ready_delay,
        )
        self._instances: dict[str, InstanceSupervisor] = {}
        self._locks: collections.defaultdict[str, asyncio.Lock] = collections.defaultdict(
            asyncio.Lock
        )
        self._listeners: list[Callable[[], None]] = []
        self._tg: asyncio.TaskGroup | None = None
        self._running = False
        self._closing = False
        self._closed = asyncio.Event()

    @classmethod
    def from_settings(
        cls,
        settings: OperatorSettings,
        artifacts: ArtifactStore,
        *,
        credentials: InstanceCredentials | None = None,
        readiness: InstanceReadiness | None = None,
    ) -> LocalScheduler:
        """A scheduler with the work directory, backoff and grace of ``settings``."""
        return cls(
            artifacts=artifacts,
            work_dir=settings.work_dir,
            backoff_initial=settings.restart_backoff_initial,
            backoff_max=settings.restart_backoff_max,
            backoff_reset=settings.restart_backoff_reset,
            stop_grace=settings.stop_grace,
            credentials=credentials,
            readiness=readiness,
        )

    # -- the port ------------------------------------------------------------------------

    async def ensure(self, spec: InstanceSpec) -> None:
        """Run ``spec`` as instance set ``spec.key``, extracting its artifact if needed.

        Raises:
            NotFoundError: the artifact does not exist.
            InvalidError: the artifact is not a safe tar.gz with a ``main.py``.
            UnavailableError: the scheduler is closed.
        """
        self._check_open()
        async with self._locks[spec.key]:
            self._check_open()
            current = self._instances.get(spec.key)
            if current is not None and current.spec == spec and not current.stopping.is_set():
                return
            if current is not None:
                await self._remove(spec.key)
            directory = await self._prepare(spec)
            self._check_open()
            instance = InstanceSupervisor(
                spec,
                directory=directory,
                log_path=self._logs_dir / f"{spec.app}-{spec.component}-{spec.hash[:7]}.log",
                options=self._options,
                notify=self._notify,
            )
            self._instances[spec.key] = instance
            self._supervise_soon(instance)
            self._notify()

    async def remove(self, key: str) -> None:
        """Stop instance set ``key`` (SIGTERM, grace, SIGKILL) and forget it."""
        async with self._locks[key]:
            await self._remove(key)

    def instances(self) -> list[InstanceState]:
        """Every instance set, sorted by key."""
        return [self._instances[key].state() for key in sorted(self._instances)]

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every change of :meth:`instances`."""
        self._listeners.append(listener)

    async def run(self) -> None:
        """Supervise every instance set until :meth:`aclose`.

        If this is cancelled instead, every process is killed on the way out.
        """
        if self._running:
            raise RuntimeError("this scheduler is already running")
        self._running = True
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                for instance in list(self._instances.values()):
                    self._supervise_soon(instance)
                await self._closed.wait()
        finally:
            self._tg = None

    async def aclose(self) -> None:
        """Stop every process (in parallel, each with its grace) and end :meth:`run`.

        Idempotent; a second call returns once the first has finished.
        """
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        try:
            async with asyncio.TaskGroup() as tg:
                for instance in list(self._instances.values()):
                    tg.create_task(instance.stop())
        finally:
            self._instances.clear()
            self._closed.set()
            self._notify()

    # -- supervision ---------------------------------------------------------------------

    def _supervise_soon(self, instance: InstanceSupervisor) -> None:
        if self._tg is None or instance.supervised or instance.stopping.is_set():
            return  # run() starts it, or it is on its way out
        instance.supervised = True
        self._tg.create_task(instance.supervise(), name=f"supervise {instance.spec.key}")

    async def _remove(self, key: str) -> None:
        instance = self._instances.get(key)
        if instance is None:
            return
        await instance.stop()
        if self._instances.get(key) is instance:
            del self._instances[key]
        self._notify()

    # -- artifacts -----------------------------------------------------------------------

    async def _prepare(self, spec: InstanceSpec) -> Path:
        """The directory holding the component's files, extracted from its artifact once."""
        directory = self._components_dir / f"{spec.app}-{spec.component}-{spec.hash}"
        if (directory / ENTRY_POINT).is_file():
            return directory
        data = await self._artifacts.get(spec.artifact)
        await asyncio.to_thread(self._extract, data, directory, spec.artifact)
        return directory

    def _extract(self, data: bytes, directory: Path, artifact: str) -> None:
        self._components_dir.mkdir(parents=True, exist_ok=True)
        # Extract beside the target and rename: a crash never leaves half a component
        # where a complete one is expected, and racing extractions both succeed.
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=self._components_dir))
        try:
            extract(data, staging)
            if not (staging / ENTRY_POINT).is_file():
                raise InvalidError(
                    f"the artifact has no {ENTRY_POINT} at its top level", artifact=artifact
                )
            if directory.exists() and not (directory / ENTRY_POINT).is_file():
                shutil.rmtree(directory)  # left over from an older, broken layout
            try:
                staging.rename(directory)
            except OSError:
                if not (directory / ENTRY_POINT).is_file():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    # -- helpers -------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closing:
            raise UnavailableError("the scheduler is closed")

    def _notify(self) -> None:
        for listener in self._listeners:
            listener()
