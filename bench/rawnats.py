"""``python -m bench.rawnats CLIENT respond|relay|request NATS SUBJECT [...]``: hop baselines.

Raw request-reply between processes, on uvloop like every platform process:
the physical limit of a hop on this machine
(``../shared/reference/dependencies.md`` §3b). CLIENT is ``nats-py`` or
``natsio`` (:mod:`kubefox.natsio`, our asyncio.Protocol client: handlers run
synchronously inside the socket read). ``respond`` subscribes to SUBJECT in a
queue group and answers every message with its own data; ``relay SUBJECT
TARGET`` republishes every message on SUBJECT to TARGET keeping its reply
subject, as the broker relays (a broker with no logic); ``request SUBJECT
CALLS SIZE`` warms up, prints ``{"warm": true}``, then for every line read
on stdin (until it closes) sends CALLS requests of SIZE bytes one after
another and prints the duration of each in nanoseconds and the CPU time it
used for them, as JSON: one round.
NATS is a URL, or the JSON of :class:`~kubefox.core.nats_options.NatsConnectOptions`
(with security on: the CA, a ``.creds`` file and the inbox prefix), which both
clients use the same way.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import nats
import uvloop
from nats.aio.msg import Msg

from kubefox import natsio
from kubefox.core.nats_options import NatsConnectOptions

WARM_UP = 500
CLIENTS = ("nats-py", "natsio")


def nats_options(text: str, name: str) -> NatsConnectOptions:
    """The options in ``text``: a URL, or a JSON object of NatsConnectOptions' fields."""
    if not text.startswith("{"):
        return NatsConnectOptions(url=text, name=name)
    fields = json.loads(text)
    return NatsConnectOptions(
        url=fields["url"],
        name=name,
        ca_file=Path(fields["ca_file"]) if fields.get("ca_file") else None,
        creds_file=Path(fields["creds_file"]) if fields.get("creds_file") else None,
        inbox_prefix=fields.get("inbox_prefix"),
    )


async def _announce_and_wait(subject: str) -> None:
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    sys.stdout.write(json.dumps({"subscribed": subject}) + "\n")
    sys.stdout.flush()
    await stopping.wait()


async def respond(url: str, subject: str, target: str | None = None) -> None:
    client = await nats.connect(**nats_options(url, "bench-responder").nats_py_kwargs())

    async def answer(msg: Msg) -> None:
        await msg.respond(msg.data)

    async def relay(msg: Msg) -> None:
        await client.publish(target or "", msg.data, reply=msg.reply)

    await client.subscribe(subject, queue="bench", cb=answer if target is None else relay)
    await client.flush()
    await _announce_and_wait(subject)
    await client.drain()


async def respond_natsio(url: str, subject: str, target: str | None = None) -> None:
    client = await natsio.connect(nats_options(url, "bench-responder"))
    publish = client.publish

    def answer(
        subject: str, reply: str, data: natsio.Payload, headers: natsio.Headers | None
    ) -> None:
        publish(reply, data)

    def relay(
        subject: str, reply: str, data: natsio.Payload, headers: natsio.Headers | None
    ) -> None:
        publish(target or "", data, reply=reply)

    client.subscribe(subject, answer if target is None else relay, queue="bench")
    await client.flush()
    await _announce_and_wait(subject)
    await client.drain()


async def _timed(call: Callable[[bytes], Awaitable[object]], calls: int, size: int) -> None:
    payload = b"x" * size
    for _ in range(WARM_UP):
        await call(payload)
    # Warm: say so and wait for the go, so the parent measures the other processes from here.
    sys.stdout.write(json.dumps({"warm": True}) + "\n")
    sys.stdout.flush()
    clock = time.perf_counter_ns
    # One round per line read, until stdin closes: the parent alternates rounds of each system.
    while await asyncio.to_thread(sys.stdin.readline):
        samples = []
        cpu = time.process_time()
        for _ in range(calls):
            start = clock()
            await call(payload)
            samples.append(clock() - start)
        cpu = time.process_time() - cpu
        sys.stdout.write(json.dumps({"samples": samples, "cpu_seconds": cpu}) + "\n")
        sys.stdout.flush()


async def request(url: str, subject: str, calls: int, size: int) -> None:
    client = await nats.connect(**nats_options(url, "bench-requester").nats_py_kwargs())
    await _timed(lambda payload: client.request(subject, payload, timeout=5), calls, size)
    await client.close()


async def request_natsio(url: str, subject: str, calls: int, size: int) -> None:
    client = await natsio.connect(nats_options(url, "bench-requester"))
    await _timed(lambda payload: client.request(subject, payload, timeout=5), calls, size)
    await client.close()


def main() -> None:
    library, role, url, subject, *rest = sys.argv[1:]
    if library not in CLIENTS:
        raise SystemExit(f"unknown client {library!r}: one of {', '.join(CLIENTS)}")
    ours = library == "natsio"
    if role == "respond":
        uvloop.run((respond_natsio if ours else respond)(url, subject))
    elif role == "relay":
        uvloop.run((respond_natsio if ours else respond)(url, subject, rest[0]))
    else:
        uvloop.run((request_natsio if ours else request)(url, subject, int(rest[0]), int(rest[1])))


if __name__ == "__main__":
    main()
