"""httpsrv against a real nats-server: hello-world end to end, every error status, shutdown.

The frontend component is played by a raw nats-py queue subscription on its
``cmp`` subject, so these tests depend on nothing but httpsrv, the router, the
store and the wire format. Each test gets its own platform name (so its own
subjects) and its own resource bucket.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import nats
import pytest
import yaml
from nats.aio.client import Client
from nats.aio.msg import Msg

from kubefox.adapters.http import HEALTH_PATH, HttpServer, HttpsrvSettings
from kubefox.core import codec, subjects
from kubefox.core.errors import KubeFoxError, PortUnavailableError
from kubefox.core.events import CONTENT_TYPE_TEXT, Event, MatchedEvent
from kubefox.router import ResourceView, Router
from kubefox.store.jetstream import JetStreamStore
from kubefox.store.typed import TypedStore
from tests.unit.adapters.hello import (
    APP,
    BROKEN_VE,
    DEPLOYMENT,
    FRONTEND,
    GREETING,
    NAMESPACE,
    platform_resource,
    write_hello_world,
)

pytestmark = pytest.mark.integration

MAX_SIZE = 4096
QA_QUERY = f"kf-dep={DEPLOYMENT}&kf-ve=qa"
Answer = Callable[[MatchedEvent], Awaitable[Event | None]]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Bed:
    """One test's platform: its name, resource bucket, and a NATS client to play components."""

    nats_url: str
    platform: str
    bucket: str
    client: Client

    def settings(self, **overrides: Any) -> HttpsrvSettings:
        fields: dict[str, Any] = {
            "platform": self.platform,
            "nats_url": self.nats_url,
            "bucket": self.bucket,
            "timeout": 5.0,
            "shutdown_grace": 5.0,
            **overrides,
        }
        return HttpsrvSettings.model_validate(fields)


@pytest.fixture
async def bed(nats_url: str) -> AsyncIterator[Bed]:
    """Hello-world resources (and a Platform with a 4 KiB event limit) in a fresh bucket."""
    client = await nats.connect(nats_url)
    platform = f"t{uuid.uuid4().hex[:12]}"
    bucket = f"test-{uuid.uuid4().hex}"
    try:
        store = await JetStreamStore.open(client, bucket=bucket)
        typed = TypedStore(store, namespace=NAMESPACE)
        await write_hello_world(typed, platform=platform_resource(platform, maxSize=MAX_SIZE))
        yield Bed(nats_url=nats_url, platform=platform, bucket=bucket, client=client)
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def serving(server: HttpServer) -> AsyncIterator[HttpServer]:
    """Run ``server`` until the block ends; fail the test if it cannot start."""
    running = asyncio.create_task(server.run())
    started = asyncio.create_task(server.started.wait())
    done, _ = await asyncio.wait(
        {running, started}, timeout=10, return_when=asyncio.FIRST_COMPLETED
    )
    if started not in done:
        started.cancel()
        if running in done:
            running.result()  # raises why it stopped
        running.cancel()
        pytest.fail("httpsrv did not start within 10s")
    try:
        yield server
    finally:
        server.stop()
        await asyncio.wait_for(running, timeout=10)


