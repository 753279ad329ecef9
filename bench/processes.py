"""Child processes of a benchmark: started, awaited until ready, measured and always stopped.

Every server a scenario needs runs in its own process (as it would in
production, and so that the load generator never shares an event loop with
what it measures). A child announces that it is ready by printing one JSON
line on stdout (where it listens, which pids it owns); it stops on SIGTERM or
when its stdin closes. Nothing binds a fixed port: children bind port 0 and
report what they got.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

ROOT = Path(__file__).resolve().parent.parent


def python_module(module: str, *args: str) -> list[str]:
    """The command line running ``python -m module args`` with this interpreter."""
    return [sys.executable, "-m", module, *args]


class Child:
    """One child process, in its own session so a group kill reaches its children too."""

    def __init__(self, name: str, args: list[str], *, env: dict[str, str] | None = None) -> None:
        self.name = name
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix=f"bench-{name}-", suffix=".log", delete=False
        )
        self.process = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def read_json(self, timeout: float) -> Any:
        """The next JSON line the child prints; raises if it exits or is silent too long."""
        stdout = self.process.stdout
        if stdout is None:  # pragma: no cover - always piped
            raise RuntimeError("no stdout")
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.name} said nothing in {timeout:g}s{self.tail()}")
                if selector.select(left):
                    line = stdout.readline()
                    if not line:
                        raise RuntimeError(f"{self.name} exited{self.tail()}")
                    text = line.decode().strip()
                    if text.startswith(("{", "[")):
                        return json.loads(text)

    def send_line(self, text: str = "") -> None:
        """Write ``text`` and a newline to the child's stdin."""
        stdin = self.process.stdin
        if stdin is None:  # pragma: no cover - always piped
            raise RuntimeError("no stdin")
        stdin.write(text.encode() + b"\n")
        stdin.flush()

    def tail(self, lines: int = 30) -> str:
        """The end of the child's stderr, to explain a failure."""
        self._log.flush()
        text = Path(self._log.name).read_text(errors="replace").splitlines()[-lines:]
        return ("\n--- " + self.name + " stderr ---\n" + "\n".join(text)) if text else ""

    def stop(self, grace: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL to the whole group after ``grace``; idempotent."""
        process = self.process
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        # The group may hold grandchildren that outlived their parent (a crash).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._log.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._log.name)
        return process.returncode

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MiB (``VmRSS`` of ``/proc/<pid>/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise LookupError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time ``pid`` has used so far (``/proc/<pid>/stat``)."""
    # The command name (field 2) may hold spaces; the fields after it do not.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
