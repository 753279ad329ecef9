"""The real OpenTelemetry SDK exporting over OTLP/HTTP to the receiver, and to a collector.

A TelemetryServer on a free loopback port stands in for the platform's
embedded receiver; a second one, wrapped to record what it is sent, stands
in for an external collector. The SDK's exporters block while they send, so
flushes run off the event loop that serves them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.trace import SpanKind as OtelSpanKind
from opentelemetry.trace import StatusCode as OtelStatusCode

from kubefox.core.errors import PortUnavailableError
from kubefox.telemetry import SpanKind, StatusCode, TelemetryStore, open_telemetry_store
from kubefox.telemetry import attributes as attr
from kubefox.telemetry.providers import TelemetryProviders, build_providers
from kubefox.telemetry.receiver import Message, Receive, Scope, Send
from kubefox.telemetry.roles import component_telemetry, role_telemetry
from kubefox.telemetry.server import TelemetryServer
from kubefox.telemetry.settings import TelemetrySettings
from kubefox.telemetry.tracing import HopTracer

pytestmark = pytest.mark.integration


class Recorder:
    """ASGI middleware keeping the headers and bodies of what a server is sent.

    It answers ``/v1/metrics`` itself (the receiver keeps traces and logs only).
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.metrics = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests.append((scope["path"], headers, body))
        if scope["path"] == "/v1/metrics":
            self.metrics.set()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return {"type": "http.disconnect"}
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


@contextlib.asynccontextmanager
async def serving(server: TelemetryServer) -> AsyncIterator[TelemetryServer]:
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(server.run())
        async with asyncio.timeout(10):
            await server.started.wait()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[TelemetryStore]:
    store = await open_telemetry_store(f"sqlite:///{tmp_path / 'telemetry.db'}")
    try:
        yield store
    finally:
        await store.aclose()


def emit_request(providers: TelemetryProviders) -> str:
    """One request as the roles would trace it: a server span, a handler, a failing call."""
    tracer = providers.tracer("kubefox.test")
    logger = providers.logger("kubefox.test")
    with tracer.start_as_current_span(
        "GET /hello", kind=OtelSpanKind.SERVER, attributes={attr.EVENT_ID: "ev-42"}
    ) as root:
        with tracer.start_as_current_span(
            "handler",
            attributes={
                attr.APP: "hello-world",
                attr.COMPONENT: "backend",
                attr.VIRTUAL_ENVIRONMENT: "qa",
            },
        ):
            logger.emit(
                body="said hello",
                severity_number=SeverityNumber.INFO,
                severity_text="INFO",
                attributes={
                    attr.APP: "hello-world",
                    attr.COMPONENT: "backend",
                    attr.EVENT_ID: "ev-42",
                },
            )
            with tracer.start_as_current_span("call backend") as call:
                call.set_status(OtelStatusCode.ERROR, "backend timed out")
        return f"{root.get_span_context().trace_id:032x}"


async def test_sdk_spans_and_logs_become_queryable_from_the_store(store: TelemetryStore) -> None:
    """TracerProvider + LoggerProvider → OTLP/HTTP → receiver → one trace and its log line."""
    async with serving(TelemetryServer(store)) as server:
        providers = build_providers(
            TelemetrySettings(embedded_endpoint=server.url), role="httpsrv", platform="demo"
        )
        try:
            trace_id = emit_request(providers)
            assert await providers.aflush()
        finally:
            await providers.aclose()

    trace = await store.trace_for_event("ev-42")
    assert trace.trace_id == trace_id
    assert [(depth, span.name) for depth, span in trace.walk()] == [
        (0, "GET /hello"),
        (1, "handler"),
        (2, "call backend"),
    ]
    root, handler, call = trace.spans
    assert root.kind == SpanKind.SERVER
    assert root.resource[attr.SERVICE_NAME] == "httpsrv"
    assert root.resource[attr.PLATFORM] == "demo"
    assert handler.app == "hello-world"
    assert (call.status_code, call.status_message) == (StatusCode.ERROR, "backend timed out")
    (line,) = await store.logs(trace_id=trace_id)
    assert (line.body, line.severity, line.span_id) == ("said hello", "INFO", handler.span_id)
    assert (line.app, line.component, line.event_id) == ("hello-world", "backend", "ev-42")
    assert (await store.last_trace()).trace_id == trace_id