@contextlib.asynccontextmanager
async def httpsrv(bed: Bed, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for a running httpsrv of ``bed``'s platform."""
    async with (
        serving(HttpServer(bed.settings(**overrides))) as server,
        httpx.AsyncClient(base_url=server.url, timeout=10) as client,
    ):
        yield client


async def greet(matched: MatchedEvent) -> Event:
    """The hello-world frontend's answer."""
    return matched.event.reply(
        source=FRONTEND,
        content=GREETING.encode(),
        content_type=CONTENT_TYPE_TEXT,
        values={"statusCode": 200},
    )


@contextlib.asynccontextmanager
async def frontend(bed: Bed, answer: Answer = greet) -> AsyncIterator[asyncio.Queue[MatchedEvent]]:
    """Play the frontend: a queue subscription on its cmp subject; yields what it received."""
    received: asyncio.Queue[MatchedEvent] = asyncio.Queue()

    async def on_message(msg: Msg) -> None:
        matched = codec.decode_matched(msg.data)
        received.put_nowait(matched)
        reply = await answer(matched)
        if reply is not None:
            await msg.respond(codec.encode(reply))

    subject = subjects.for_component(bed.platform, FRONTEND)
    queue = subjects.component_queue(bed.platform, APP, FRONTEND.name, FRONTEND.hash)
    subscription = await bed.client.subscribe(subject, queue=queue, cb=on_message)
    await bed.client.flush()  # the server knows the subscription before any request
    try:
        yield received
    finally:
        await subscription.unsubscribe()


def assert_context_headers(response: httpx.Response, bed: Bed, *, ve: str = "qa") -> None:
    assert response.headers["kubefox-adapter"].startswith("httpsrv-dev-")
    assert response.headers["kubefox-event-id"]
    assert response.headers["kubefox-platform"] == bed.platform
    assert response.headers["kubefox-virtual-environment"] == ve
    assert response.headers["kubefox-app-deployment"] == DEPLOYMENT


@pytest.mark.parametrize("where", ["query", "headers"])
async def test_hello_world_answers_through_the_frontend(bed: Bed, where: str) -> None:
    """kf-dep + kf-ve (query or headers) reach the frontend; its reply comes back with headers."""
    context = {"kf-dep": DEPLOYMENT, "kf-ve": "qa", "kf-type": "io.kubefox.http"}
    params = {**context, "kf-sample": "true"} if where == "query" else {"kf-sample": "true"}
    headers = context if where == "headers" else {}

    async with frontend(bed) as received, httpsrv(bed) as client:
        response = await client.get("/qa/hello", params=params, headers=headers)

    assert response.status_code == 200
    assert response.text == GREETING
    assert response.headers["content-type"] == CONTENT_TYPE_TEXT
    assert_context_headers(response, bed)
    matched = received.get_nowait()
    event = matched.event
    assert event.id == response.headers["kubefox-event-id"]
    assert (matched.route_id, matched.env) == (0, {"subPath": "qa"})
    assert event.target == FRONTEND
    assert event.source.key == response.headers["kubefox-adapter"]
    assert event.values["queryParam"] == {"kf-sample": ["true"]}
    assert event.values["url"].endswith("/qa/hello?kf-sample=true")
    assert not {"Kf-Dep", "Kf-Ve", "Kf-Type"} & set(event.values["header"])


async def test_without_a_context_the_route_is_not_found(bed: Bed) -> None:
    """No kf-dep/kf-ve and no release: 404 ``route not found`` naming the platform."""
    async with frontend(bed) as received, httpsrv(bed) as client:
        response = await client.get("/qa/hello")

    assert (response.status_code, response.text) == (404, "route not found")
    assert response.headers["kubefox-platform"] == bed.platform
    assert response.headers["kubefox-event-id"]
    assert received.empty()


async def test_an_app_deployment_without_a_virtual_environment_is_a_bad_request(bed: Bed) -> None:
    """Only kf-dep: 400 ``invalid: event context is invalid``."""
    async with httpsrv(bed) as client:
        response = await client.get("/qa/hello", params={"kf-dep": DEPLOYMENT})

    assert (response.status_code, response.text) == (400, "invalid: event context is invalid")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["kubefox-app-deployment"] == DEPLOYMENT


async def test_a_virtual_environment_missing_a_var_lists_the_problem(bed: Bed) -> None:
    """A VE without subPath: 400, the §9.4 body with VarNotFound at routes[0].subPath."""
    async with httpsrv(bed) as client:
        response = await client.get("/x/hello", params={"kf-dep": DEPLOYMENT, "kf-ve": BROKEN_VE})

    assert response.status_code == 400
    first, _, rest = response.text.partition("\n")
    assert first == "invalid: event context is invalid"
    assert yaml.safe_load(rest) == [
        {
            "causes": [
                {
                    "kind": "AppDeployment",
                    "name": DEPLOYMENT,
                    "observedGeneration": 1,
                    "path": "$.spec.components.frontend.routes[0].subPath",
                }
            ],
            "message": 'Var "subPath" not found but is required.',
            "type": "VarNotFound",
        }
    ]
    assert_context_headers(response, bed, ve=BROKEN_VE)


async def test_the_path_of_another_virtual_environment_is_not_found(bed: Bed) -> None:
    """/prod/hello in the qa context matches no route: 404."""
    async with frontend(bed) as received, httpsrv(bed) as client:
        response = await client.get(f"/prod/hello?{QA_QUERY}")

    assert (response.status_code, response.text) == (404, "route not found")
    assert_context_headers(response, bed)
    assert received.empty()


async def test_an_unknown_virtual_environment_is_not_found(bed: Bed) -> None:
    """kf-ve naming nothing: 404 ``not found: ...``."""
    async with httpsrv(bed) as client:
        response = await client.get("/qa/hello", params={"kf-dep": DEPLOYMENT, "kf-ve": "nope"})

    assert response.status_code == 404
    assert response.text == 'not found: VirtualEnvironment "nope" not found'


async def test_without_a_running_instance_the_answer_is_503_at_once(bed: Bed) -> None:
    """Nobody subscribes to the frontend: 503 ``unavailable`` long before the deadline."""
    async with httpsrv(bed, timeout=10.0) as client:
        started = time.monotonic()
        response = await client.get(f"/qa/hello?{QA_QUERY}")
        elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert response.text == f"unavailable: no instance of {FRONTEND.group_key} is running"
    assert_context_headers(response, bed)
    assert elapsed < 2.0


async def test_an_instance_that_never_answers_times_out_at_the_deadline(bed: Bed) -> None:
    """A frontend that keeps silent: 504 ``time out`` once the timeout is spent, not later."""

    async def silent(matched: MatchedEvent) -> None:
        return None

    async with frontend(bed, silent) as received, httpsrv(bed, timeout=0.5) as client:
        started = time.monotonic()
        response = await client.get(f"/qa/hello?{QA_QUERY}")
        elapsed = time.monotonic() - started

    assert response.status_code == 504
    assert response.text.startswith("time out: ")
    assert_context_headers(response, bed)
    assert received.get_nowait().event.ttl == 500_000_000
    assert 0.45 <= elapsed < 1.5


async def _chunks(total: int, size: int = 512) -> AsyncIterator[bytes]:
    for _ in range(total // size):
        yield b"x" * size


async def test_a_body_over_the_platforms_max_size_is_413(bed: Bed) -> None:
    """The Platform's events.maxSize caps bodies, by Content-Length and while streaming."""
    async with frontend(bed) as received, httpsrv(bed) as client:
        declared = await client.post(f"/qa/hello?{QA_QUERY}", content=b"x" * (MAX_SIZE + 1))
        streamed = await client.post(f"/qa/hello?{QA_QUERY}", content=_chunks(4 * MAX_SIZE))
        small = await client.post(f"/qa/hello?{QA_QUERY}", content=b"hello")

    assert declared.status_code == 413
    assert (
        declared.text
        == f"content too large: the body is {MAX_SIZE + 1} bytes, the limit is {MAX_SIZE} bytes"
    )
    assert streamed.status_code == 413
    assert "transfer-encoding" not in declared.request.headers
    assert streamed.request.headers["transfer-encoding"] == "chunked"
    assert_context_headers(small, bed)
    assert small.status_code == 200
    assert received.get_nowait().event.content == b"hello"


async def test_the_settings_max_event_size_wins_over_the_platforms(bed: Bed) -> None:
    """An explicit max_event_size replaces the Platform resource's."""
    async with frontend(bed), httpsrv(bed, max_event_size=100) as client:
        response = await client.post(f"/qa/hello?{QA_QUERY}", content=b"x" * 200)

    assert response.status_code == 413


async def test_an_error_event_from_the_component_is_its_http_status(bed: Bed) -> None:
    """The frontend answering an Unexpected error event: 500 ``unexpected error: <cause>``."""

    async def fail(matched: MatchedEvent) -> Event:
        error = KubeFoxError("backend exploded")
        return codec.error_event(matched.event, error, source=FRONTEND)

    async with frontend(bed, fail), httpsrv(bed) as client:
        response = await client.get(f"/qa/hello?{QA_QUERY}")

    assert (response.status_code, response.text) == (500, "unexpected error: backend exploded")
    assert_context_headers(response, bed)


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "DELETE", "PATCH", "PROPFIND"])
async def test_any_method_reaches_the_route(bed: Bed, method: str) -> None:
    """Path() routes match every method; HEAD is answered without a body but with its length."""
    async with frontend(bed) as received, httpsrv(bed) as client:
        response = await client.request(method, f"/qa/hello?{QA_QUERY}")

    assert response.status_code == 200
    assert received.get_nowait().event.values["method"] == method
    if method == "HEAD":
        assert response.content == b""
        assert response.headers["content-length"] == str(len(GREETING.encode()))
    else:
        assert response.text == GREETING


