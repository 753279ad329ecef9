"""The local process supervisor: the :class:`Scheduler` that runs components on this machine.

Each instance set is one process: ``<python> main.py`` in the directory holding
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
directory removed, as soon as the process has exited. A credential expires
(``credential_ttl``), so a process still running at ``renew_fraction`` of its
credential's lifetime is restarted gracefully (SIGTERM, the Kit drains and
deregisters) with a fresh one; such a restart is not counted as a crash.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import functools
import os
import secrets
import shutil
import signal
import string
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol

import structlog

from kubefox.core.errors import InvalidError, KubeFoxError, UnavailableError
from kubefox.operator.backoff import Backoff
from kubefox.operator.scheduler import InstanceSpec, InstanceState, InstanceStatus
from kubefox.operator.settings import OperatorSettings
from kubefox.publish.packaging import extract
from kubefox.store.artifacts import ArtifactStore

log = structlog.get_logger(__name__)

#: The file a component directory must hold; it is what gets run.
ENTRY_POINT = "main.py"
#: Environment variable carrying the instance id, fresh for every start.
INSTANCE_ID_VAR = "KUBEFOX_KIT_INSTANCE_ID"
#: Size beyond which an instance set's log is rotated when its next process starts.
MAX_LOG_BYTES = 16 * 1024 * 1024
#: Share of a credential's lifetime after which its process is restarted with a new one.
RENEW_FRACTION = 2 / 3

# What a child may inherit from the operator's environment: enough for Python
# and common libraries to work, nothing that configures the platform.
_INHERITED = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "SYSTEMROOT",
)
_ID_ALPHABET = string.ascii_lowercase + string.digits
_ID_LENGTH = 10


def new_instance_id() -> str:
    """A random instance id: 10 characters of ``[a-z0-9]``, as the Kit generates."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class InstanceCredential:
    """What one process was given: variables to add to its environment, and their expiry."""

    env: Mapping[str, str] = dataclasses.field(repr=False)
    expires_at: datetime | None = None


class InstanceCredentials(Protocol):
    """Issues a credential per component process and revokes it when the process is gone."""

    async def issue(
        self, spec: InstanceSpec, instance_id: str, directory: Path
    ) -> InstanceCredential:
        """A credential for process ``instance_id`` of ``spec``, its files in ``directory``.

        ``directory`` exists, is private (``0700``) and is removed after :meth:`revoke`.
        """
        ...

    async def revoke(self, instance_id: str) -> None:
        """Revoke what :meth:`issue` gave ``instance_id``; idempotent."""
        ...


def inherited_environment() -> dict[str, str]:
    """The part of this process's environment a component process gets too."""
    # The supervisor passes its children the basics of its own environment; this
    # is process plumbing, not configuration, so the ban on os.environ does not apply.
    environ = os.environ  # noqa: TID251
    return {
        name: value
        for name, value in environ.items()
        if name in _INHERITED or name.startswith("LC_")
    }


