"""HttpAdapter over a fake NATS requester: body limits, routing, error mapping, headers, health."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from kubefox.adapters.http import HEALTH_PATH, HttpAdapter, Limits
from kubefox.core import codec, subjects
from kubefox.core.errors import (
    BrokerUnavailableError,
    ContentTooLargeError,
    DeadlineExceededError,
    KubeFoxError,
    UnavailableError,
)
from kubefox.core.events import CONTENT_TYPE_TEXT, EventContext, MatchedEvent, SpanContext
from kubefox.resources import Platform
from kubefox.router import ResourceView, Router
from kubefox.store import MemoryStore
from kubefox.store.typed import TypedStore
from kubefox.telemetry import attributes as attr
from kubefox.telemetry.logging import add_request_ids
from kubefox.telemetry.tracing import SAMPLED, HopSpan, HopTracer
from tests.unit.adapters.hello import (
    DEPLOYMENT,
    FRONTEND,
    GREETING,
    NAMESPACE,
    platform_resource,
    write_hello_world,
)

QA = f"kf-dep={DEPLOYMENT}&kf-ve=qa"

Answer = Callable[[MatchedEvent], Awaitable[bytes]]


async def greet(matched: MatchedEvent) -> bytes:
    """What the hello-world frontend answers."""
    reply = matched.event.reply(
        source=FRONTEND,
        content=GREETING.encode(),
        content_type=CONTENT_TYPE_TEXT,
        values={"statusCode": 200},
    )
    return codec.encode(reply)


class FakeRequester:
    """Records what would be sent over NATS and answers with ``answer`` (or raises ``error``)."""

    def __init__(self, answer: Answer = greet, *, error: Exception | None = None) -> None:
        self.connected = True
        self.answer = answer
        self.error = error
        self.sent: list[tuple[str, MatchedEvent, float]] = []

    async def request(self, subject: str, data: bytes, *, timeout: float) -> bytes:  # noqa: ASYNC109
        matched = codec.decode_matched(data)
        self.sent.append((subject, matched, timeout))
        if self.error is not None:
            raise self.error
        return await self.answer(matched)


@contextlib.asynccontextmanager
async def routing(platform: Platform | None = None) -> AsyncIterator[Router]:
    """A router over the hello-world resources in a MemoryStore, its view kept current."""
    store = MemoryStore()
    await write_hello_world(TypedStore(store, namespace=NAMESPACE), platform=platform)
    view = ResourceView(store, namespace=NAMESPACE)
    follower = asyncio.create_task(view.run())
    try:
        await view.wait_ready()
        yield Router(view, platform="demo")
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        await store.aclose()


@pytest.fixture
async def router() -> AsyncIterator[Router]:
    async with routing() as router:
        yield router


@pytest.fixture
def requester() -> FakeRequester:
    return FakeRequester()


@pytest.fixture
def app(router: Router, requester: FakeRequester) -> HttpAdapter:
    return HttpAdapter(router, requester, platform="demo", timeout=5.0, max_event_size=4096)


@contextlib.asynccontextmanager
async def client_for(app: HttpAdapter) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8080") as client:
        yield client


async def get(app: HttpAdapter, url: str, **kwargs: Any) -> httpx.Response:
    async with client_for(app) as client:
        return await client.get(url, **kwargs)


async def call(
    app: HttpAdapter, scope: dict[str, Any], messages: list[dict[str, Any]]
) -> tuple[int, dict[bytes, bytes], bytes, int]:
    """Run the raw ASGI app: (status, headers, body, how many messages it received)."""
    pending = list(messages)
    received = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal received
        received += 1
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    await app(scope, receive, send)

    if not sent:
        return 0, {}, b"", received
    start, body = sent
    return start["status"], dict(start["headers"]), body["body"], received


def raw_scope(
    *, query: bytes = QA.encode(), headers: list[tuple[bytes, bytes]] | None = None
) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "scheme": "http",
        "path": "/qa/hello",
        "raw_path": b"/qa/hello",
        "query_string": query,
        "headers": [(b"host", b"localhost"), *(headers or [])],
        "server": ("127.0.0.1", 8080),
    }


async def test_a_routed_request_is_answered_with_the_reply_and_kubefox_headers(
    app: HttpAdapter,
) -> None:
    """The reply's status, body and content type come back with every Kubefox-* header."""
    response = await get(app, f"/qa/hello?{QA}")

    assert response.status_code == 200
    assert response.text == GREETING
    assert response.headers["content-type"] == CONTENT_TYPE_TEXT
    assert response.headers["kubefox-adapter"] == app.key
    assert app.key.startswith("httpsrv-dev-")
    assert response.headers["kubefox-platform"] == "demo"
    assert response.headers["kubefox-virtual-environment"] == "qa"
    assert response.headers["kubefox-app-deployment"] == DEPLOYMENT
    assert "kubefox-release-manifest" not in response.headers


