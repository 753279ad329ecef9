"""One platform per state directory: its lock, its run file, and running it in the background.

A platform process (``fox up --foreground``, which ``fox up`` starts detached)
holds an exclusive ``flock`` on ``<state>/fox.lock`` for its whole life and
writes its PID in it: a second start finds the lock taken and refuses, and
the lock is released by the kernel however the process ends, so a crash never
leaves a platform that "still runs". Once everything serves (and the demo
app, if asked for, is published), it writes ``<state>/run.json``: its PID,
where each part listens and the demo's URLs. That file is what ``fox up``
waits for; it is removed on a clean stop.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from kubefox.core.errors import (
    ConflictError,
    DeadlineExceededError,
    KubeFoxError,
)

LOCK_FILE = "fox.lock"
RUN_FILE = "run.json"
LOG_FILE = Path("logs") / "platform.log"

_POLL = 0.05  # seconds between looks at a process we cannot wait on directly
_TAIL_LINES = 15


def _already_running(state_dir: Path, pid: int | None) -> ConflictError:
    who = f" (pid {pid})" if pid else ""
    return ConflictError(
        message=f"a platform is already running in {state_dir}{who}; "
        "see it with `fox status`, stop it with `fox down`",
        pid=pid,
    )


def _read_pid(handle: IO[str]) -> int | None:
    handle.seek(0)
    text = handle.read().strip()
    return int(text) if text.isdigit() else None


@contextlib.contextmanager
def platform_lock(state_dir: Path) -> Iterator[None]:
    """Hold the state directory's lock, with this process's PID in it.

    Raises:
        ConflictError: another process holds it.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / LOCK_FILE).open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _already_running(state_dir, _read_pid(handle)) from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def running_pid(state_dir: Path) -> int | None:
    """The PID of the platform running in ``state_dir``, or None if none runs."""
    try:
        handle = (state_dir / LOCK_FILE).open("r")
    except FileNotFoundError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(handle) or -1
        fcntl.flock(handle, fcntl.LOCK_UN)
        return None


def check_not_running(state_dir: Path) -> None:
    """Raise ``ConflictError`` if a platform runs in ``state_dir``."""
    pid = running_pid(state_dir)
    if pid is not None:
        raise _already_running(state_dir, pid if pid > 0 else None)


def write_run_file(state_dir: Path, info: dict[str, Any]) -> None:
    """Say that the platform in ``state_dir`` is up (written last, atomically)."""
    tmp = state_dir / f".{RUN_FILE}.tmp"
    tmp.write_text(json.dumps(info, indent=2))
    tmp.replace(state_dir / RUN_FILE)


def read_run_file(state_dir: Path) -> dict[str, Any] | None:
    """What :func:`write_run_file` wrote, or None."""
    try:
        info = json.loads((state_dir / RUN_FILE).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def remove_run_file(state_dir: Path) -> None:
    """Forget that the platform is up."""
    with contextlib.suppress(FileNotFoundError):
        (state_dir / RUN_FILE).unlink()


def log_tail(state_dir: Path, lines: int = _TAIL_LINES) -> str:
    """The last lines of the platform's log."""
    try:
        text = (state_dir / LOG_FILE).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def start_background(state_dir: Path, *, demo: Path | None, timeout: float) -> dict[str, Any]:
    """Start ``fox up --foreground`` detached, logging to the state directory; wait until up.

    Returns the run file's contents.

    Raises:
        ConflictError: a platform already runs there.
        KubeFoxError: the platform exited while starting (the log's tail is in
            the message).
        DeadlineExceededError: it was not up within ``timeout`` seconds (it is
            stopped).
    """
    check_not_running(state_dir)
    log = state_dir / LOG_FILE
    log.parent.mkdir(parents=True, exist_ok=True)
    remove_run_file(state_dir)
    command = [sys.executable, "-m", "kubefox.cli", "up", "--foreground"]
    command += ["--state-dir", str(state_dir)]
    if demo is not None:
        command += ["--demo", str(demo)]
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in this terminal must not reach it
            close_fds=True,
        )
    deadline = time.monotonic() + timeout
    while True:
        info = read_run_file(state_dir)
        if info is not None and info.get("pid") == process.pid:
            return info
        code = process.poll()
        if code is not None:
            raise KubeFoxError(
                message=f"the platform stopped while starting (exit {code}); "
                f"the end of {log}:\n{log_tail(state_dir)}",
                exit_code=code,
            )
        if time.monotonic() > deadline:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
            raise DeadlineExceededError(
                message=f"the platform was not up within {timeout:g}s; see {log}"
            )
        time.sleep(_POLL)


def stop(state_dir: Path, *, timeout: float) -> int | None:
    """Ask the platform in ``state_dir`` to stop (SIGTERM); return its PID once it has.

    Returns None if none was running.

    Raises:
        DeadlineExceededError: it still ran after ``timeout`` seconds.
    """
    pid = running_pid(state_dir)
    if pid is None:
        return None
    if pid > 0:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while running_pid(state_dir) is not None:
        if time.monotonic() > deadline:
            raise DeadlineExceededError(
                message=f"the platform (pid {pid}) still runs {timeout:g}s after being asked "
                f"to stop; see {state_dir / LOG_FILE}, or end it with `kill -9 {pid}`"
            )
        time.sleep(_POLL)
    return pid