async def _exchange(url: str, request: bytes) -> bytes:
    """Send raw bytes, return everything the server writes until it closes the connection."""
    host, _, port = url.removeprefix("http://").rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_malformed_requests_are_400_and_the_server_keeps_serving(bed: Bed) -> None:
    """A broken request line and undecodable header bytes are 400s, never 500s or a crash."""
    server = HttpServer(bed.settings())
    async with frontend(bed), serving(server):
        broken = await _exchange(server.url, b"GARBAGE \x00\x01 NOT-HTTP\r\n\r\n")
        undecodable = await _exchange(
            server.url,
            f"GET /qa/hello?{QA_QUERY} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".encode()
            + b"X-Bad: \xff\xfe\r\n\r\n",
        )
        async with httpx.AsyncClient(base_url=server.url) as client:
            after = await client.get(f"/qa/hello?{QA_QUERY}")

    assert broken.startswith(b"HTTP/1.1 400 ")
    assert undecodable.startswith(b"HTTP/1.1 400 ")
    assert undecodable.endswith(b"invalid: header 'x-bad' is not valid UTF-8")
    assert after.status_code == 200


async def test_health_is_200_while_connected(bed: Bed) -> None:
    """The reserved health path answers 200 ``ok``."""
    async with httpsrv(bed) as client:
        response = await client.get(HEALTH_PATH)

    assert (response.status_code, response.text) == (200, "ok")