async def test_the_target_receives_the_matched_event_on_its_subject(
    app: HttpAdapter, requester: FakeRequester
) -> None:
    """One request to the frontend's cmp subject: route 0, its env, kf-* stripped, TTL set."""
    response = await get(app, f"/qa/hello?{QA}&x=1", headers={"kf-type": "io.kubefox.http"})

    [(subject, matched, timeout)] = requester.sent
    event = matched.event
    assert subject == subjects.for_component("demo", FRONTEND)
    assert (matched.route_id, matched.env) == (0, {"subPath": "qa"})
    assert event.id == response.headers["kubefox-event-id"]
    assert event.target == FRONTEND
    assert event.source == app.source
    assert event.context == EventContext(
        platform="demo", virtual_environment="qa", app_deployment=DEPLOYMENT
    )
    assert event.values["queryParam"] == {"x": ["1"]}
    assert "Kf-Type" not in event.values["header"]
    assert event.ttl == 5 * 1_000_000_000
    assert 0 < timeout <= 5.0


@pytest.mark.parametrize(
    ("url", "status", "body"),
    [
        ("/qa/hello", 404, "route not found"),
        (f"/qa/hello?kf-dep={DEPLOYMENT}", 400, "invalid: event context is invalid"),
        (f"/prod/hello?{QA}", 404, "route not found"),
        (
            f"/qa/hello?kf-dep={DEPLOYMENT}&kf-ve=nowhere",
            404,
            'not found: VirtualEnvironment "nowhere" not found',
        ),
        (
            "/qa/hello?kf-dep=nothing&kf-ve=qa",
            404,
            'not found: AppDeployment "nothing" not found',
        ),
    ],
)
async def test_routing_errors_are_answered_without_a_request(
    app: HttpAdapter, requester: FakeRequester, url: str, status: int, body: str
) -> None:
    """Route not found, a half context and unknown resources never reach NATS."""
    response = await get(app, url)

    assert (response.status_code, response.text) == (status, body)
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["kubefox-platform"] == "demo"
    assert "kubefox-event-id" in response.headers
    assert requester.sent == []


async def test_an_invalid_context_lists_its_problems_with_the_context_headers(
    app: HttpAdapter,
) -> None:
    """A VE whose data lacks subPath: 400, §9.4 body, VE and deployment headers set."""
    response = await get(app, f"/broken/hello?kf-dep={DEPLOYMENT}&kf-ve=broken")

    assert response.status_code == 400
    assert response.text.startswith("invalid: event context is invalid\n- causes:\n")
    assert "routes[0].subPath" in response.text
    assert "type: VarNotFound" in response.text
    assert response.headers["kubefox-virtual-environment"] == "broken"
    assert response.headers["kubefox-app-deployment"] == DEPLOYMENT


@pytest.mark.parametrize(
    ("error", "status", "body"),
    [
        (
            UnavailableError("nothing subscribes"),
            503,
            f"unavailable: no instance of {FRONTEND.group_key} is running",
        ),
        (
            DeadlineExceededError("no reply"),
            504,
            f"time out: {FRONTEND.group_key} did not reply within 5s",
        ),
        (ContentTooLargeError("too big for nats"), 413, "content too large: too big for nats"),
        (BrokerUnavailableError("connection lost"), 502, "broker unavailable: connection lost"),
    ],
)
async def test_transport_errors_map_to_their_statuses(
    router: Router, error: KubeFoxError, status: int, body: str
) -> None:
    """No responders 503, no reply 504, too large 413, a lost connection 502."""
    app = HttpAdapter(router, FakeRequester(error=error), platform="demo", timeout=5.0)

    response = await get(app, f"/qa/hello?{QA}")

    assert (response.status_code, response.text) == (status, body)
    assert response.headers["kubefox-virtual-environment"] == "qa"


async def test_an_error_event_from_the_component_is_its_status_and_text(router: Router) -> None:
    """A component answering with an Unexpected error event gives 500 ``unexpected error: ...``."""

    async def fail(matched: MatchedEvent) -> bytes:
        error = KubeFoxError("the backend is down")
        return codec.encode(codec.error_event(matched.event, error, source=FRONTEND))

    app = HttpAdapter(router, FakeRequester(fail), platform="demo")

    response = await get(app, f"/qa/hello?{QA}")

    assert (response.status_code, response.text) == (500, "unexpected error: the backend is down")
    assert response.headers["kubefox-app-deployment"] == DEPLOYMENT


