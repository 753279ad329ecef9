"""OTLP export requests built by hand, for the receiver's and the decoder's tests."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

TRACE_ID = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
ROOT_ID = bytes.fromhex("b7ad6b7169203331")
CHILD_ID = bytes.fromhex("00f067aa0ba902b7")
START = 1_760_000_000_000_000_000


def any_value(value: Any) -> AnyValue:  # noqa: PLR0911 - one return per kind
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    if isinstance(value, dict):
        return AnyValue(kvlist_value=KeyValueList(values=key_values(value)))
    return AnyValue(string_value=str(value))


def key_values(values: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=key, value=any_value(value)) for key, value in values.items()]


RESOURCE = Resource(
    attributes=key_values(
        {"service.name": "httpsrv", "kubefox.platform": "demo", "kubefox.role": "httpsrv"}
    )
)


def traces_request(*spans: Span) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=RESOURCE,
                scope_spans=[
                    ScopeSpans(scope=InstrumentationScope(name="kubefox.test"), spans=list(spans))
                ],
            )
        ]
    )


def root_span(**overrides: Any) -> Span:
    fields: dict[str, Any] = {
        "trace_id": TRACE_ID,
        "span_id": ROOT_ID,
        "name": "GET /hello",
        "kind": Span.SPAN_KIND_SERVER,
        "start_time_unix_nano": START,
        "end_time_unix_nano": START + 5_000_000,
        "attributes": key_values({"kubefox.event.id": "ev-1", "http.response.status_code": 200}),
    }
    fields.update(overrides)
    return Span(**fields)


def child_span() -> Span:
    return Span(
        trace_id=TRACE_ID,
        span_id=CHILD_ID,
        parent_span_id=ROOT_ID,
        name="handler",
        kind=Span.SPAN_KIND_CONSUMER,
        start_time_unix_nano=START + 1_000_000,
        end_time_unix_nano=START + 4_000_000,
        status=Status(code=Status.STATUS_CODE_ERROR, message="boom"),
        events=[
            Span.Event(
                name="exception",
                time_unix_nano=START + 2_000_000,
                attributes=key_values({"exception.type": "ValueError"}),
            )
        ],
        attributes=key_values({"tags": ["a", "b"], "raw": b"\x01\x02", "nested": {"k": 1.5}}),
    )


def logs_request(*records: LogRecord) -> ExportLogsServiceRequest:
    return ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(resource=RESOURCE, scope_logs=[ScopeLogs(log_records=list(records))])
        ]
    )


def log_record(body: Any = "hello", **overrides: Any) -> LogRecord:
    fields: dict[str, Any] = {
        "time_unix_nano": START,
        "severity_number": 9,
        "severity_text": "INFO",
        "body": any_value(body),
        "attributes": key_values({"kubefox.app": "hello-world", "kubefox.component": "backend"}),
        "trace_id": TRACE_ID,
        "span_id": CHILD_ID,
    }
    fields.update(overrides)
    return LogRecord(**fields)
