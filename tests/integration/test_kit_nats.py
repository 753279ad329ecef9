"""The Kit against a real nats-server: hello-world end to end, registration, failures, exits.

The test plays the platform's two other roles itself: httpsrv (it sends a
MatchedEvent to a component's ``cmp`` subject with a NATS request) and the
broker (a tiny relay that takes requests from ``kf.<p>.brk.>`` and republishes
them to the target's ``cmp`` subject, keeping the reply subject). Every test
uses its own platform name, so tests share the session server safely.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import nats
import nats.js.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from kubefox.core import codec, subjects
from kubefox.core.codec import encode_matched
from kubefox.core.events import Category, Component, Event, EventContext, MatchedEvent
from kubefox.kit import (
    BrokerUnavailableError,
    Kit,
    KitSettings,
    Kontext,
    KubeFoxError,
    Response,
    UnavailableError,
)
from kubefox.kit._natsio import MIN_RECORD_AGE
from tests.servers import running_nats_server
from tests.unit.kit import apps

INSTANCES_BUCKET = "kubefox-instances"

pytestmark = pytest.mark.integration

APP = "hello-world"
MAX_SIZE = codec.DEFAULT_MAX_EVENT_SIZE
HASHES = {"frontend": "f" * 32, "backend": "b" * 32}
HTTPSRV = Component(type="HTTPAdapter", name="httpsrv", hash="0" * 7, id="srv1")
BROKER = Component(type="Broker", name="broker", hash="0" * 7, id="brk1")


def fresh_platform() -> str:
    """A platform name no other test uses."""
    return f"t{uuid.uuid4().hex[:12]}"


def kit_settings(platform: str, nats_url: str, name: str, **overrides: object) -> KitSettings:
    """Settings for one component instance of the test app."""
    values: dict[str, object] = {
        "platform": platform,
        "app": APP,
        "name": name,
        "hash": HASHES.get(name, "c" * 32),
        "nats_url": nats_url,
        "instance_id": uuid.uuid4().hex[:10],
        "heartbeat_interval": 0.2,
        "platform_grace": 2.0,
        "shutdown_grace": 2.0,
    }
    values.update(overrides)
    return KitSettings(**values)  # type: ignore[arg-type]


def key_of(s: KitSettings) -> str:
    """The instance's registration key."""
    return f"{s.platform}.{s.app}.{s.name}.{s.hash}.{s.instance_id}"


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    """A test-side NATS connection (httpsrv, broker relay and KV reader)."""
    client = await nats.connect(nats_url)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def kv(nc: Client) -> KeyValue:
    """The instances bucket, created as the platform would if it is not there yet."""
    js = nc.jetstream()
    try:
        return await js.key_value(INSTANCES_BUCKET)
    except nats.js.errors.BucketNotFoundError:
        config = KeyValueConfig(
            bucket=INSTANCES_BUCKET, history=1, ttl=MIN_RECORD_AGE, storage=StorageType.MEMORY
        )
        return await js.create_key_value(config)


async def registered(kv: KeyValue, key: str, *, revisions: int = 1) -> dict[str, object]:
    """Wait (at most 5 s) until ``key`` has been put ``revisions`` times; its record."""
    watcher = await kv.watch(key)
    try:
        seen = 0
        async with asyncio.timeout(5.0):
            while True:
                entry = await watcher.updates(timeout=5.0)  # type: ignore[no-untyped-call]
                if entry is not None and entry.operation is None and entry.value:
                    seen += 1
                    if seen >= revisions:
                        record: dict[str, object] = json.loads(entry.value)
                        return record
    finally:
        await watcher.stop()  # type: ignore[no-untyped-call]


async def absent(kv: KeyValue, key: str) -> bool:
    """Whether ``key`` has no live record."""
    try:
        await kv.get(key)
    except nats.js.errors.KeyNotFoundError:  # deleted keys too
        return True
    return False


