"""OTLP export requests (protobuf or JSON) into the store's records, and the replies.

The receiver hands a request body here and gets records back, or an
``InvalidError`` saying what is wrong with the body. Individual spans or log
records that cannot be kept (a trace id of the wrong length, say) are left
out and counted, and the reply reports them as OTLP's *partial success*,
as the specification asks, instead of failing the whole batch.

OTLP/JSON differs from protobuf's canonical JSON in one way: trace and span
ids are hex, not base64. They are converted before parsing.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import json
from collections.abc import Iterable
from typing import Any, Generic, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from kubefox.core.errors import InvalidError
from kubefox.telemetry.records import (
    LogRecord,
    SpanEvent,
    SpanKind,
    SpanRecord,
    StatusCode,
)

_M = TypeVar("_M", bound=Message)
_T = TypeVar("_T")
_E = TypeVar("_E", SpanKind, StatusCode)
_ID_KEYS = frozenset({"traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id"})
_MAX_NS = (1 << 63) - 1


class Encoding(enum.Enum):
    """How an OTLP/HTTP body is encoded."""

    PROTOBUF = "application/x-protobuf"
    JSON = "application/json"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Decoded(Generic[_T]):
    """Records decoded from one request, and how many were left out and why."""

    records: list[_T]
    rejected: int = 0
    reason: str = ""


def _hex_ids(value: Any) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in _ID_KEYS and isinstance(item, str):
                try:
                    out[key] = base64.b64encode(bytes.fromhex(item)).decode()
                except ValueError as exc:
                    raise InvalidError(f"{key} must be hex in OTLP/JSON", value=item[:64]) from exc
            else:
                out[key] = _hex_ids(item)
        return out
    if isinstance(value, list):
        return [_hex_ids(item) for item in value]
    return value


def parse(body: bytes, encoding: Encoding, message: type[_M]) -> _M:
    """Parse ``body`` into a ``message``; ``InvalidError`` saying why it cannot be."""
    name = message.DESCRIPTOR.name
    if encoding is Encoding.PROTOBUF:
        try:
            return message.FromString(body)
        except (DecodeError, ValueError, RecursionError) as exc:
            raise InvalidError(f"the body is not a protobuf {name}", reason=str(exc)) from exc
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidError("the body is not JSON", reason=str(exc)) from exc
    if not isinstance(document, dict):
        raise InvalidError(f"an OTLP/JSON {name} is a JSON object")
    document = _hex_ids(document)
    try:
        return json_format.ParseDict(document, message(), ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise InvalidError(f"the body is not an OTLP/JSON {name}", reason=str(exc)) from exc


def any_value(value: AnyValue) -> Any:  # noqa: PLR0911 - one return per kind of value
    """A JSON value from an OTLP ``AnyValue`` (bytes become base64 text)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None


def attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    """A dict from OTLP key-value pairs (a repeated key keeps its last value)."""
    return {pair.key: any_value(pair.value) for pair in pairs}


def _id(raw: bytes, size: int, *, optional: bool = False) -> str | None:
    if not raw and optional:
        return ""
    if len(raw) != size or not any(raw):
        return None
    return binascii.hexlify(raw).decode()


def _time(value: int) -> int | None:
    return value if 0 <= value <= _MAX_NS else None


def _span(span: Span, resource: dict[str, Any], scope: str) -> SpanRecord | None:
    trace_id = _id(span.trace_id, 16)
    span_id = _id(span.span_id, 8)
    parent = _id(span.parent_span_id, 8, optional=True)
    start = _time(span.start_time_unix_nano)
    end = _time(span.end_time_unix_nano)
    if trace_id is None or span_id is None or parent is None or start is None or end is None:
        return None
    return SpanRecord(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=span.name,
        kind=_enum(SpanKind, span.kind, SpanKind.UNSPECIFIED),
        start_ns=start,
        end_ns=end,
        status_code=_enum(StatusCode, span.status.code, StatusCode.UNSET),
        status_message=span.status.message,
        attributes=attributes(span.attributes),
        resource=resource,
        events=tuple(
            SpanEvent(
                name=event.name,
                time_ns=_time(event.time_unix_nano) or 0,
                attributes=attributes(event.attributes),
            )
            for event in span.events
        ),
        scope=scope,
    )


def decode_traces(body: bytes, encoding: Encoding) -> Decoded[SpanRecord]:
    """The spans of an ``ExportTraceServiceRequest``; bad spans are counted, not kept."""
    request = parse(body, encoding, ExportTraceServiceRequest)
    spans: list[SpanRecord] = []
    rejected = 0
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                record = _span(span, resource, scope_spans.scope.name)
                if record is None:
                    rejected += 1
                else:
                    spans.append(record)
    reason = "spans need a 16-byte trace id, an 8-byte span id and 64-bit times" if rejected else ""
    return Decoded(records=spans, rejected=rejected, reason=reason)


def decode_logs(body: bytes, encoding: Encoding) -> Decoded[LogRecord]:
    """The log records of an ``ExportLogsServiceRequest``; bad records are counted, not kept."""
    request = parse(body, encoding, ExportLogsServiceRequest)
    records: list[LogRecord] = []
    rejected = 0
    for resource_logs in request.resource_logs:
        resource = attributes(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                trace_id = _id(record.trace_id, 16, optional=True)
                span_id = _id(record.span_id, 8, optional=True)
                moment = _time(record.time_unix_nano or record.observed_time_unix_nano)
                if trace_id is None or span_id is None or moment is None:
                    rejected += 1
                    continue
                body_value = any_value(record.body)
                records.append(
                    LogRecord(
                        time_ns=moment,
                        severity_number=int(record.severity_number),
                        severity_text=record.severity_text,
                        body=body_value if isinstance(body_value, str) else _json(body_value),
                        attributes=attributes(record.attributes),
                        resource=resource,
                        trace_id=trace_id,
                        span_id=span_id,
                    )
                )
    reason = "log records need empty or well-sized ids and 64-bit times" if rejected else ""
    return Decoded(records=records, rejected=rejected, reason=reason)


def _json(value: Any) -> str:
    return "" if value is None else json.dumps(value, separators=(",", ":"), default=str)


def _enum(kind: type[_E], value: int, default: _E) -> _E:
    try:
        return kind(value)
    except ValueError:
        return default


def encode(message: Message, encoding: Encoding) -> bytes:
    """``message`` as an OTLP/HTTP body."""
    if encoding is Encoding.PROTOBUF:
        return message.SerializeToString()
    return json_format.MessageToJson(message, indent=None).encode()


def trace_response(decoded: Decoded[SpanRecord], encoding: Encoding) -> bytes:
    """The ``ExportTraceServiceResponse`` for ``decoded`` (with partial success if any)."""
    response = ExportTraceServiceResponse()
    if decoded.rejected:
        response.partial_success.CopyFrom(
            ExportTracePartialSuccess(rejected_spans=decoded.rejected, error_message=decoded.reason)
        )
    return encode(response, encoding)


def logs_response(decoded: Decoded[LogRecord], encoding: Encoding) -> bytes:
    """The ``ExportLogsServiceResponse`` for ``decoded`` (with partial success if any)."""
    response = ExportLogsServiceResponse()
    if decoded.rejected:
        response.partial_success.CopyFrom(
            ExportLogsPartialSuccess(
                rejected_log_records=decoded.rejected, error_message=decoded.reason
            )
        )
    return encode(response, encoding)
