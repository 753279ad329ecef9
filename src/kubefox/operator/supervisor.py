"""The supervision of one instance set: its process, restarts and credential renewals.

:class:`~kubefox.operator.local.LocalScheduler` keeps one
:class:`InstanceSupervisor` per instance set and runs its :meth:`supervise`
as a task. The supervisor starts the process, restarts it after a backoff
when it exits unasked, and renews it before its credential expires:
*make-before-break*, so that the set is never without a process taking
events (see :mod:`kubefox.operator.local` for the rules). During a renewal
two processes are alive at once; :meth:`InstanceSupervisor.state` shows the
one that serves, and stopping signals both.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import signal
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from kubefox.operator.backoff import Backoff
from kubefox.operator.credentials import (
    CredentialFailedError,
    InstanceReadiness,
    ProcessCredentials,
)
from kubefox.operator.processes import (
    INSTANCE_ID_VAR,
    ComponentProcess,
    new_instance_id,
    note,
    rotate_log,
    spawn,
)
from kubefox.operator.scheduler import InstanceSpec, InstanceState, InstanceStatus

log = structlog.get_logger(__name__)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SupervisionOptions:
    """What every supervisor of one scheduler shares (see ``LocalScheduler``'s arguments)."""

    python: str
    base_env: Mapping[str, str]
    credentials: ProcessCredentials
    new_backoff: Callable[[], Backoff]
    stop_grace: float
    max_log_bytes: int
    renew_fraction: float
    readiness: InstanceReadiness | None
    ready_timeout: float
    ready_delay: float


class _Renewal(enum.StrEnum):
    """How waiting for a successor ended."""

    READY = "ready"
    NOT_READY = "not_ready"  # the check failed or timed out
    SUCCESSOR_EXITED = "successor_exited"
    PREDECESSOR_EXITED = "predecessor_exited"
    STOPPING = "stopping"


class InstanceSupervisor:
    """Runs one instance set's process until :meth:`stop` (never handed out of the scheduler)."""

    def __init__(
        self,
        spec: InstanceSpec,
        *,
        directory: Path,
        log_path: Path,
        options: SupervisionOptions,
        notify: Callable[[], None],
    ) -> None:
        self.spec = spec
        self.directory = directory
        self.log_path = log_path
        self.stopping = asyncio.Event()
        #: Set once :meth:`supervise` has been started as a task.
        self.supervised = False
        self._options = options
        self._notify = notify
        self._backoff = options.new_backoff()
        self._status = InstanceStatus.STARTING
        self._since = datetime.now(UTC)
        # The process that serves (or last served) for the set: what state() shows.
        self._current: ComponentProcess | None = None
        # Every process not yet reaped and retired: the current one and, during a
        # renewal, its successor or its draining predecessor.
        self._processes: list[ComponentProcess] = []
        self._instance_id: str | None = None
        self._restarts = 0
        self._last_exit_code: int | None = None
        self._killing = False
        self._renewing = False  # stopped to be started again with a fresh credential
        self._done = asyncio.Event()

    def state(self) -> InstanceState:
        """What the scheduler reports for this instance set now."""
        current = self._current
        return InstanceState(
            key=self.spec.key,
            app=self.spec.app,
            component=self.spec.component,
            hash=self.spec.hash,
            status=self._status,
            pid=current.pid if current is not None and current.alive else None,
            instance_id=self._instance_id,
            restarts=self._restarts,
            failures=self._backoff.failures,
            last_exit_code=self._last_exit_code,
            since=self._since,
        )

    async def stop(self) -> None:
        """SIGTERM every process of the set, SIGKILL after the grace; return once supervision ended.

        Idempotent.
        """
        grace = self._options.stop_grace
        if not self.stopping.is_set():
            self.stopping.set()
            if self._current is not None and self._current.alive:
                self._set_status(InstanceStatus.STOPPING)
            self._signal(signal.SIGTERM)  # during a renewal: both processes
        if not self.supervised:
            self._set_status(InstanceStatus.STOPPED)
            self._done.set()
            return
        try:
            async with asyncio.timeout(grace):
                await self._done.wait()
        except TimeoutError:
            log.warning("instance.killed", key=self.spec.key, grace=grace)
            self._killing = True
            self._signal(signal.SIGKILL)
            await self._done.wait()
        log.info("instance.stopped", key=self.spec.key)

    async def supervise(self) -> None:
        """Run, restart and renew the process until :meth:`stop`.

        If this is cancelled instead, every process of the set is killed on the way out.
        """
        key = self.spec.key
        loop = asyncio.get_running_loop()
        try:
            while not self.stopping.is_set():
                code = await self._run_process()
                if self.stopping.is_set():
                    break
                if self._renewing:  # restarted for a fresh credential: not a crash
                    self._renewing = False
                    continue
                last = self._current
                ran_for = loop.time() - last.started if last is not None else 0.0
                delay = self._backoff.next_delay(ran_for)
                self._last_exit_code = code
                self._restarts += 1
                log.warning(
                    "instance.crashed",
                    key=key,
                    exit_code=code,
                    ran_for=round(ran_for, 3),
                    restart_in=delay,
                    failures=self._backoff.failures,
                )
                self._set_status(InstanceStatus.CRASHED)
                self._set_status(InstanceStatus.BACKOFF)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self.stopping.wait()
        except Exception:
            log.exception("instance.supervision_failed", key=key)
            raise
        finally:
            for process in list(self._processes):
                if process.alive:
                    # Cancelled (or failed) while it runs: no grace left to give.
                    process.signal(signal.SIGKILL)
                    await process.process.wait()
                await self._retire(process, process.process.returncode)
            self._set_status(InstanceStatus.STOPPED)
            self._done.set()

    # -- one process and its successors -------------------------------------------------

    async def _run_process(self) -> int | None:
        """Run a process, and its successors at each renewal, until one exits.

        The exit status of the last one (None: it did not start).
        """
        self._current = None
        self._set_status(InstanceStatus.STARTING)
        process = await self._start()
        if process is None:
            return None
        self._take_over(process)
        served = await self._serve(process)
        while isinstance(served, ComponentProcess):  # a successor took over
            served = await self._serve(served)
        return served

    async def _start(self) -> ComponentProcess | None:
        """Issue a credential and start a process; ``None`` if either failed (logged)."""
        spec, options = self.spec, self._options
        instance_id = new_instance_id()
        env = {
            **options.base_env,
            "PYTHONUNBUFFERED": "1",
            **spec.env,
            INSTANCE_ID_VAR: instance_id,
        }
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        rotate_log(self.log_path, options.max_log_bytes)
        try:
            credential = await options.credentials.issue(spec, instance_id, self.log_path)
        except CredentialFailedError:
            return None
        if credential is not None:
            env.update(credential.env)
        try:
            started = await spawn(options.python, self.directory, env, self.log_path, instance_id)
        except OSError as exc:
            log.warning("instance.start_failed", key=spec.key, error=str(exc))
            await options.credentials.revoke(instance_id)
            return None
        now = asyncio.get_running_loop().time()
        process = ComponentProcess(process=started, instance_id=instance_id, started=now)
        if credential is not None and credential.expires_at is not None:
            lifetime = max(0.0, (credential.expires_at - datetime.now(UTC)).total_seconds())
            process.renew_at = now + lifetime * options.renew_fraction
            process.expires_at = now + lifetime
        self._processes.append(process)
        log.info("instance.started", key=spec.key, pid=started.pid, instance=instance_id)
        if self.stopping.is_set():  # asked to stop while it was being spawned
            process.signal(signal.SIGKILL if self._killing else signal.SIGTERM)
        return process

    def _take_over(self, process: ComponentProcess) -> None:
        """Make ``process`` the one that serves for (and is shown as) the instance set."""
        self._current = process
        self._instance_id = process.instance_id
        self._set_status(InstanceStatus.RUNNING)

    async def _serve(self, process: ComponentProcess) -> int | ComponentProcess:
        """Wait for ``process`` to exit, renewing it when due; its exit status.

        Or its successor, when one has taken over (and ``process`` is gone).
        """
        if process.renew_at is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(process.renew_at):
                    await process.process.wait()
            if process.alive and not self.stopping.is_set():
                successor = await self._renew(process)
                if successor is not None:
                    await self._hand_over(process, successor)
                    return successor
                if not self.stopping.is_set() and process.process.returncode is None:
                    # No successor in time: the old way, stop it and start anew.
                    self._renewing = True
                    await process.halt(self._options.stop_grace)
        code = await process.process.wait()
        await self._retire(process, code)
        return code

    async def _retire(self, process: ComponentProcess, code: int | None) -> None:
        """``process`` has exited: end its group, note it, revoke its credential; then notify."""
        # Whatever the leader forked goes with it.
        process.signal(signal.SIGKILL)
        if process in self._processes:
            self._processes.remove(process)
        note(
            self.log_path, f"instance {process.instance_id} (pid {process.pid}) exited with {code}"
        )
        log.info(
            "instance.exited",
            key=self.spec.key,
            pid=process.pid,
            instance=process.instance_id,
            exit_code=code,
        )
        await self._options.credentials.revoke(process.instance_id)
        self._notify()

    # -- renewal ------------------------------------------------------------------------

    async def _renew(self, process: ComponentProcess) -> ComponentProcess | None:
        """A successor of ``process`` ready to take over; ``None`` if there is none in time.

        Tries again (with backoff) while ``process`` serves, until its credential
        is nearly expired, the instance set stops or ``process`` exits.
        """
        key, options = self.spec.key, self._options
        loop = asyncio.get_running_loop()
        expires_at = process.expires_at if process.expires_at is not None else loop.time()
        # Leave the old process time to drain before its credential is refused.
        give_up_at = expires_at - min(options.stop_grace, (expires_at - loop.time()) / 2)
        log.info(
            "instance.credential_renewal",
            key=key,
            instance=process.instance_id,
            expires_in=round(expires_at - loop.time(), 3),
        )
        backoff = options.new_backoff()
        while True:
            successor = await self._start()
            if successor is not None:
                outcome = await self._until_ready(process, successor)
                if outcome in (_Renewal.READY, _Renewal.PREDECESSOR_EXITED):
                    return successor
                await self._retire(successor, await successor.halt(options.stop_grace))
                if outcome is not _Renewal.STOPPING:
                    log.warning(
                        "instance.renewal_failed",
                        key=key,
                        instance=successor.instance_id,
                        reason=outcome.value,
                    )
            if self.stopping.is_set() or not process.alive:
                return None
            delay = backoff.next_delay(0.0)
            if loop.time() + delay >= give_up_at:
                log.warning(
                    "instance.renewal_abandoned",
                    key=key,
                    instance=process.instance_id,
                    attempts=backoff.failures,
                )
                return None
            await _first(asyncio.sleep(delay), self.stopping.wait(), process.process.wait())
            if self.stopping.is_set() or not process.alive:
                return None

    async def _until_ready(
        self, predecessor: ComponentProcess, successor: ComponentProcess
    ) -> _Renewal:
        """Wait until ``successor`` is ready, or something makes that moot."""
        options = self._options
        ready = asyncio.Event()

        async def check() -> None:
            try:
                async with asyncio.timeout(options.ready_timeout):
                    if options.readiness is None:
                        await asyncio.sleep(options.ready_delay)
                    else:
                        await options.readiness(self.spec, successor.instance_id)
            except TimeoutError:
                return
            except Exception as exc:  # noqa: BLE001 - a failing check means "not ready"
                log.warning(
                    "instance.readiness_failed",
                    key=self.spec.key,
                    instance=successor.instance_id,
                    error=repr(exc),
                )
                return
            ready.set()

        await _first(
            check(),
            successor.process.wait(),
            predecessor.process.wait(),
            self.stopping.wait(),
        )
        if self.stopping.is_set():
            return _Renewal.STOPPING
        if not successor.alive:
            return _Renewal.SUCCESSOR_EXITED
        if ready.is_set():
            return _Renewal.READY
        if not predecessor.alive:
            return _Renewal.PREDECESSOR_EXITED
        return _Renewal.NOT_READY

    async def _hand_over(self, predecessor: ComponentProcess, successor: ComponentProcess) -> None:
        """``successor`` serves from now on; stop ``predecessor`` and revoke its credential."""
        key = self.spec.key
        self._take_over(successor)
        log.info(
            "instance.renewed",
            key=key,
            instance=successor.instance_id,
            pid=successor.pid,
            predecessor=predecessor.instance_id,
        )
        code: int | None
        if predecessor.alive:
            # The Kit stops receiving, lets in-flight events finish and deregisters.
            # The successor is not watched meanwhile: an exit of it shows after this.
            code = await predecessor.halt(self._options.stop_grace)
        else:
            code = predecessor.process.returncode
            self._restarts += 1
            self._last_exit_code = code
            log.warning(
                "instance.crashed",
                key=key,
                exit_code=code,
                instance=predecessor.instance_id,
                successor=successor.instance_id,
            )
        await self._retire(predecessor, code)

    # -- helpers ------------------------------------------------------------------------

    def _set_status(self, status: InstanceStatus) -> None:
        self._status = status
        self._since = datetime.now(UTC)
        self._notify()

    def _signal(self, signum: signal.Signals) -> None:
        """Send ``signum`` to the process group of every process of the set."""
        for process in list(self._processes):
            process.signal(signum)


async def _first(*waits: Coroutine[Any, Any, object]) -> None:
    """Return once the first of ``waits`` has finished; the others are cancelled."""
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(wait) for wait in waits]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