@contextlib.asynccontextmanager
async def broker_relay(
    nc: Client, platform: str, env: Mapping[str, object]
) -> AsyncIterator[list[Event]]:
    """Play the broker: forward every component request to its target, keeping the reply."""
    seen: list[Event] = []

    async def forward(msg: Msg) -> None:
        event = codec.decode(msg.data)
        seen.append(event)
        assert event.target is not None
        target_hash = HASHES.get(event.target.name)
        if target_hash is None:
            # nats-server tells only the publisher of a request that nobody listens,
            # so a broker that keeps the caller's reply subject must answer this itself.
            error = UnavailableError(f"no instance of {event.target.name!r}")
            reply = codec.error_event(event, error, source=BROKER)
            await nc.publish(msg.reply, codec.encode(reply))
            return
        subject = subjects.component(platform, APP, event.target.name, target_hash)
        matched = MatchedEvent(event=event, route_id=-1, env=dict(env))
        await nc.publish(subject, encode_matched(matched, max_size=MAX_SIZE), reply=msg.reply)

    sub = await nc.subscribe(
        subjects.broker_wildcard(platform), queue=subjects.BROKER_QUEUE, cb=forward
    )
    try:
        yield seen
    finally:
        await sub.unsubscribe()


async def httpsrv_call(
    nc: Client,
    platform: str,
    name: str,
    *,
    route_id: int = -1,
    headers: Mapping[str, list[str]] | None = None,
    ttl: float = 10.0,
    env: Mapping[str, object] | None = None,
) -> Event:
    """Play httpsrv: send a genesis request to component ``name`` and return its reply."""
    event = Event(
        type="io.kubefox.http",
        category=Category.REQUEST,
        ttl=int(ttl * 1e9),
        context=EventContext(platform=platform, virtual_environment="qa", app_deployment="main"),
        source=HTTPSRV,
        target=Component(type="KubeFox", app=APP, name=name, hash=HASHES.get(name, "c" * 32)),
        values={"method": "GET", "path": "/qa/hello", "header": dict(headers or {})},
    )
    matched = MatchedEvent(event=event, route_id=route_id, env=dict(env or {}))
    subject = subjects.component(platform, APP, name, HASHES.get(name, "c" * 32))
    msg = await nc.request(subject, encode_matched(matched, max_size=MAX_SIZE), timeout=ttl)
    return codec.decode(msg.data)


