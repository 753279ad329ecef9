"""``python -m bench.pyload URL CONNECTIONS WARMUP SECONDS``: wrk's job when wrk is missing.

Keeps CONNECTIONS keep-alive HTTP/1.1 connections busy with ``GET URL`` on
uvloop, one request at a time per connection like wrk, and prints one JSON
line with what :class:`bench.load.LoadResult` holds. Latencies of the warm-up
are thrown away. It parses only what it needs (status line, Content-Length),
so one core drives a few ten thousand requests per second: enough to find
the servers' limits here, though wrk, in C, leaves them more CPU.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from typing import cast
from urllib.parse import urlsplit

import uvloop


class _Connection(asyncio.Protocol):
    """One connection sending the next request as soon as the last answer is complete."""

    def __init__(self, request: bytes, record: list[int], state: dict[str, float]) -> None:
        self._request = request
        self._record = record
        self._state = state
        self._buffer = b""
        self._sent = 0
        self._transport: asyncio.Transport | None = None
        self.errors = 0
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # create_connection hands a TCP transport (uvloop's is no asyncio.Transport subclass).
        self._transport = cast("asyncio.Transport", transport)
        self._send()

    def _send(self) -> None:
        if self._transport is None:
            return
        if time.monotonic() >= self._state["end"]:
            self._transport.close()
            return
        self._sent = time.perf_counter_ns()
        self._transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            head_end = self._buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self._buffer[:head_end]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            total = head_end + 4 + length
            if len(self._buffer) < total:
                return
            status = int(head[9:12])
            self._buffer = self._buffer[total:]
            if time.monotonic() >= self._state["measure"]:
                self._record.append(time.perf_counter_ns() - self._sent)
                if not 200 <= status < 400:
                    self.errors += 1
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def run(url: str, connections: int, warmup: float, seconds: float) -> dict[str, object]:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname or "127.0.0.1"
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: bench\r\n\r\n"
    ).encode()
    record: list[int] = []
    now = time.monotonic()
    state = {"measure": now + warmup, "end": now + warmup + seconds}
    loop = asyncio.get_running_loop()
    made = [
        await loop.create_connection(
            lambda: _Connection(request, record, state), host, parts.port or 80
        )
        for _ in range(connections)
    ]
    protocols = [protocol for _, protocol in made]
    await asyncio.gather(*(protocol.closed for protocol in protocols))
    cuts = (
        statistics.quantiles(record, n=100, method="inclusive") if len(record) > 1 else [0.0] * 99
    )
    return {
        "requests": len(record),
        "rps": len(record) / seconds,
        "p50_ms": cuts[49] / 1e6,
        "p90_ms": cuts[89] / 1e6,
        "p99_ms": cuts[98] / 1e6,
        "errors": sum(protocol.errors for protocol in protocols),
    }


def main() -> None:
    url, connections, warmup, seconds = sys.argv[1:5]
    result = uvloop.run(run(url, int(connections), float(warmup), float(seconds)))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
