"""Load with component instances killed on a schedule: nothing acknowledged lost, nothing hangs.

``python -m tests.faults.load_with_kills [--clients 50] [--seconds 60] [--kill-every 10]``
starts an embedded platform in a temporary directory, deploys the ``steady``
app (front -> broker -> back) with a second replica of each component on a
second process supervisor, then for ``--seconds``:

* ``--clients`` HTTP clients send ``GET /steady/chain`` back to back;
* a writer creates VirtualEnvironments through the store, one every 20 ms;
* every ``--kill-every`` seconds one of the four instances is SIGKILLed, in turn
  (the operator's front, the operator's back, the second node's front, its
  back); its supervisor starts it again.

The clients run in a child process, so that they do not compete with httpsrv
and the broker for this process's event loop; the report also gives the
longest stall of that loop (on a loaded machine, time spent queued before
httpsrv reads a request is not covered by the event's deadline).

It prints one JSON document: requests by status, latencies, the slowest
request against the event timeout, writes acknowledged and lost, kills and
restarts. ``make fuzz`` runs the full version; ``tests/faults/test_load_with_kills.py``
runs a short one in ``make test`` with the same code.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kubefox.operator import LocalScheduler
from kubefox.platform import EmbeddedPlatform
from tests.e2e.platforms import running_platform
from tests.faults.harness import (
    MARGIN,
    STEADY,
    Outcome,
    Sent,
    Writes,
    by_status,
    deploy,
    keep_writing,
    replica_spec,
    second_node,
    stored_names,
)

CONTEXT = {"kf-dep": "steady-main", "kf-ve": "steady"}
#: The event timeout of the run: every request must end within it plus a margin.
TIMEOUT = 5.0
_ROOT = Path(__file__).resolve().parents[2]
#: Seconds between two writes: the writer runs in the platform's process, and
#: writing flat out (about 400 a second) would starve httpsrv and the broker.
WRITE_PAUSE = 0.02


def _pid(scheduler: LocalScheduler, component: str) -> int | None:
    states = [s for s in scheduler.instances() if s.component == component]
    return states[0].pid if states else None


def _restarts(scheduler: LocalScheduler) -> int:
    return sum(s.restarts for s in scheduler.instances())


async def _kill_on_schedule(
    platform: EmbeddedPlatform,
    node: LocalScheduler,
    *,
    seconds: float,
    every: float,
    killed: list[dict[str, Any]],
) -> None:
    started = time.monotonic()
    victims = [
        ("operator", platform.scheduler, "front"),
        ("operator", platform.scheduler, "back"),
        ("second node", node, "front"),
        ("second node", node, "back"),
    ]
    turn = 0
    while (due := every * (turn + 1)) < seconds:
        await asyncio.sleep(max(0.0, due - (time.monotonic() - started)))
        where, scheduler, component = victims[turn % len(victims)]
        turn += 1
        pid = _pid(scheduler, component)
        if pid is None:  # still restarting from an earlier kill: nothing to kill
            continue
        os.kill(pid, signal.SIGKILL)
        killed.append(
            {"at": round(time.monotonic() - started, 2), "where": where, "component": component}
        )


async def _load_in_child(url: str, *, clients: int, seconds: float) -> list[Sent]:
    """Run the clients in a child process (see the module docstring); every request they sent."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.faults.load_with_kills",
        "--clients-only",
        url,
        "--clients",
        str(clients),
        "--seconds",
        str(seconds),
        cwd=_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"the load clients exited with {child.returncode}")
    return [
        Sent(at, Outcome(status, text, elapsed)) for at, status, elapsed, text in json.loads(output)
    ]


async def _clients(url: str, *, clients: int, seconds: float) -> list[list[float | str]]:
    """The child process's load: ``clients`` raw keep-alive HTTP/1.1 connections.

    Raw sockets rather than an HTTP library: a library's cost per request, times
    50 clients in one process, made the clients the bottleneck, and time a
    request spent queued in them counted against the platform's deadline.
    """
    host, port = url.removeprefix("http://").rsplit(":", 1)
    query = "&".join(f"{name}={value}" for name, value in CONTEXT.items())
    request = f"GET /steady/chain?{query} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    started = time.monotonic()
    rows: list[list[float | str]] = []

    async def client() -> None:
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        while (at := time.monotonic() - started) < seconds:
            sent = time.monotonic()
            try:
                async with asyncio.timeout(60):
                    if connection is None:
                        connection = await asyncio.open_connection(host, int(port))
                    status, keep = await _exchange(*connection, request)
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                status, keep = 0, False
                rows.append([at, 0, time.monotonic() - sent, f"{type(exc).__name__}: {exc}"])
            else:
                rows.append([at, status, time.monotonic() - sent, ""])
            if not keep and connection is not None:
                connection[1].close()
                connection = None
        if connection is not None:
            connection[1].close()

    async with asyncio.TaskGroup() as tasks:
        for _ in range(clients):
            tasks.create_task(client())
    return rows


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bool]:
    """Send ``request``, read the answer (httpsrv always sends a length); status, keep-alive."""
    writer.write(request)
    await writer.drain()
    status = int((await reader.readuntil(b"\r\n")).split(b" ", 2)[1])
    length, keep = 0, True
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and b"close" in value.lower():
            keep = False
    await reader.readexactly(length)
    return status, keep


