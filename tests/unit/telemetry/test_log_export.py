"""OtelLogForwarder: structlog lines become OpenTelemetry log records the store can index."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
import structlog
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider

from kubefox.telemetry import attributes as attr
from kubefox.telemetry.log_export import OtelLogForwarder
from kubefox.telemetry.logging import configure_logging

TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "00f067aa0ba902b7"


@pytest.fixture
def exported() -> Iterator[InMemoryLogRecordExporter]:
    exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]  # the SDK leaves it unannotated
    yield exporter
    exporter.shutdown()


@pytest.fixture
def forwarder(exported: InMemoryLogRecordExporter) -> Iterator[OtelLogForwarder]:
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exported))
    yield OtelLogForwarder(provider.get_logger("kubefox.test"))
    provider.shutdown()


def test_bound_keys_become_the_indexed_attributes(
    forwarder: OtelLogForwarder, exported: InMemoryLogRecordExporter
) -> None:
    """event_id, app, component and virtual_environment get kubefox's attribute names."""
    event = {
        "event": "said hello",
        "level": "warning",
        "event_id": "ev-1",
        "app": "hello-world",
        "component": "backend",
        "virtual_environment": "qa",
        "who": "world",
        "count": 3,
        "items": [1, 2],
        "timestamp": "2026-01-01T00:00:00Z",
    }

    passed_on = forwarder(None, "warning", dict(event))

    assert passed_on == event
    (record,) = [data.log_record for data in exported.get_finished_logs()]
    assert record.body == "said hello"
    assert record.severity_text == "WARN"
    assert dict(record.attributes or {}) == {
        attr.EVENT_ID: "ev-1",
        attr.APP: "hello-world",
        attr.COMPONENT: "backend",
        attr.VIRTUAL_ENVIRONMENT: "qa",
        "who": "world",
        "count": 3,
        "items": "[1, 2]",
    }


def test_the_active_span_is_the_record_s_trace_context(
    forwarder: OtelLogForwarder, exported: InMemoryLogRecordExporter
) -> None:
    """A line logged inside a span carries that span's trace and span ids."""
    tracer = TracerProvider().get_tracer("test")

    with tracer.start_as_current_span("handler") as span:
        forwarder(None, "info", {"event": "inside"})

    (data,) = exported.get_finished_logs()
    assert data.log_record.trace_id == span.get_span_context().trace_id
    assert data.log_record.span_id == span.get_span_context().span_id


def test_bound_trace_ids_stand_in_without_a_span(
    forwarder: OtelLogForwarder, exported: InMemoryLogRecordExporter
) -> None:
    """trace_id/span_id bound to the logger give the context when no span is active."""
    forwarder(None, "info", {"event": "outside", "trace_id": TRACE, "span_id": SPAN})
    forwarder(None, "info", {"event": "garbage", "trace_id": "xyz", "span_id": SPAN})

    first, second = (data.log_record for data in exported.get_finished_logs())
    assert f"{first.trace_id:032x}" == TRACE
    assert f"{first.span_id:016x}" == SPAN
    assert not second.trace_id


def test_configure_logging_forwards_every_line(
    forwarder: OtelLogForwarder,
    exported: InMemoryLogRecordExporter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """configure_logging(forward=[...]) runs the forwarder for each line it renders."""
    monkeypatch.setattr("sys.stderr", io.StringIO())
    configure_logging(log_format="json", forward=[forwarder])
    try:
        structlog.get_logger("t").bind(event_id="ev-9").error("broker.failed", code=15)
    finally:
        structlog.reset_defaults()

    (data,) = exported.get_finished_logs()
    assert data.log_record.body == "broker.failed"
    assert data.log_record.severity_text == "ERROR"
    assert dict(data.log_record.attributes or {})[attr.EVENT_ID] == "ev-9"
