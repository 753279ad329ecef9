"""OpenTelemetry spans that a component's own code starts join the request's trace.

A handler runs inside its hop span, which is a
:class:`~kubefox.telemetry.spans.HopSpan` rather than an OpenTelemetry span
(see :mod:`kubefox.telemetry.spans` for why). For a sampled request the Kit
makes that span the current OpenTelemetry span of the handler's task
(:func:`enter`, :func:`leave`), as a non-recording span with the same ids. So
``trace.get_tracer(__name__).start_as_current_span("query")`` in a handler
starts a child of the handler's span, in the same trace, and ``fox trace``
shows it under the handler.

Those spans go through the component's OpenTelemetry SDK tracer provider,
which :func:`install` makes the process's global one, unless the process set
its own first (then that provider gets the parent, and exports where its
owner said). The SDK exports them to the embedded receiver and any
collector, as the component's other telemetry.

*Decision:* a component never starts a trace of its own (its sampler samples
no new trace): a span started outside a sampled request, or in a background
task, is not recorded, so that an unsampled request cannot give rise to
orphan traces. Calls to other components stay children of the handler's
span, not of a user span around them.
"""

from __future__ import annotations

from opentelemetry import context as otel_context
from opentelemetry import trace

from kubefox.core.events import SpanContext

__all__ = ["enter", "install", "leave"]


def install(provider: trace.TracerProvider) -> bool:
    """Make ``provider`` the global tracer provider, if nobody set one; whether it did."""
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return False
    trace.set_tracer_provider(provider)
    return True


def enter(span: SpanContext) -> object:
    """Make ``span`` (the handler's, sampled) the current OpenTelemetry span; a token.

    Call in the handler's own task and hand the token to :func:`leave` when
    the handler is done.
    """
    parent = trace.NonRecordingSpan(
        trace.SpanContext(
            trace_id=int.from_bytes(span.trace_id, "big"),
            span_id=int.from_bytes(span.span_id, "big"),
            is_remote=False,
            trace_flags=trace.TraceFlags(span.flags),
        )
    )
    return otel_context.attach(trace.set_span_in_context(parent))


def leave(token: object) -> None:
    """Undo :func:`enter` (``token`` is what it returned)."""
    otel_context.detach(token)  # type: ignore[arg-type]
