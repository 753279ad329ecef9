"""Spans, log records and traces as the telemetry store keeps and returns them.

These are plain value objects, independent of the OpenTelemetry SDK and of
OTLP: the receiver converts OTLP into them (``kubefox.telemetry.otlp``), the
stores keep them, and the renderers draw them. Ids are lowercase hex (32
characters for a trace, 16 for a span), times are Unix nanoseconds, and
attribute values are JSON values (OTLP bytes values arrive base64-encoded).
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Mapping
from typing import Any

from kubefox.core.errors import InvalidError
from kubefox.telemetry import attributes as attr

_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_SPAN_ID = re.compile(r"[0-9a-f]{16}")
_ZERO_TRACE = "0" * 32


class SpanKind(enum.IntEnum):
    """What a span stands for (OTLP's numbering)."""

    UNSPECIFIED = 0
    INTERNAL = 1
    SERVER = 2
    CLIENT = 3
    PRODUCER = 4
    CONSUMER = 5


class StatusCode(enum.IntEnum):
    """How a span ended (OTLP's numbering)."""

    UNSET = 0
    OK = 1
    ERROR = 2


def check_trace_id(trace_id: str) -> str:
    """Return ``trace_id`` in lowercase; ``InvalidError`` unless it is 32 hex digits, not all 0."""
    normal = trace_id.lower()
    if not _TRACE_ID.fullmatch(normal) or normal == _ZERO_TRACE:
        raise InvalidError("a trace id is 32 hex digits, not all zero", trace_id=trace_id)
    return normal


def check_span_id(span_id: str) -> str:
    """Return ``span_id`` in lowercase; ``InvalidError`` unless it is 16 hex digits, not all 0."""
    normal = span_id.lower()
    if not _SPAN_ID.fullmatch(normal) or normal == "0" * 16:
        raise InvalidError("a span id is 16 hex digits, not all zero", span_id=span_id)
    return normal


def _pick(key: str, fallback: str, *sources: Mapping[str, Any]) -> str:
    for source in sources:
        value = source.get(key)
        if value is None and fallback:
            value = source.get(fallback)
        if value is not None and value != "":
            return str(value)
    return ""


class _Indexed:
    """What the store indexes, read from the record's attributes, then its resource."""

    __slots__ = ()
    attributes: Mapping[str, Any]
    resource: Mapping[str, Any]

    @property
    def event_id(self) -> str:
        """The ``kubefox.event.id`` this record is about, or ``""``."""
        return _pick(attr.EVENT_ID, "", self.attributes)

    @property
    def app(self) -> str:
        """The app handling the event, or ``""``."""
        return _pick(attr.APP, attr.COMPONENT_APP, self.attributes, self.resource)

    @property
    def component(self) -> str:
        """The component handling the event, or ``""``."""
        return _pick(attr.COMPONENT, attr.COMPONENT_NAME, self.attributes, self.resource)

    @property
    def virtual_environment(self) -> str:
        """The event's virtual environment, or ``""``."""
        return _pick(attr.VIRTUAL_ENVIRONMENT, "", self.attributes, self.resource)

    @property
    def service(self) -> str:
        """The resource's ``service.name``, or ``""``."""
        return _pick(attr.SERVICE_NAME, "", self.resource)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SpanEvent:
    """A timestamped note on a span (for example ``exception``)."""

    name: str
    time_ns: int
    attributes: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SpanRecord(_Indexed):
    """One finished span.

    ``parent_span_id`` is ``""`` for a root span. ``resource`` holds the
    producing process's resource attributes (``service.name``,
    ``kubefox.platform``, ``kubefox.role``...); ``scope`` is the name of the
    instrumentation that made the span.
    """

    trace_id: str
    span_id: str
    parent_span_id: str = ""
    name: str
    kind: SpanKind = SpanKind.INTERNAL
    start_ns: int
    end_ns: int
    status_code: StatusCode = StatusCode.UNSET
    status_message: str = ""
    attributes: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    resource: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    events: tuple[SpanEvent, ...] = ()
    scope: str = ""

    @property
    def duration_ns(self) -> int:
        """End minus start, never negative (clocks of a sloppy producer may disagree)."""
        return max(0, self.end_ns - self.start_ns)

    @property
    def is_error(self) -> bool:
        """Whether the span ended with status ``ERROR``."""
        return self.status_code == StatusCode.ERROR


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LogRecord(_Indexed):
    """One log line, with the trace context it was written in.

    ``severity_number`` follows OTLP (1-4 trace, 5-8 debug, 9-12 info, 13-16
    warn, 17-20 error, 21-24 fatal, 0 unset). ``body`` is text; a structured
    body arrives JSON-encoded. ``seq`` is given by the store when it keeps the
    record (strictly increasing in the order records were stored; 0 before).
    """

    time_ns: int
    severity_number: int = 0
    severity_text: str = ""
    body: str = ""
    attributes: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    resource: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    trace_id: str = ""
    span_id: str = ""
    seq: int = 0

    @property
    def severity(self) -> str:
        """The severity's name: ``severity_text`` when given, else one derived from the number."""
        if self.severity_text:
            return self.severity_text.upper()
        return severity_name(self.severity_number)


_SEVERITY_NAMES = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")


def severity_name(number: int) -> str:
    """OTLP's short name of a severity number (``UNSET`` for 0 or out of range)."""
    if 1 <= number <= 24:
        return _SEVERITY_NAMES[(number - 1) // 4]
    return "UNSET"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Trace:
    """Every stored span of one trace, ordered by start time (then span id)."""

    trace_id: str
    spans: tuple[SpanRecord, ...]

    @classmethod
    def of(cls, trace_id: str, spans: list[SpanRecord] | tuple[SpanRecord, ...]) -> Trace:
        """A trace from spans in any order."""
        return cls(
            trace_id=trace_id, spans=tuple(sorted(spans, key=lambda s: (s.start_ns, s.span_id)))
        )

    @property
    def start_ns(self) -> int:
        """When the earliest span started."""
        return min(span.start_ns for span in self.spans)

    @property
    def end_ns(self) -> int:
        """When the latest span ended."""
        return max(span.end_ns for span in self.spans)

    @property
    def duration_ns(self) -> int:
        """From the earliest start to the latest end."""
        return max(0, self.end_ns - self.start_ns)

    @property
    def has_error(self) -> bool:
        """Whether any span ended with status ``ERROR``."""
        return any(span.is_error for span in self.spans)

    def roots(self) -> list[SpanRecord]:
        """Spans whose parent is not in the trace: the real root, or orphans of lost spans."""
        ids = {span.span_id for span in self.spans}
        return [span for span in self.spans if span.parent_span_id not in ids]

    def children(self, span_id: str) -> list[SpanRecord]:
        """The spans whose parent is ``span_id``, by start time."""
        return [span for span in self.spans if span.parent_span_id == span_id]

    def walk(self) -> list[tuple[int, SpanRecord]]:
        """Every span with its depth, depth first, children by start time.

        Each span appears once even if a producer sent a parent cycle.
        """
        by_parent: dict[str, list[SpanRecord]] = {}
        for span in self.spans:
            by_parent.setdefault(span.parent_span_id, []).append(span)
        seen: set[str] = set()
        out: list[tuple[int, SpanRecord]] = []
        stack = [(0, span) for span in reversed(self.roots())]
        while stack:
            depth, span = stack.pop()
            if span.span_id in seen:
                continue
            seen.add(span.span_id)
            out.append((depth, span))
            stack.extend((depth + 1, child) for child in reversed(by_parent.get(span.span_id, [])))
        # spans only reachable through a cycle have no root; show them flat at the end
        out.extend((0, span) for span in self.spans if span.span_id not in seen)
        return out
