"""Spans of one hop: the sampling decision, the event's trace context, the attributes.

Every hop of a request (httpsrv, the broker, a component's handler and each
of its calls) starts its span through a :class:`HopTracer`. The decision
whether to record is taken here, before the OpenTelemetry SDK is asked, so an
unsampled request builds no span object, no context and no attribute dict:

* a hop with a parent follows the parent's sampled flag (W3C ``traceparent``
  on HTTP, the event's ``parent_span`` inside the platform);
* ``force`` (``kf-sample=true``) records whatever the parent says;
* only a hop allowed to start a trace (httpsrv) samples a new one, at the
  platform's ratio.

Across processes the trace context travels in :class:`kubefox.core.events.SpanContext`
(raw trace and span id bytes and the W3C flags): :func:`event_span` makes it
from a span, :func:`remote_parent` makes the SDK context from it.

Needs the ``otel`` extra; the Kit imports this module only when its
component has telemetry on.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, Span, SpanKind, TraceFlags
from opentelemetry.trace import SpanContext as OtelSpanContext
from opentelemetry.trace.status import Status, StatusCode

from kubefox.core.events import Event, SpanContext
from kubefox.telemetry import attributes as attr

#: The W3C ``sampled`` trace flag.
SAMPLED = 0x01

_HEX = frozenset("0123456789abcdef")
_KINDS = {
    "internal": SpanKind.INTERNAL,
    "server": SpanKind.SERVER,
    "client": SpanKind.CLIENT,
    "producer": SpanKind.PRODUCER,
    "consumer": SpanKind.CONSUMER,
}


def is_sampled(span: SpanContext | None) -> bool:
    """Whether ``span`` (an event's ``parent_span``) asks its children to record."""
    return span is not None and bool(span.flags & SAMPLED) and len(span.trace_id) == 16


def parse_traceparent(value: str) -> SpanContext | None:
    """The W3C ``traceparent`` header (version 00 form) as a span context; ``None`` if malformed."""
    parts = value.strip().lower().split("-")
    if len(parts) < 4 or len(parts[0]) != 2 or parts[0] == "ff":
        return None
    _, trace_hex, span_hex, flags_hex = parts[:4]
    if (
        len(trace_hex) != 32
        or len(span_hex) != 16
        or len(flags_hex) != 2
        or not _HEX.issuperset(trace_hex + span_hex + flags_hex)
        or trace_hex == "0" * 32
        or span_hex == "0" * 16
    ):
        return None
    return SpanContext(
        trace_id=bytes.fromhex(trace_hex), span_id=bytes.fromhex(span_hex), flags=int(flags_hex, 16)
    )


def format_traceparent(span: SpanContext) -> str:
    """``00-<trace id>-<span id>-<flags>``: the W3C header of ``span``."""
    return f"00-{span.trace_id.hex()}-{span.span_id.hex()}-{span.flags & 0xFF:02x}"


def event_span(span: Span) -> SpanContext:
    """The trace context to put in an event's ``parent_span``: ``span``'s own."""
    context = span.get_span_context()
    return SpanContext(
        trace_id=context.trace_id.to_bytes(16, "big"),
        span_id=context.span_id.to_bytes(8, "big"),
        flags=int(context.trace_flags),
    )


def remote_parent(span: SpanContext) -> Context:
    """The SDK context whose current span is the remote ``span`` (an event's ``parent_span``)."""
    parent = OtelSpanContext(
        trace_id=int.from_bytes(span.trace_id, "big"),
        span_id=int.from_bytes(span.span_id, "big"),
        is_remote=True,
        trace_flags=TraceFlags(span.flags & 0xFF),
    )
    return trace.set_span_in_context(NonRecordingSpan(parent))


def log_ids(span: SpanContext | None) -> dict[str, str]:
    """``trace_id`` and ``span_id`` (hex) to bind to a logger; empty without a span."""
    if span is None or not span.trace_id:
        return {}
    return {"trace_id": span.trace_id.hex(), "span_id": span.span_id.hex()}


def event_attributes(event: Event) -> dict[str, Any]:
    """The attributes every hop puts on its span: the event, its context and its target."""
    context = event.context
    values: dict[str, Any] = {
        attr.EVENT_ID: event.id,
        attr.EVENT_CATEGORY: event.category.name,
    }
    if event.parent_id:
        values[attr.EVENT_PARENT_ID] = event.parent_id
    if event.type:
        values[attr.EVENT_TYPE] = event.type
    if context.virtual_environment:
        values[attr.VIRTUAL_ENVIRONMENT] = context.virtual_environment
    if context.app_deployment:
        values[attr.APP_DEPLOYMENT] = context.app_deployment
    if context.release_manifest:
        values[attr.RELEASE_MANIFEST] = context.release_manifest
    target = event.target
    if target is not None:
        if target.app:
            values[attr.APP] = target.app
        if target.name:
            values[attr.COMPONENT] = target.name
        if target.hash:
            values[attr.HASH] = target.hash
    return values


def end_span(span: Span, *, status_code: int = 0, error: BaseException | None = None) -> None:
    """End ``span`` with the HTTP status of the answer and, if it failed, the error."""
    if status_code:
        span.set_attribute(attr.HTTP_STATUS_CODE, status_code)
    if error is not None:
        code = getattr(error, "code", None)
        if isinstance(code, int):
            span.set_attribute(attr.ERROR_CODE, code)
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, str(error)))
    elif status_code >= 500:
        span.set_status(Status(StatusCode.ERROR))
    span.end()


class HopTracer:
    """Starts the spans of one role, deciding first whether anything is recorded at all.

    Args:
        tracer: the SDK tracer of the role (``providers.tracer("kubefox.<role>")``).
        ratio: the share of new traces sampled (httpsrv only starts traces).
    """

    __slots__ = ("_random", "_tracer", "ratio")

    def __init__(self, tracer: trace.Tracer, *, ratio: float = 1.0) -> None:
        self._tracer = tracer
        self._random = random.Random()  # noqa: S311 - sampling, not secrecy
        self.ratio = ratio

    def wants(self, parent: SpanContext | None, *, force: bool = False, root: bool = False) -> bool:
        """Whether a span under ``parent`` is recorded (cheap: no span is built)."""
        if force:
            return True
        if parent is not None:
            return bool(parent.flags & SAMPLED)
        if not root:
            return False
        ratio = self.ratio
        return ratio >= 1.0 or (ratio > 0.0 and self._random.random() < ratio)

    def start(
        self,
        name: str,
        *,
        parent: SpanContext | None,
        kind: str = "internal",
        attributes: Mapping[str, Any] | None = None,
        force: bool = False,
        start_time: int | None = None,
    ) -> Span:
        """A recording span (call :meth:`wants` first); ``parent`` may be remote."""
        context = remote_parent(parent) if parent is not None and parent.trace_id else None
        values = dict(attributes) if attributes else {}
        if force or context is None:
            # wants() decided already; the SDK's sampler must agree (its own ratio
            # draw would differ for a new trace).
            values[attr.SAMPLE] = True
        return self._tracer.start_span(
            name, context=context, kind=_KINDS[kind], attributes=values, start_time=start_time
        )

    @staticmethod
    def context_of(span: Span) -> SpanContext:
        """The trace context to send on in an event's ``parent_span`` (see :func:`event_span`)."""
        return event_span(span)

    @staticmethod
    def end(span: Span, *, status_code: int = 0, error: BaseException | None = None) -> None:
        """End ``span`` (see :func:`end_span`)."""
        end_span(span, status_code=status_code, error=error)