@dataclasses.dataclass(eq=False, kw_only=True)
class _Instance:
    """The mutable supervision record of one instance set (never handed out)."""

    spec: InstanceSpec
    directory: Path
    log_path: Path
    backoff: Backoff
    notify: Callable[[], None]
    status: InstanceStatus = InstanceStatus.STARTING
    since: datetime = dataclasses.field(default_factory=lambda: datetime.now(UTC))
    process: asyncio.subprocess.Process | None = None
    instance_id: str | None = None
    restarts: int = 0
    last_exit_code: int | None = None
    supervised: bool = False
    killing: bool = False
    renewing: bool = False
    stopping: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    done: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    def set_status(self, status: InstanceStatus) -> None:
        self.status = status
        self.since = datetime.now(UTC)
        self.notify()

    def state(self) -> InstanceState:
        process = self.process
        alive = process is not None and process.returncode is None
        return InstanceState(
            key=self.spec.key,
            app=self.spec.app,
            component=self.spec.component,
            hash=self.spec.hash,
            status=self.status,
            pid=process.pid if alive and process is not None else None,
            instance_id=self.instance_id,
            restarts=self.restarts,
            failures=self.backoff.failures,
            last_exit_code=self.last_exit_code,
            since=self.since,
        )

    def signal(self, signum: signal.Signals) -> None:
        """Send ``signum`` to the process group of the current process, if any."""
        process = self.process
        if process is None:
            return
        # The process leads its own group (start_new_session), so its pid is the
        # group id; the group may outlive the leader if it forked.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signum)


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
    ) -> None:
        if not 0 < renew_fraction < 1:
            raise ValueError("renew_fraction must be between 0 and 1")
        self._artifacts = artifacts
        self._components_dir = Path(work_dir) / "components"
        self._logs_dir = Path(work_dir) / "logs"
        self._credentials_dir = Path(work_dir) / "instances"
        self._credentials = credentials
        self._renew_fraction = renew_fraction
        self._new_backoff = functools.partial(
            Backoff, initial=backoff_initial, maximum=backoff_max, reset_after=backoff_reset
        )
        self._new_backoff()  # reject bad parameters now, not at the first crash
        self._stop_grace = stop_grace
        self._python = python
        self._base_env = dict(inherited_environment() if base_env is None else base_env)
        self._instances: dict[str, _Instance] = {}
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
            instance = _Instance(
                spec=spec,
                directory=directory,
                log_path=self._logs_dir / f"{spec.app}-{spec.component}-{spec.hash[:7]}.log",
                backoff=self._new_backoff(),
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
                    tg.create_task(self._stop(instance))
        finally:
            self._instances.clear()
            self._closed.set()
            self._notify()

    # -- supervision ---------------------------------------------------------------------

    def _supervise_soon(self, instance: _Instance) -> None:
        if self._tg is None or instance.supervised or instance.stopping.is_set():
            return  # run() starts it, or it is on its way out
        instance.supervised = True
        self._tg.create_task(self._supervise(instance), name=f"supervise {instance.spec.key}")

    async def _supervise(self, instance: _Instance) -> None:
        key = instance.spec.key
        try:
            while not instance.stopping.is_set():
                started = time.monotonic()
                code = await self._run_process(instance)
                if instance.stopping.is_set():
                    break
                if instance.renewing:  # restarted for a fresh credential: not a crash
                    instance.renewing = False
                    continue
                ran_for = time.monotonic() - started
                delay = instance.backoff.next_delay(ran_for)
                instance.last_exit_code = code
                instance.restarts += 1
                log.warning(
                    "instance.crashed",
                    key=key,
                    exit_code=code,
                    ran_for=round(ran_for, 3),
                    restart_in=delay,
                    failures=instance.backoff.failures,
                )
                instance.set_status(InstanceStatus.CRASHED)
                instance.set_status(InstanceStatus.BACKOFF)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await instance.stopping.wait()
        except Exception:
            log.exception("instance.supervision_failed", key=key)
            raise
        finally:
            process = instance.process
            if process is not None and process.returncode is None:
                # Cancelled (or failed) while the process runs: no grace left to give.
                instance.signal(signal.SIGKILL)
                await process.wait()
            instance.set_status(InstanceStatus.STOPPED)
            instance.done.set()

    async def _run_process(self, instance: _Instance) -> int | None:
        """Start the process, wait for it to exit; its exit status (None: did not start)."""
        spec = instance.spec
        instance.set_status(InstanceStatus.STARTING)
        instance_id = new_instance_id()
        env = {
            **self._base_env,
            "PYTHONUNBUFFERED": "1",
            **spec.env,
            INSTANCE_ID_VAR: instance_id,
        }
        instance.log_path.parent.mkdir(parents=True, exist_ok=True)
        _rotate_log(instance.log_path)
        try:
            credential = await self._issue(instance, instance_id)
        except _CredentialFailedError:
            return None
        try:
            if credential is not None:
                env.update(credential.env)
            return await self._spawn_and_wait(instance, instance_id, env, credential)
        finally:
            if credential is not None:
                await self._revoke(instance_id)

    async def _spawn_and_wait(
        self,
        instance: _Instance,
        instance_id: str,
        env: dict[str, str],
        credential: InstanceCredential | None,
    ) -> int | None:
        spec = instance.spec
        with _open_log(instance.log_path) as output:
            output.write(f"--- {_now()} kubefox: starting instance {instance_id}\n".encode())
            output.flush()
            try:
                process = await asyncio.create_subprocess_exec(
                    self._python,
                    ENTRY_POINT,
                    cwd=instance.directory,
                    env=env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=output,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                log.warning("instance.start_failed", key=spec.key, error=str(exc))
                output.write(f"--- {_now()} kubefox: cannot start: {exc}\n".encode())
                return None
        instance.process = process
        instance.instance_id = instance_id
        instance.set_status(InstanceStatus.RUNNING)
        log.info("instance.started", key=spec.key, pid=process.pid, instance=instance_id)
        if instance.stopping.is_set():  # asked to stop while it was being spawned
            instance.signal(signal.SIGKILL if instance.killing else signal.SIGTERM)
        code = await self._wait(instance, process, credential)
        # Whatever the leader forked goes with it.
        instance.signal(signal.SIGKILL)
        with _open_log(instance.log_path) as output:
            output.write(
                f"--- {_now()} kubefox: instance {instance_id} (pid {process.pid}) "
                f"exited with {code}\n".encode()
            )
        log.info("instance.exited", key=spec.key, pid=process.pid, exit_code=code)
        return code

    async def _wait(
        self,
        instance: _Instance,
        process: asyncio.subprocess.Process,
        credential: InstanceCredential | None,
    ) -> int:
        """The process's exit code; restarts it gracefully before its credential expires."""
        if credential is None or credential.expires_at is None:
            return await process.wait()
        lifetime = (credential.expires_at - datetime.now(UTC)).total_seconds()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, lifetime * self._renew_fraction)):
                return await process.wait()
        log.info(
            "instance.credential_renewal",
            key=instance.spec.key,
            instance=instance.instance_id,
            expires_at=credential.expires_at.isoformat(),
        )
        instance.renewing = True
        instance.signal(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._stop_grace):
                return await process.wait()
        instance.signal(signal.SIGKILL)
        return await process.wait()

    async def _issue(self, instance: _Instance, instance_id: str) -> InstanceCredential | None:
        """The credential of a new process (``None``: credentials are off); logged if it fails."""
        if self._credentials is None:
            return None
        directory = self._credentials_dir / instance_id
        try:
            await asyncio.to_thread(_private_dir, directory)
            return await self._credentials.issue(instance.spec, instance_id, directory)
        except (KubeFoxError, OSError) as exc:
            log.warning("instance.credential_failed", key=instance.spec.key, error=str(exc))
            with _open_log(instance.log_path) as output:
                output.write(f"--- {_now()} kubefox: no credential: {exc}\n".encode())
            await asyncio.to_thread(_remove_dir, directory)
            raise _CredentialFailedError from exc

    async def _revoke(self, instance_id: str) -> None:
        """Revoke the credential of a process that has exited and remove its files."""
        if self._credentials is None:
            return
        try:
            await self._credentials.revoke(instance_id)
        except Exception as exc:  # noqa: BLE001 - a revocation failure must not stop supervision
            log.warning("instance.revocation_failed", instance=instance_id, error=str(exc))
        await asyncio.to_thread(_remove_dir, self._credentials_dir / instance_id)

    async def _remove(self, key: str) -> None:
        instance = self._instances.get(key)
        if instance is None:
            return
        await self._stop(instance)
        if self._instances.get(key) is instance:
            del self._instances[key]
        self._notify()

    async def _stop(self, instance: _Instance) -> None:
        if not instance.stopping.is_set():
            instance.stopping.set()
            if instance.process is not None and instance.process.returncode is None:
                instance.set_status(InstanceStatus.STOPPING)
                instance.signal(signal.SIGTERM)
        if not instance.supervised:
            instance.set_status(InstanceStatus.STOPPED)
            instance.done.set()
            return
        try:
            async with asyncio.timeout(self._stop_grace):
                await instance.done.wait()
        except TimeoutError:
            log.warning("instance.killed", key=instance.spec.key, grace=self._stop_grace)
            instance.killing = True
            instance.signal(signal.SIGKILL)
            await instance.done.wait()
        log.info("instance.stopped", key=instance.spec.key)

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


class _CredentialFailedError(Exception):
    """No credential could be issued; the start counts as failed (already logged)."""


def _remove_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _private_dir(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.mkdir(mode=0o700, exist_ok=True)
    path.chmod(0o700)


def _rotate_log(path: Path) -> None:
    """Move ``path`` to ``<path>.1`` if it has grown past :data:`MAX_LOG_BYTES`."""
    try:
        if path.stat().st_size > MAX_LOG_BYTES:
            path.replace(path.with_name(path.name + ".1"))
            log.info("instance.log_rotated", log=str(path))
    except FileNotFoundError:
        return


def _open_log(path: Path) -> BinaryIO:
    # Appending a line to a local file is quick; the child gets its own descriptor.
    return path.open("ab")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
