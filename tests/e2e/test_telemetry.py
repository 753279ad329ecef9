"""Telemetry end to end: one hello-world request, its whole trace, its logs and its metrics.

Real platform (httpsrv, broker, operator, the OTLP receiver and the SQLite
telemetry store), the example app run as real component processes exporting
over OTLP/HTTP, and the real ``fox trace`` and ``fox logs`` executables.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from kubefox.core.errors import NotFoundError
from kubefox.platform import EmbeddedPlatform
from kubefox.telemetry import Trace
from tests.e2e.foxes import fox
from tests.e2e.gitapps import EXAMPLES, TEST_APPS, app_repo
from tests.e2e.platforms import running_platform

pytestmark = pytest.mark.e2e

QA = {"kf-dep": "hello-world-main", "kf-ve": "qa", "kf-sample": "true"}
_EXPORT_WAIT = 30.0  # components export in batches (the SDK's schedule delay is 5 s)


async def _whole_trace(platform: EmbeddedPlatform, event_id: str, spans: int) -> Trace:
    """The trace of ``event_id`` once it holds ``spans`` spans (components export late)."""
    async with asyncio.timeout(_EXPORT_WAIT):
        while True:
            await platform.flush_telemetry()
            try:
                found = await platform.telemetry.trace_for_event(event_id)
            except NotFoundError:
                found = None
            if found is not None and len(found.spans) >= spans:
                return found
            await asyncio.sleep(0.25)


async def _backend_lines(platform: EmbeddedPlatform, trace_id: str) -> None:
    async with asyncio.timeout(_EXPORT_WAIT):
        while True:
            found = await platform.telemetry.logs(trace_id=trace_id)
            if any(record.component == "backend" for record in found):
                return
            await asyncio.sleep(0.25)


def _metric_lines(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(name)]


async def test_one_request_has_one_trace_through_every_hop_with_logs_and_metrics(
    tmp_path: Path,
) -> None:
    """httpsrv → frontend → call → broker → backend spans in one trace, parented hop by hop."""
    repo = app_repo(EXAMPLES / "hello-world", tmp_path / "hello-world")
    state = tmp_path / "state"
    async with running_platform(state, log_level="debug") as (platform, http):
        await platform.publish(repo)
        await platform.apply_path(repo / "hack" / "environments")
        await platform.wait_available("hello-world-main")
        answer = await http.get("/qa/hello", params=QA)
        event_id = answer.headers["kubefox-event-id"]
        trace = await _whole_trace(platform, event_id, spans=5)
        await _backend_lines(platform, trace.trace_id)
        metrics = platform.metrics_text()
        traced = await asyncio.to_thread(
            fox, "trace", event_id, "-o", "json", cwd=tmp_path, state_dir=state
        )
        drawn = await asyncio.to_thread(fox, "trace", "--last", cwd=tmp_path, state_dir=state)
        logged = await asyncio.to_thread(
            fox, "logs", "--trace", trace.trace_id, "-o", "json", cwd=tmp_path, state_dir=state
        )

    assert answer.status_code == 200
    assert answer.text == "👋 Hello World!"
    traceparent = answer.headers["traceparent"]
    assert re.fullmatch(rf"00-{trace.trace_id}-[0-9a-f]{{16}}-[0-9a-f]{{2}}", traceparent)
    assert int(traceparent[-2:], 16) & 1  # sampled

    assert traced.returncode == 0, traced.stderr
    document: dict[str, Any] = json.loads(traced.stdout)
    assert document["trace_id"] == trace.trace_id
    spans = {(span["service"], span["name"]): span for span in document["spans"]}
    by_id = {span["span_id"]: span for span in document["spans"]}
    services = {span["service"] for span in document["spans"]}
    assert "httpsrv" in services
    assert "broker" in services
    assert any(s.startswith("hello-world-frontend-") for s in services)
    assert any(s.startswith("hello-world-backend-") for s in services)

    root = spans["httpsrv", "GET /qa/hello"]
    assert root["parent_span_id"] is None
    assert traceparent.split("-")[2] == root["span_id"]
    assert root["attributes"]["http.response.status_code"] == 200
    assert root["attributes"]["kubefox.event.id"] == event_id
    assert root["attributes"]["kubefox.app"] == "hello-world"
    assert root["attributes"]["kubefox.component"] == "frontend"
    assert root["attributes"]["kubefox.event.context.virtual_environment"] == "qa"
    assert root["attributes"]["kubefox.event.context.app_deployment"] == "hello-world-main"

    frontend = next(s for s in document["spans"] if s["service"].startswith("hello-world-front"))
    frontend_handler = next(s for s in document["spans"] if s["parent_span_id"] == root["span_id"])
    assert frontend_handler["service"] == frontend["service"]
    assert frontend_handler["kind"] == "server"
    call = next(s for s in document["spans"] if s["name"] == "Send REQUEST to backend")
    assert call["parent_span_id"] == frontend_handler["span_id"]
    broker = next(s for s in document["spans"] if s["service"] == "broker")
    assert broker["parent_span_id"] == call["span_id"]
    assert broker["name"].startswith("Route REQUEST from hello-world-frontend-")
    assert broker["attributes"]["kubefox.component"] == "backend"  # where it was routed
    assert broker["attributes"]["kubefox.hash"]
    assert broker["attributes"]["kubefox.event.source.name"] == "frontend"
    backend = next(s for s in document["spans"] if s["service"].startswith("hello-world-back"))
    assert backend["parent_span_id"] == broker["span_id"]
    assert backend["name"] == "Default route"
    assert backend["attributes"]["http.response.status_code"] == 200
    assert len(document["spans"]) == 5
    assert all(by_id.get(s["parent_span_id"]) or s is root for s in document["spans"])

    assert drawn.returncode == 0, drawn.stderr
    assert "GET /qa/hello" in drawn.stdout
    assert "Send REQUEST to backend" in drawn.stdout

    assert logged.returncode == 0, logged.stderr
    lines = [json.loads(line) for line in logged.stdout.splitlines() if line.strip()]
    backend_lines = [line for line in lines if line["component"] == "backend"]
    assert backend_lines
    assert backend_lines[0]["body"] == "who"
    assert backend_lines[0]["trace_id"] == trace.trace_id
    assert backend_lines[0]["span_id"] == backend["span_id"]
    assert backend_lines[0]["event_id"]

    served = [
        line
        for line in _metric_lines(metrics, "kubefox_hop_duration_seconds_count")
        if 'hop="httpsrv"' in line
    ]
    assert any(
        'app="hello-world"' in line
        and 'component="frontend"' in line
        and 'deployment="hello-world-main"' in line
        and 'virtual_environment="qa"' in line
        and 'code="200"' in line
        for line in served
    ), served
    assert any('hop="broker"' in line for line in _metric_lines(metrics, "kubefox_hop_"))
    assert _metric_lines(metrics, "kubefox_component_instances")


async def test_fox_trace_last_right_after_a_request_shows_its_whole_trace(tmp_path: Path) -> None:
    """The README's ``curl ...?kf-sample=true && fox trace --last``, with no flush between.

    Spans reach the store in batches: each time, the request just made is the
    one drawn, whole (not an older trace, not part of this one).
    """
    repo = app_repo(EXAMPLES / "hello-world", tmp_path / "hello-world")
    state = tmp_path / "state"
    async with running_platform(state) as (platform, http):
        await platform.publish(repo)
        await platform.apply_path(repo / "hack" / "environments")
        await platform.wait_available("hello-world-main")
        answers = []
        for _ in range(2):  # the second must win over the first as "last"
            answers.append(await http.get("/qa/hello", params=QA))
            traced = await asyncio.to_thread(
                fox, "trace", "--last", "-o", "json", cwd=tmp_path, state_dir=state
            )
            assert traced.returncode == 0, traced.stderr
            document: dict[str, Any] = json.loads(traced.stdout)
            trace_id = answers[-1].headers["traceparent"].split("-")[1]

            assert document["trace_id"] == trace_id
            services = sorted(span["service"] for span in document["spans"])
            assert len(services) == 5, services
            assert {"httpsrv", "broker"} <= set(services)
            assert any(s.startswith("hello-world-frontend-") for s in services)
            assert any(s.startswith("hello-world-backend-") for s in services)


async def test_spans_a_handler_starts_join_the_requests_trace(tmp_path: Path) -> None:
    """OpenTelemetry spans of the component's own code sit under its handler's span."""
    hello = app_repo(EXAMPLES / "hello-world", tmp_path / "hello-world")
    traced = app_repo(TEST_APPS / "traced", tmp_path / "traced")
    async with running_platform(tmp_path / "state") as (platform, http):
        await platform.publish(traced)
        await platform.apply_path(hello / "hack" / "environments")
        await platform.wait_available("traced-main")
        answer = await http.get(
            "/qa/work", params={"kf-dep": "traced-main", "kf-ve": "qa", "kf-sample": "true"}
        )
        trace = await _whole_trace(platform, answer.headers["kubefox-event-id"], spans=4)

    assert answer.text == "worked"
    by_name = {span.name: span for span in trace.spans}
    handler = next(s for s in trace.spans if s.scope == "kubefox.component")
    lookup, parse = by_name["lookup"], by_name["parse"]
    assert lookup.trace_id == parse.trace_id == trace.trace_id
    assert lookup.parent_span_id == handler.span_id
    assert parse.parent_span_id == lookup.span_id
    assert lookup.attributes["traced.item"] == "42"
    assert [event.name for event in parse.events] == ["parsed"]
    assert handler.resource["service.name"].startswith("traced-worker-")
    assert lookup.resource["service.name"] == handler.resource["service.name"]
    assert len(trace.spans) == 4  # httpsrv, the handler, lookup, parse
