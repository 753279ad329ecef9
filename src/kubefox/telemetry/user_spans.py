"""OpenTelemetry spans that a component's own code starts join the request's trace.

A handler runs inside its hop span, which is a
:class:`~kubefox.telemetry.spans.HopSpan` rather than an OpenTelemetry span
(see :mod:`kubefox.telemetry.spans` for why). For a sampled request the Kit
makes that span the current OpenTelemetry span of the handler's task
(:func:`enter`, :func:`leave`), as a non-recording span with the same ids,
once anything asked for a tracer; until then a tracer finds the span the Kit
bound for the handler's log lines (:func:`kubefox.telemetry.logging.bind_request`). So
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

from contextvars import Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.util.types import Attributes

from kubefox.core.events import SpanContext
from kubefox.telemetry.logging import bound_span

__all__ = ["enter", "install", "leave"]

# Whether anything asked the global provider for a tracer (user code, an
# instrumented library, or a tracer got before install, on its first span), or
# the process set a provider of its own. Until then no span can be started
# through the API, so a handler's span is only the one bound for its log lines
# (nothing more to do) instead of OpenTelemetry's current span (about three
# microseconds, measured in the Kit's event path).
_wanted = False


def _otel_parent(span: SpanContext) -> otel_context.Context:
    return trace.set_span_in_context(
        trace.NonRecordingSpan(
            trace.SpanContext(
                trace_id=int.from_bytes(span.trace_id, "big"),
                span_id=int.from_bytes(span.span_id, "big"),
                is_remote=False,
                trace_flags=trace.TraceFlags(span.flags),
            )
        )
    )


def _parent(context: otel_context.Context | None) -> otel_context.Context | None:
    """The context a span starts in: the one given, else the current span, else the handler's."""
    if context is not None or trace.get_current_span().get_span_context().is_valid:
        return context
    handler = bound_span()
    return None if handler is None else _otel_parent(handler)


class _Joining(trace.Tracer):
    """A tracer whose spans started with no parent in a handler join the handler's span.

    Needed for the handler in which the first tracer is asked for (a tracer
    got before :func:`install` resolves on its first span), when the
    handler's span was only noted, not made current.
    """

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def start_span(
        self, name: str, context: otel_context.Context | None = None, *args: Any, **kwargs: Any
    ) -> trace.Span:
        """The wrapped tracer's span, under the handler's when nothing else is its parent."""
        return self._tracer.start_span(name, _parent(context), *args, **kwargs)

    def start_as_current_span(
        self, name: str, context: otel_context.Context | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        """The wrapped tracer's, under the handler's span when nothing else is its parent."""
        return self._tracer.start_as_current_span(name, _parent(context), *args, **kwargs)


class _Watching(trace.TracerProvider):
    """The component's provider; its tracers join handlers' spans (see :data:`_wanted`)."""

    def __init__(self, provider: trace.TracerProvider) -> None:
        self._provider = provider

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes | None = None,
    ) -> trace.Tracer:
        """The provider's tracer; from now on handlers' spans become current."""
        global _wanted  # noqa: PLW0603 - one flag per process, set once
        _wanted = True
        return _Joining(
            self._provider.get_tracer(
                instrumenting_module_name, instrumenting_library_version, schema_url, attributes
            )
        )


def install(provider: trace.TracerProvider) -> bool:
    """Make ``provider`` the global tracer provider, if nobody set one; whether it did."""
    global _wanted  # noqa: PLW0603 - see _wanted
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        _wanted = True  # the process's own provider: its owner may use it any time
        return False
    trace.set_tracer_provider(_Watching(provider))
    return True


def enter(span: SpanContext) -> Token[otel_context.Context] | None:
    """Make ``span`` (the handler's, sampled) the parent of spans started here; a token.

    Call in the handler's own task, after binding the request for logging
    (:func:`~kubefox.telemetry.logging.bind_request`), and hand a token that
    is not ``None`` to :func:`leave` when the handler is done. ``None``: no
    tracer was asked for yet, and tracers find the span bound for logging.
    """
    if _wanted:
        return otel_context.attach(_otel_parent(span))
    return None


def leave(token: Token[otel_context.Context]) -> None:
    """Undo :func:`enter` (``token`` is what it returned, not ``None``)."""
    otel_context.detach(token)