async def test_an_external_collector_gets_traces_logs_and_metrics_with_its_headers(
    store: TelemetryStore, tmp_path: Path
) -> None:
    """endpoint + headers: the collector receives all three signals; the embedded one too."""
    collector_store = await open_telemetry_store(f"sqlite:///{tmp_path / 'collector.db'}")
    collector = TelemetryServer(collector_store)
    recorder = Recorder(collector.app)
    collector.app = recorder
    try:
        async with serving(TelemetryServer(store)) as embedded, serving(collector):
            settings = TelemetrySettings(
                embedded_endpoint=embedded.url,
                endpoint=collector.url,
                headers={"authorization": "Bearer fox"},
                metrics_interval=0.2,
            )
            providers = build_providers(settings, role="broker", platform="demo")
            try:
                trace_id = emit_request(providers)
                providers.meter("kubefox.test").create_counter("kubefox.events").add(3)
                assert await providers.aflush()
                async with asyncio.timeout(10):
                    await recorder.metrics.wait()
            finally:
                await providers.aclose()

        assert len((await collector_store.trace(trace_id)).spans) == 3
        assert len((await store.trace(trace_id)).spans) == 3
        assert [r.body for r in await collector_store.logs()] == ["said hello"]
    finally:
        await collector_store.aclose()

    paths = {path for path, _, _ in recorder.requests}
    assert {"/v1/traces", "/v1/logs", "/v1/metrics"} <= paths
    assert all(headers["authorization"] == "Bearer fox" for _, headers, _ in recorder.requests)
    metric_names = {
        metric.name
        for path, _, body in recorder.requests
        if path == "/v1/metrics"
        for resource in ExportMetricsServiceRequest.FromString(body).resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert "kubefox.events" in metric_names


async def test_nothing_is_sent_when_telemetry_is_disabled(store: TelemetryStore) -> None:
    """enabled=False: the receiver gets no request at all."""
    server = TelemetryServer(store)
    recorder = Recorder(server.app)
    server.app = recorder
    async with serving(server):
        providers = build_providers(
            TelemetrySettings(enabled=False, embedded_endpoint=server.url),
            role="httpsrv",
            platform="demo",
        )
        emit_request(providers)
        assert await providers.aflush()
        await providers.aclose()

    assert recorder.requests == []


async def test_a_taken_port_is_a_port_unavailable_error(store: TelemetryStore) -> None:
    """Binding a port in use fails clearly instead of uvicorn exiting the process."""
    async with serving(TelemetryServer(store)) as first:
        port = int(first.url.rsplit(":", 1)[1])
        second = TelemetryServer(store, port=port)

        with pytest.raises(PortUnavailableError):
            await second.run()


async def test_stop_before_the_server_starts_makes_run_return_at_once(
    store: TelemetryStore,
) -> None:
    """stop() is idempotent and may come first; url is unknown until listening."""
    server = TelemetryServer(store)
    with pytest.raises(RuntimeError):
        _ = server.url

    server.stop()
    server.stop()
    async with asyncio.timeout(5):
        await server.run()


def _hop_request(tracer: HopTracer) -> str:
    """Two hops as the roles record them: a server span and a failing call under it."""
    root = tracer.start("GET /hello", parent=None, kind="server", attributes={attr.EVENT_ID: "e1"})
    call = tracer.start("Send REQUEST to backend", parent=root.context, kind="client")
    tracer.end(call, status_code=504, error=TimeoutError("backend timed out"))
    tracer.end(root, status_code=200)
    return root.trace_id.hex()


async def test_a_component_s_hop_spans_reach_the_receiver_and_a_collector_as_otlp(
    store: TelemetryStore, tmp_path: Path
) -> None:
    """Packed to the embedded receiver, OTLP protobuf to the collector, with its headers."""
    collector_store = await open_telemetry_store(f"sqlite:///{tmp_path / 'collector.db'}")
    collector = TelemetryServer(collector_store)
    recorder = Recorder(collector.app)
    collector.app = recorder
    try:
        async with serving(TelemetryServer(store)) as embedded, serving(collector):
            settings = TelemetrySettings(
                embedded_endpoint=embedded.url,
                endpoint=collector.url,
                headers={"authorization": "Bearer fox"},
                metrics_interval=0.2,
            )
            role = component_telemetry(
                settings,
                platform="demo",
                app="hello-world",
                name="backend",
                hash="0123abcd",
                instance_id="i-1",
            )
            try:
                assert role.tracer is not None
                assert role.metrics is not None
                trace_id = _hop_request(role.tracer)
                role.metrics.observe(0.01, role.metrics.key("component", "a", "b", "", "", 200))
                assert await role.aflush()
                async with asyncio.timeout(10):
                    await recorder.metrics.wait()
            finally:
                await role.aclose()

        for kept in (await store.trace(trace_id), await collector_store.trace(trace_id)):
            root, call = kept.spans
            assert (root.name, root.kind, root.parent_span_id) == (
                "GET /hello",
                SpanKind.SERVER,
                "",
            )
            assert call.parent_span_id == root.span_id
            assert call.kind == SpanKind.CLIENT
            assert (call.status_code, call.status_message) == (
                StatusCode.ERROR,
                "backend timed out",
            )
            assert [event.name for event in call.events] == ["exception"]
            assert root.service == "hello-world-backend-0123abc"
            assert root.app == "hello-world"
            assert root.attributes[attr.HTTP_STATUS_CODE] == 200
    finally:
        await collector_store.aclose()

    paths = [path for path, _, _ in recorder.requests]
    assert "/v1/traces" in paths
    assert all(headers["authorization"] == "Bearer fox" for _, headers, _ in recorder.requests)
    metric_names = {
        metric.name
        for path, _, body in recorder.requests
        if path == "/v1/metrics"
        for resource in ExportMetricsServiceRequest.FromString(body).resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert "kubefox.hop.duration" in metric_names


async def test_a_platform_role_writes_its_spans_into_the_store_without_http(
    store: TelemetryStore,
) -> None:
    """httpsrv and the broker (store=...) keep their spans with no request to any receiver."""
    server = TelemetryServer(store)
    recorder = Recorder(server.app)
    server.app = recorder
    async with serving(server):
        role = role_telemetry(
            TelemetrySettings(embedded_endpoint=server.url, logs=False, metrics=False),
            role="httpsrv",
            platform="demo",
            store=store,
        )
        try:
            assert role.tracer is not None
            trace_id = _hop_request(role.tracer)
            assert await role.aflush()
        finally:
            await role.aclose()

    trace = await store.trace_for_event("e1")
    assert trace.trace_id == trace_id
    assert [span.name for span in trace.spans] == ["GET /hello", "Send REQUEST to backend"]
    assert trace.spans[0].resource[attr.SERVICE_NAME] == "httpsrv"
    assert [path for path, _, _ in recorder.requests if path != "/v1/logs"] == []
