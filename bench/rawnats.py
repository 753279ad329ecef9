"""``python -m bench.rawnats respond|relay|request NATS_URL SUBJECT [...]``: the hop baselines.

Raw nats-py request-reply between processes, on uvloop like every platform
process: the physical limit of a hop on this machine
(``../shared/reference/dependencies.md`` §3b). ``respond`` subscribes to
SUBJECT in a queue group and answers every message with its own data;
``relay SUBJECT TARGET`` republishes every message on SUBJECT to TARGET
keeping its reply subject, as the broker relays (a broker with no logic);
``request SUBJECT CALLS SIZE`` warms up, prints ``{"warm": true}``, waits for
a line on stdin, then sends CALLS requests of SIZE bytes one after another and
prints the duration of each in nanoseconds and the CPU time it used for them,
as JSON.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time

import nats
import uvloop
from nats.aio.msg import Msg

WARM_UP = 500


async def respond(url: str, subject: str, target: str | None = None) -> None:
    client = await nats.connect(url, name="bench-responder")

    async def answer(msg: Msg) -> None:
        await msg.respond(msg.data)

    async def relay(msg: Msg) -> None:
        await client.publish(target or "", msg.data, reply=msg.reply)

    await client.subscribe(subject, queue="bench", cb=answer if target is None else relay)
    await client.flush()
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    sys.stdout.write(json.dumps({"subscribed": subject}) + "\n")
    sys.stdout.flush()
    await stopping.wait()
    await client.drain()


async def request(url: str, subject: str, calls: int, size: int) -> None:
    client = await nats.connect(url, name="bench-requester")
    payload = b"x" * size
    for _ in range(WARM_UP):
        await client.request(subject, payload, timeout=5)
    # Warm: say so and wait for the go, so the parent measures the other processes from here.
    sys.stdout.write(json.dumps({"warm": True}) + "\n")
    sys.stdout.flush()
    await asyncio.to_thread(sys.stdin.readline)
    clock = time.perf_counter_ns
    samples = []
    cpu = time.process_time()
    for _ in range(calls):
        start = clock()
        await client.request(subject, payload, timeout=5)
        samples.append(clock() - start)
    cpu = time.process_time() - cpu
    await client.close()
    sys.stdout.write(json.dumps({"samples": samples, "cpu_seconds": cpu}) + "\n")


def main() -> None:
    role, url, subject, *rest = sys.argv[1:]
    if role == "respond":
        uvloop.run(respond(url, subject))
    elif role == "relay":
        uvloop.run(respond(url, subject, rest[0]))
    else:
        uvloop.run(request(url, subject, int(rest[0]), int(rest[1])))


if __name__ == "__main__":
    main()
