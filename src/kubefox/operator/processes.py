"""One component process: its identity, environment and log, and how it is started and stopped.

The :class:`~kubefox.operator.local.LocalScheduler` decides *when* a process of
an instance set runs; this module holds what it takes to run *one*: the fresh
instance id, the little of the operator's environment a child may inherit,
the spawn itself (a new session, output appended to the set's log) and the
:class:`ComponentProcess` handle the supervisor signals and waits on. Kept
apart because during a credential renewal two processes of one instance set
are alive at once, each with its own handle.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
import signal
import string
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import structlog

log = structlog.get_logger(__name__)

#: The file a component directory must hold; it is what gets run.
ENTRY_POINT = "main.py"
#: Environment variable carrying the instance id, fresh for every start.
INSTANCE_ID_VAR = "KUBEFOX_KIT_INSTANCE_ID"

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
class ComponentProcess:
    """A started component process and its timeline (``loop.time()`` values).

    ``renew_at`` and ``expires_at`` are ``None`` when the process has no
    credential, or one that does not expire.
    """

    process: asyncio.subprocess.Process
    instance_id: str
    started: float
    renew_at: float | None = None
    expires_at: float | None = None

    @property
    def pid(self) -> int:
        """The process id (also its process group id)."""
        return self.process.pid

    @property
    def alive(self) -> bool:
        """Whether the process has not been reaped yet."""
        return self.process.returncode is None

    def signal(self, signum: signal.Signals) -> None:
        """Send ``signum`` to the process's group; nothing if the group is gone."""
        # The process leads its own group (start_new_session), so its pid is the
        # group id; the group may outlive the leader if it forked.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

    async def halt(self, grace: float) -> int:
        """SIGTERM, up to ``grace`` seconds, then SIGKILL; the exit status."""
        self.signal(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                return await self.process.wait()
        self.signal(signal.SIGKILL)
        return await self.process.wait()


async def spawn(
    python: str, directory: Path, env: Mapping[str, str], log_path: Path, instance_id: str
) -> asyncio.subprocess.Process:
    """Start ``<python> main.py`` in ``directory``, its output appended to ``log_path``.

    Raises:
        OSError: the process could not be started (also noted in the log).
    """
    with open_log(log_path) as output:
        output.write(f"--- {now()} kubefox: starting instance {instance_id}\n".encode())
        output.flush()
        try:
            return await asyncio.create_subprocess_exec(
                python,
                ENTRY_POINT,
                cwd=directory,
                env=dict(env),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            output.write(f"--- {now()} kubefox: cannot start: {exc}\n".encode())
            raise


def open_log(path: Path) -> BinaryIO:
    """``path`` opened for appending (a line to a local file is quick to write)."""
    # The child gets its own descriptor.
    return path.open("ab")


def note(path: Path, line: str) -> None:
    """Append a ``--- <time> kubefox: <line>`` line to the log at ``path``."""
    with open_log(path) as output:
        output.write(f"--- {now()} kubefox: {line}\n".encode())


def now() -> str:
    """The current time as the log lines give it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def rotate_log(path: Path, limit: int) -> None:
    """Move ``path`` to ``<path>.1`` if it has grown past ``limit`` bytes."""
    try:
        if path.stat().st_size > limit:
            path.replace(path.with_name(path.name + ".1"))
            log.info("instance.log_rotated", log=str(path))
    except FileNotFoundError:
        return
