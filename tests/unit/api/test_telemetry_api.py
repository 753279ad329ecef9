"""The telemetry endpoints of the API: described in /openapi.json, answering as described."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from kubefox.api import ApiSettings, create_app
from kubefox.router import ResourceView
from kubefox.store import MemoryStore
from kubefox.store.artifacts import MemoryArtifactStore
from kubefox.telemetry import SpanRecord, TelemetryStore, open_telemetry_store
from kubefox.telemetry import attributes as attr
from kubefox.telemetry.metrics import HopMetrics

TRACE = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture
async def telemetry(tmp_path: Path) -> AsyncIterator[TelemetryStore]:
    store = await open_telemetry_store(f"sqlite:///{tmp_path / 'telemetry.db'}")
    try:
        yield store
    finally:
        await store.aclose()


@pytest.fixture
async def app(telemetry: TelemetryStore) -> AsyncIterator[Starlette]:
    store = MemoryStore()
    view = ResourceView(store, namespace="kubefox-demo")
    metrics = HopMetrics()
    metrics.observe(0.001, metrics.key("httpsrv", "hello-world", "frontend", "d", "qa", 200))
    app = create_app(
        store=store,
        artifacts=MemoryArtifactStore(),
        view=view,
        platform="demo",
        namespace="kubefox-demo",
        settings=ApiSettings.model_validate({"shutdown_grace": 1.0}),
        telemetry=telemetry,
        metrics=metrics.render,
    )
    async with asyncio.TaskGroup() as tasks:
        follower = tasks.create_task(view.run())
        await view.wait_ready()
        try:
            yield app
        finally:
            follower.cancel()


def _client(app: Starlette) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://api.test")


async def test_every_route_of_an_app_with_telemetry_is_in_openapi(app: Starlette) -> None:
    """Traces, logs and /metrics (only served with telemetry on) are described, every method."""
    async with _client(app) as client:
        document: dict[str, Any] = (await client.get("/openapi.json")).json()

    paths = document["paths"]
    served = [route for route in app.routes if isinstance(route, Route)]
    assert {"/api/v1/traces/{id}", "/api/v1/traces", "/api/v1/logs", "/metrics"} <= {
        route.path for route in served
    }
    for route in served:
        described = paths[route.path]
        for method in route.methods or ():
            if method == "HEAD" and "head" not in described:
                assert "get" in described
                continue
            assert method.lower() in described, (route.path, method)
    schemas = document["components"]["schemas"]
    assert {"Trace", "Span", "LogRecord", "Problem"} <= set(schemas)


async def test_the_endpoints_answer_the_documented_statuses_and_fields(
    app: Starlette, telemetry: TelemetryStore
) -> None:
    """A stored span is found by trace and event id; unknown ids are 404; fields as described."""
    start = time.time_ns()
    await telemetry.put_spans(
        [
            SpanRecord(
                trace_id=TRACE,
                span_id="0102030405060708",
                name="GET /qa/hello",
                start_ns=start,
                end_ns=start + 1_000_000,
                attributes={attr.EVENT_ID: "ev-1"},
                resource={attr.SERVICE_NAME: "httpsrv"},
            )
        ]
    )
    async with _client(app) as client:
        document: dict[str, Any] = (await client.get("/openapi.json")).json()
        by_trace = await client.get(f"/api/v1/traces/{TRACE.upper()}")
        by_event = await client.get("/api/v1/traces/ev-1")
        last = await client.get("/api/v1/traces", params={"last": "1"})
        unknown = await client.get("/api/v1/traces/ev-unknown")
        no_query = await client.get("/api/v1/traces")
        logs = await client.get("/api/v1/logs", params={"limit": 5})
        bad_limit = await client.get("/api/v1/logs", params={"limit": 0})
        metrics = await client.get("/metrics")

    paths = document["paths"]
    for response, path, status in (
        (by_trace, "/api/v1/traces/{id}", 200),
        (by_event, "/api/v1/traces/{id}", 200),
        (last, "/api/v1/traces", 200),
        (unknown, "/api/v1/traces/{id}", 404),
        (no_query, "/api/v1/traces", 400),
        (logs, "/api/v1/logs", 200),
        (bad_limit, "/api/v1/logs", 400),
        (metrics, "/metrics", 200),
    ):
        assert response.status_code == status, (path, response.text)
        assert str(status) in paths[path]["get"]["responses"], (path, status)
    trace_schema = document["components"]["schemas"]["Trace"]
    assert set(trace_schema["required"]) <= set(by_trace.json())
    span_schema = document["components"]["schemas"]["Span"]
    (span,) = by_trace.json()["spans"]
    assert set(span_schema["required"]) <= set(span)
    assert set(span) <= set(span_schema["properties"])
    assert by_event.json()["trace_id"] == TRACE
    assert last.json()["trace_id"] == TRACE
    assert logs.json() == []
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "kubefox_hop_duration_seconds_count" in metrics.text