async def test_an_unexpected_exception_is_logged_and_answered_500_without_details(
    router: Router,
) -> None:
    """A bug is a 500 ``unexpected error``: the traceback goes to the log, not the client."""
    app = HttpAdapter(router, FakeRequester(error=RuntimeError("secret")), platform="demo")

    with capture_logs() as logs:
        response = await get(app, f"/qa/hello?{QA}")

    assert (response.status_code, response.text) == (500, "unexpected error")
    [entry] = [e for e in logs if e["event"] == "request.crashed"]
    assert entry["event_id"] == response.headers["kubefox-event-id"]
    assert entry["exc_info"] is True


async def test_an_oversized_reply_is_an_unexpected_error(router: Router) -> None:
    """A reply larger than the maximum event size is the component's fault: 500, not 413."""

    async def huge(matched: MatchedEvent) -> bytes:
        return codec.encode(matched.event.reply(source=FRONTEND, content=b"x" * 10_000))

    app = HttpAdapter(router, FakeRequester(huge), platform="demo", max_event_size=4096)

    response = await get(app, f"/qa/hello?{QA}")

    assert response.status_code == 500
    assert response.text.startswith("unexpected error: the reply is too large: event is ")


async def test_a_malformed_reply_is_an_unexpected_error(router: Router) -> None:
    """Bytes that are not an event are the component's fault, not the client's: 500."""

    async def garbage(matched: MatchedEvent) -> bytes:
        return b"\xc1 not msgpack"

    app = HttpAdapter(router, FakeRequester(garbage), platform="demo")

    response = await get(app, f"/qa/hello?{QA}")

    assert response.status_code == 500
    assert response.text.startswith("unexpected error: the reply is not an event")


async def test_a_content_length_over_the_limit_is_refused_before_reading(
    app: HttpAdapter, requester: FakeRequester
) -> None:
    """Content-Length above the maximum event size: 413 at once, the body is never read."""
    scope = raw_scope(headers=[(b"content-length", b"5000")])

    status, headers, body, received = await call(app, scope, [])

    assert status == 413
    assert body.startswith(b"content too large: the body is 5000 bytes")
    assert received == 0
    assert headers[b"kubefox-platform"] == b"demo"
    assert requester.sent == []


async def test_a_streamed_body_over_the_limit_is_413(
    app: HttpAdapter, requester: FakeRequester
) -> None:
    """A chunked body is counted as it arrives and refused once it passes the limit."""
    chunk = {"type": "http.request", "body": b"x" * 1000, "more_body": True}

    status, _, body, received = await call(app, raw_scope(), [chunk] * 10)

    assert status == 413
    assert body == b"content too large: the body exceeds the limit of 4096 bytes"
    assert received == 5
    assert requester.sent == []


async def test_a_streamed_body_within_the_limit_is_joined(
    app: HttpAdapter, requester: FakeRequester
) -> None:
    """Chunks up to the limit are joined into the event's content."""
    messages = [
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.request", "body": b"cd", "more_body": False},
    ]

    status, _, _, _ = await call(app, raw_scope(), messages)

    assert status == 200
    assert requester.sent[0][1].event.content == b"abcd"


async def test_a_body_that_fits_but_whose_event_does_not_is_413(app: HttpAdapter) -> None:
    """The limit applies to the event too: a body of exactly the limit leaves no room."""
    message = {"type": "http.request", "body": b"x" * 4096, "more_body": False}

    status, _, _, _ = await call(app, raw_scope(), [message])

    assert status == 413


async def test_a_client_that_leaves_before_its_body_gets_no_answer(
    app: HttpAdapter, requester: FakeRequester
) -> None:
    """A disconnect while reading the body ends the request quietly."""
    status, _, _, _ = await call(app, raw_scope(), [{"type": "http.disconnect"}])

    assert status == 0
    assert requester.sent == []


async def test_undecodable_header_bytes_are_a_400(app: HttpAdapter) -> None:
    """A header value that is not UTF-8 is a bad request, never a 500."""
    scope = raw_scope(headers=[(b"x-bad", b"\xff")])
    message = {"type": "http.request", "body": b"", "more_body": False}

    status, headers, body, _ = await call(app, scope, [message])

    assert status == 400
    assert body == b"invalid: header 'x-bad' is not valid UTF-8"
    assert b"kubefox-event-id" in headers


async def test_limits_come_from_settings_then_the_platform_resource_then_defaults() -> None:
    """Explicit settings win; unset ones read spec.events of the Platform named after it."""
    resource = platform_resource("demo", timeoutSeconds=7, maxSize="1Ki")
    requester = FakeRequester()
    async with routing(resource) as router:
        from_resource = HttpAdapter(router, requester, platform="demo").limits()
        mixed = HttpAdapter(router, requester, platform="demo", timeout=0.5).limits()
        elsewhere = HttpAdapter(router, requester, platform="other").limits()

    assert from_resource == Limits(timeout=7.0, max_event_size=1024)
    assert mixed == Limits(timeout=0.5, max_event_size=1024)
    assert elsewhere == Limits(timeout=30.0, max_event_size=5 * 1024 * 1024)