async def test_stop_lets_an_in_flight_request_finish_then_stops_listening(bed: Bed) -> None:
    """stop() during a request: the request still gets its answer; then the port is closed."""
    release = asyncio.Event()

    async def slow(matched: MatchedEvent) -> Event:
        await release.wait()
        return await greet(matched)

    server = HttpServer(bed.settings())
    running = asyncio.create_task(server.run())
    await server.started.wait()
    async with frontend(bed, slow) as received, httpx.AsyncClient(base_url=server.url) as client:
        pending = asyncio.create_task(client.get(f"/qa/hello?{QA_QUERY}"))
        await received.get()

        server.stop()
        server.stop()
        release.set()
        response = await pending
        await asyncio.wait_for(running, timeout=10)

        with pytest.raises(httpx.ConnectError):
            await client.get(HEALTH_PATH)

    assert (response.status_code, response.text) == (200, GREETING)
    assert not server.started.is_set()


async def test_stop_before_start_makes_run_return(bed: Bed) -> None:
    """A server stopped before it served returns from run() without serving."""
    server = HttpServer(bed.settings())
    server.stop()

    await asyncio.wait_for(server.run(), timeout=10)

    assert not server.started.is_set()


async def test_a_taken_port_is_port_unavailable(bed: Bed) -> None:
    """Binding a port another socket listens on fails with PortUnavailableError."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = HttpServer(bed.settings(port=taken.getsockname()[1]))

        with pytest.raises(PortUnavailableError):
            await asyncio.wait_for(server.run(), timeout=10)


async def test_a_given_router_and_client_are_used_and_the_client_is_left_open(bed: Bed) -> None:
    """With router= and client=, httpsrv neither connects nor follows the store itself."""
    store = await JetStreamStore.open(bed.client, bucket=bed.bucket)
    view = ResourceView(store, namespace=NAMESPACE)
    follower = asyncio.create_task(view.run())
    try:
        await view.wait_ready()
        router = Router(view, platform=bed.platform)
        server = HttpServer(
            bed.settings(nats_url="nats://127.0.0.1:1"), router=router, client=bed.client
        )
        async with frontend(bed), serving(server), httpx.AsyncClient(base_url=server.url) as client:
            response = await client.get(f"/qa/hello?{QA_QUERY}")
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower

    assert response.status_code == 200
    assert bed.client.is_connected