@contextlib.asynccontextmanager
async def running(
    kit: Kit, settings: KitSettings, kv: KeyValue
) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``kit`` until the block ends; ready once its registration record is in the KV."""
    run = asyncio.create_task(kit.run(settings))
    ready = asyncio.create_task(registered(kv, key_of(settings)))
    try:
        await asyncio.wait({run, ready}, return_when=asyncio.FIRST_COMPLETED)
        if run.done():
            run.result()
        ready.result()
        yield run
    finally:
        ready.cancel()
        kit.stop()
        async with asyncio.timeout(5.0):
            await asyncio.gather(run, return_exceptions=True)


async def test_hello_world_over_nats(nc: Client, kv: KeyValue, nats_url: str) -> None:
    """frontend asks backend through the broker relay and greets in text or JSON."""
    platform = fresh_platform()
    frontend, _ = apps.frontend()
    front = kit_settings(platform, nats_url, "frontend")
    back = kit_settings(platform, nats_url, "backend")

    async with (
        broker_relay(nc, platform, {"who": "World"}),
        running(apps.backend(), back, kv),
        running(frontend, front, kv),
    ):
        text = await httpsrv_call(nc, platform, "frontend", route_id=0)
        as_json = await httpsrv_call(
            nc, platform, "frontend", route_id=0, headers={"Accept": ["application/json"]}
        )

    assert text.content.decode() == "👋 Hello World!"
    assert text.values["statusCode"] == 200
    assert as_json.content_type == "application/json; charset=UTF-8"
    assert json.loads(as_json.content) == {"msg": "👋 Hello World!"}


async def test_registration_is_kept_fresh_and_removed_on_stop(kv: KeyValue, nats_url: str) -> None:
    """The record is in the KV, re-put every heartbeat, and deleted when the Kit stops."""
    kit = apps.backend()
    s = kit_settings(fresh_platform(), nats_url, "backend", heartbeat_interval=0.05)

    async with running(kit, s, kv):
        record = await registered(kv, key_of(s), revisions=3)

    assert record["platform"] == s.platform
    assert (record["app"], record["name"], record["hash"]) == (APP, "backend", s.hash)
    assert record["id"] == s.instance_id
    assert record["pid"] == os.getpid()
    assert record["definition"] == kit.definition()
    assert str(record["heartbeatAt"]) >= str(record["startedAt"])
    assert await absent(kv, key_of(s))


async def test_a_failing_handler_does_not_stop_the_component(
    nc: Client, kv: KeyValue, nats_url: str
) -> None:
    """An exception becomes an Unexpected error event; the next request succeeds."""
    kit = Kit()
    calls = 0

    @kit.default
    async def default(k: Kontext) -> Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("internal detail")
        return k.text("recovered")

    platform = fresh_platform()
    async with running(kit, kit_settings(platform, nats_url, "backend"), kv):
        failed = await httpsrv_call(nc, platform, "backend")
        succeeded = await httpsrv_call(nc, platform, "backend")

    assert failed.type == "io.kubefox.error"
    error = codec.error_from_event(failed)
    assert type(error) is KubeFoxError
    assert error.http_status == 500
    assert "internal detail" not in str(error)
    assert succeeded.content == b"recovered"


async def test_stop_drains_a_slow_handler(nc: Client, kv: KeyValue, nats_url: str) -> None:
    """Stopping waits for an in-flight handler, which still answers; then it deregisters."""
    kit = Kit()
    started = asyncio.Event()
    gate = asyncio.Event()

    @kit.default
    async def default(k: Kontext) -> Response:
        started.set()
        await gate.wait()
        return k.text("slow but done")

    platform = fresh_platform()
    s = kit_settings(platform, nats_url, "backend")
    run = asyncio.create_task(kit.run(s))
    await registered(kv, key_of(s))
    call = asyncio.create_task(httpsrv_call(nc, platform, "backend"))
    await asyncio.wait_for(started.wait(), 5.0)

    kit.stop()  # what SIGTERM does
    gate.set()
    reply = await asyncio.wait_for(call, 5.0)
    await asyncio.wait_for(run, 5.0)

    assert reply.content == b"slow but done"
    assert await absent(kv, key_of(s))


async def test_a_dependency_nobody_serves_is_unavailable_at_once(
    nc: Client, kv: KeyValue, nats_url: str
) -> None:
    """With no instance behind the target subject, the caller gets 503 long before its TTL."""
    kit = Kit()
    nobody = kit.component("nobody")

    @kit.default
    async def default(k: Kontext) -> Response:
        try:
            await k.request(nobody)
        except UnavailableError as exc:
            return k.text(f"caught {exc.name}", status=503)
        return k.text("unexpected answer")

    platform = fresh_platform()
    async with (
        broker_relay(nc, platform, {}),
        running(kit, kit_settings(platform, nats_url, "frontend"), kv),
    ):
        started = time.monotonic()
        reply = await httpsrv_call(nc, platform, "frontend", ttl=10.0)
        elapsed = time.monotonic() - started

    assert reply.content == b"caught Unavailable"
    assert reply.values["statusCode"] == 503
    assert elapsed < 1.0


async def test_without_a_broker_requests_are_unavailable_at_once(
    nc: Client, kv: KeyValue, nats_url: str
) -> None:
    """Nobody on the broker subject: nats-server says so at once and the caller gets 503."""
    kit = Kit()
    backend = kit.component("backend")

    @kit.default
    async def default(k: Kontext) -> Response:
        reply = await k.request(backend)
        return k.respond(reply)

    platform = fresh_platform()
    async with running(kit, kit_settings(platform, nats_url, "frontend"), kv):
        started = time.monotonic()
        reply = await httpsrv_call(nc, platform, "frontend", ttl=10.0)
        elapsed = time.monotonic() - started

    assert isinstance(codec.error_from_event(reply), UnavailableError)
    assert elapsed < 1.0


async def test_unreachable_nats_fails_within_the_platform_grace(nats_url: str) -> None:
    """A Kit that cannot reach NATS gives up after the platform grace, not never."""
    # A port that was free a moment ago: nobody listens there.
    with contextlib.closing(__import__("socket").socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = kit_settings(fresh_platform(), f"nats://127.0.0.1:{port}", "backend", platform_grace=0.3)

    with pytest.raises(BrokerUnavailableError, match="cannot reach NATS"):
        await asyncio.wait_for(apps.backend().run(s), 3.0)


async def test_losing_nats_ends_the_run_within_the_grace(tmp_path: Path) -> None:
    """When nats-server goes away for longer than the platform grace, run raises."""
    with running_nats_server(tmp_path) as server:
        client = await nats.connect(server.url)
        try:
            kv = await client.jetstream().create_key_value(
                KeyValueConfig(bucket=INSTANCES_BUCKET, history=1, ttl=MIN_RECORD_AGE)
            )
            s = kit_settings(fresh_platform(), server.url, "backend", platform_grace=0.5)
            run = asyncio.create_task(apps.backend().run(s))
            await registered(kv, key_of(s))
        finally:
            await client.close()

        await server.stop()
        started = time.monotonic()

        with pytest.raises(BrokerUnavailableError, match="lost for more than"):
            await asyncio.wait_for(run, 5.0)
        assert time.monotonic() - started < 0.5 + 2.0


COMPONENT = textwrap.dedent(
    """
    from kubefox.kit import Kit, Kontext, Response

    kit = Kit()

    @kit.default
    async def default(k: Kontext) -> Response:
        return k.text("hi")

    if __name__ == "__main__":
        kit.start()
    """
)


def start_component(tmp_path: Path, environ: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Run a minimal component as its own process, configured through KUBEFOX_KIT_*."""
    script = tmp_path / "component.py"
    script.write_text(COMPONENT, encoding="utf-8")
    env = {**os.environ, **environ}
    return subprocess.Popen(
        [sys.executable, str(script)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def component_environ(s: KitSettings) -> dict[str, str]:
    """The environment the operator would give the instance ``s`` describes."""
    return {
        "KUBEFOX_KIT_PLATFORM": s.platform,
        "KUBEFOX_KIT_APP": s.app,
        "KUBEFOX_KIT_NAME": s.name,
        "KUBEFOX_KIT_HASH": s.hash,
        "KUBEFOX_KIT_INSTANCE_ID": s.instance_id,
        "KUBEFOX_KIT_NATS_URL": s.nats_url,
        "KUBEFOX_KIT_HEARTBEAT_INTERVAL": str(s.heartbeat_interval),
        "KUBEFOX_KIT_PLATFORM_GRACE": str(s.platform_grace),
        "KUBEFOX_KIT_LOG_FORMAT": "json",
    }


def resident_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MB, from Linux's /proc."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    pytest.fail(f"no VmRSS for process {pid}")


async def wait_exit(process: subprocess.Popen[bytes], within: float) -> int:
    """The exit code of ``process``, waited for without blocking the event loop."""
    return await asyncio.wait_for(asyncio.to_thread(process.wait), within)


async def test_sigterm_stops_a_component_process_cleanly(
    tmp_path: Path, nc: Client, kv: KeyValue, nats_url: str
) -> None:
    """``kit.start()`` serves until SIGTERM, then deregisters and exits 0."""
    platform = fresh_platform()
    s = kit_settings(platform, nats_url, "backend")
    process = start_component(tmp_path, component_environ(s))
    try:
        await registered(kv, key_of(s))
        reply = await httpsrv_call(nc, platform, "backend")
        rss = resident_mb(process.pid)

        process.send_signal(signal.SIGTERM)
        code = await wait_exit(process, 5.0)
    finally:
        process.kill()
        process.wait()
        assert process.stderr is not None
        process.stderr.close()

    assert reply.content == b"hi"
    assert rss < 60, f"an idle component uses {rss:.1f} MB resident"
    assert code == 0
    assert await absent(kv, key_of(s))


async def test_a_component_process_exits_3_when_nats_is_gone(tmp_path: Path) -> None:
    """A component cut off from NATS longer than the platform grace exits with code 3."""
    with running_nats_server(tmp_path / "nats") as server:
        client = await nats.connect(server.url)
        s = kit_settings(fresh_platform(), server.url, "backend", platform_grace=0.5)
        process = start_component(tmp_path, component_environ(s))
        try:
            kv = await client.jetstream().create_key_value(
                KeyValueConfig(bucket=INSTANCES_BUCKET, history=1, ttl=MIN_RECORD_AGE)
            )
            await registered(kv, key_of(s))
            await client.close()

            await server.stop()
            code = await wait_exit(process, 5.0)
        finally:
            await client.close()
            process.kill()
            process.wait()
            assert process.stderr is not None
            stderr = process.stderr.read().decode()
            process.stderr.close()

    assert code == 3, stderr
    assert "lost for more than 0.5s" in stderr