@pytest.mark.parametrize(("connected", "status"), [(True, 200), (False, 503)])
async def test_health_reflects_the_nats_connection(
    router: Router, *, connected: bool, status: int
) -> None:
    """The reserved health path answers 200 while NATS is connected, 503 otherwise."""
    requester = FakeRequester()
    requester.connected = connected
    app = HttpAdapter(router, requester, platform="demo")

    response = await get(app, HEALTH_PATH)

    assert response.status_code == status
    assert response.headers["kubefox-adapter"] == app.key
    assert requester.sent == []


async def test_non_http_scopes_are_ignored(app: HttpAdapter) -> None:
    """Lifespan and websocket scopes are not served (both are switched off in the server)."""
    status, _, _, received = await call(app, {"type": "lifespan"}, [])

    assert (status, received) == (0, 0)


class _Spans:
    """A span sink keeping what it is given."""

    def __init__(self) -> None:
        self.spans: list[HopSpan] = []

    def add(self, span: HopSpan) -> None:
        self.spans.append(span)


async def test_a_sampled_request_carries_its_server_span_to_the_target_and_the_client(
    router: Router,
) -> None:
    """The event's parent span, the answer's traceparent and the request's log ids are one span."""
    logged: list[dict[str, Any]] = []

    async def answer(matched: MatchedEvent) -> bytes:
        logged.append(dict(add_request_ids(None, "info", {})))
        return await greet(matched)

    requester = FakeRequester(answer)
    spans = _Spans()
    app = HttpAdapter(
        router, requester, platform="demo", timeout=5.0, tracer=HopTracer(spans, ratio=1.0)
    )

    response = await get(app, f"/qa/hello?{QA}")

    [span] = spans.spans
    [(_, matched, _)] = requester.sent
    trace_id, span_id = span.trace_id.hex(), span.span_id.hex()
    assert response.headers["traceparent"] == f"00-{trace_id}-{span_id}-01"
    assert matched.event.parent_span == SpanContext(
        trace_id=span.trace_id, span_id=span.span_id, flags=SAMPLED
    )
    assert logged == [{"event_id": matched.event.id, "trace_id": trace_id, "span_id": span_id}]
    assert span.all_attributes()[attr.COMPONENT] == "frontend"


async def test_a_request_s_span_under_a_traceparent_has_its_attributes(router: Router) -> None:
    """Built when exported: the caller's trace and parent, the route's attributes, the status."""
    spans = _Spans()
    app = HttpAdapter(
        router, FakeRequester(), platform="demo", timeout=5.0, tracer=HopTracer(spans, ratio=0.0)
    )
    caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    response = await get(app, f"/qa/hello?{QA}", headers={"traceparent": caller})

    [span] = spans.spans
    assert (span.trace_id.hex(), span.parent_span_id.hex()) == (
        "0af7651916cd43dd8448eb211c80319c",
        "b7ad6b7169203331",
    )
    assert (span.name, span.kind, span.status_code) == ("GET /qa/hello", 2, 0)
    values = span.all_attributes()
    assert values[attr.EVENT_ID] == response.headers["kubefox-event-id"]
    assert (values["http.request.method"], values["url.path"]) == ("GET", "/qa/hello")
    assert values[attr.HTTP_STATUS_CODE] == 200
    assert (values[attr.APP], values[attr.COMPONENT]) == ("hello-world", "frontend")
    assert values[attr.VIRTUAL_ENVIRONMENT] == "qa"


async def test_a_failed_request_s_span_is_an_error_with_its_exception(router: Router) -> None:
    """A request the target never answered: the span ends as an error, its status 504."""
    requester = FakeRequester(error=DeadlineExceededError("no answer"))
    spans = _Spans()
    app = HttpAdapter(router, requester, platform="demo", timeout=5.0, tracer=HopTracer(spans))

    response = await get(app, f"/qa/hello?{QA}")

    [span] = spans.spans
    assert response.status_code == 504
    assert span.status_code == 2  # ERROR
    assert span.attributes[attr.HTTP_STATUS_CODE] == 504
    [(name, _, values)] = span.events
    assert name == "exception"
    assert values["exception.type"].endswith("DeadlineExceededError")


async def test_an_unsampled_request_carries_no_span(router: Router) -> None:
    """At ratio 0 without kf-sample: no span, no traceparent, no parent span in the event."""
    requester = FakeRequester()
    spans = _Spans()
    app = HttpAdapter(
        router, requester, platform="demo", timeout=5.0, tracer=HopTracer(spans, ratio=0.0)
    )

    response = await get(app, f"/qa/hello?{QA}")

    [(_, matched, _)] = requester.sent
    assert spans.spans == []
    assert "traceparent" not in response.headers
    assert matched.event.parent_span is None