async def _watch_loop(stop: asyncio.Event, stalls: list[float]) -> None:
    """Record how late a 50 ms tick of this event loop fires, until ``stop``."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        before = loop.time()
        await asyncio.sleep(0.05)
        stalls.append(loop.time() - before - 0.05)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run(*, clients: int, seconds: float, kill_every: float, workdir: Path) -> dict[str, Any]:
    """Run the scenario; the report as a JSON-ready dict (see the module docstring)."""
    async with running_platform(workdir / "state") as (platform, _):
        await deploy(platform, STEADY, workdir, event_timeout=TIMEOUT)
        async with second_node(platform, workdir / "node2") as node:
            for component in ("front", "back"):
                await node.ensure(replica_spec(platform, "steady", component))
            await platform.registry.wait_for(
                lambda records: len([r for r in records if r.app == "steady"]) == 4, timeout=30
            )
            writes, stop = Writes(), asyncio.Event()
            killed: list[dict[str, Any]] = []
            stalls: list[float] = [0.0]
            async with asyncio.TaskGroup() as tasks:
                watcher = tasks.create_task(_watch_loop(stop, stalls))
                writer = tasks.create_task(
                    keep_writing(platform, writes, stop, prefix="load", pause=WRITE_PAUSE)
                )
                killer = tasks.create_task(
                    _kill_on_schedule(
                        platform, node, seconds=seconds, every=kill_every, killed=killed
                    )
                )
                sent = await _load_in_child(platform.http_url, clients=clients, seconds=seconds)
                stop.set()
                await writer
                await killer
                await watcher
            stored = await stored_names(platform, "load")
            restarts = _restarts(platform.scheduler) + _restarts(node)
    latencies = [s.outcome.elapsed for s in sent]
    lost = sorted(set(writes.acknowledged) - stored)
    return {
        "clients": clients,
        "seconds": seconds,
        "eventTimeout": TIMEOUT,
        "requests": len(sent),
        "perSecond": round(len(sent) / seconds, 1),
        "byStatus": {
            str(status): count for status, count in by_status([s.outcome for s in sent]).items()
        },
        "latency": {
            "p50": round(statistics.median(latencies), 4),
            "p99": round(_percentile(latencies, 0.99), 4),
            "max": round(max(latencies), 4),
        },
        "noAnswer": dict(collections.Counter(s.outcome.text for s in sent if not s.outcome.status)),
        "failures": [
            [round(s.at, 2), s.outcome.status, round(s.outcome.elapsed, 3)]
            for s in sorted(sent, key=lambda s: s.at)
            if s.outcome.status != 200
        ][:100],
        "overDeadline": sum(1 for value in latencies if value > TIMEOUT),
        "overDeadlinePlusMargin": sum(1 for value in latencies if value > TIMEOUT + MARGIN),
        "longestLoopStall": round(max(stalls), 4),
        "writes": {
            "acknowledged": len(writes.acknowledged),
            "failed": dict(writes.failed),
            "lost": len(lost),
            "slowest": round(writes.slowest, 4),
        },
        "kills": killed,
        "restarts": restarts,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.load_with_kills")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--kill-every", type=float, default=10.0)
    parser.add_argument("--clients-only", metavar="URL", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.clients_only:  # the child process of _load_in_child
        sent = asyncio.run(
            _clients(options.clients_only, clients=options.clients, seconds=options.seconds)
        )
        json.dump(sent, sys.stdout)
        return 0
    with tempfile.TemporaryDirectory(prefix="kubefox-load-") as workdir:
        report = asyncio.run(
            run(
                clients=options.clients,
                seconds=options.seconds,
                kill_every=options.kill_every,
                workdir=Path(workdir),
            )
        )
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    ok = report["overDeadlinePlusMargin"] == 0 and report["writes"]["lost"] == 0
    ok = ok and set(report["byStatus"]) <= {"200", "502", "503", "504"}
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
