"""user_spans: a handler's own OpenTelemetry spans become children of its hop span."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kubefox.core.events import SpanContext
from kubefox.telemetry import user_spans
from kubefox.telemetry.logging import bind_request, unbind_request
from kubefox.telemetry.providers import KubeFoxSampler
from kubefox.telemetry.spans import SAMPLED

HANDLER = SpanContext(trace_id=bytes(range(1, 17)), span_id=bytes(range(1, 9)), flags=SAMPLED)


def _provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exported = InMemorySpanExporter()
    provider = TracerProvider(sampler=KubeFoxSampler(0.0))  # a component's: no new traces
    provider.add_span_processor(SimpleSpanProcessor(exported))
    return provider, exported


@contextlib.contextmanager
def _handling(span: SpanContext) -> Iterator[None]:
    """What the Kit does around a sampled handler: bind its request, enter its span."""
    bound = bind_request("event-1", span)
    token = user_spans.enter(span)
    try:
        yield
    finally:
        if token is not None:
            user_spans.leave(token)
        unbind_request(bound)


def _assert_joined(spans: dict[str, ReadableSpan]) -> None:
    lookup, parse = spans["lookup"], spans["parse"]
    assert lookup.context is not None
    assert parse.context is not None
    assert lookup.context.trace_id == int.from_bytes(HANDLER.trace_id, "big")
    assert lookup.parent is not None
    assert lookup.parent.span_id == int.from_bytes(HANDLER.span_id, "big")
    assert parse.parent is not None
    assert parse.parent.span_id == lookup.context.span_id


def test_once_tracers_are_in_use_the_handlers_span_is_the_current_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(user_spans, "_wanted", True)
    provider, exported = _provider()
    tracer = provider.get_tracer("user")

    with (
        _handling(HANDLER),
        tracer.start_as_current_span("lookup"),
        tracer.start_as_current_span("parse"),
    ):
        pass

    _assert_joined({span.name: span for span in exported.get_finished_spans()})


def test_a_tracer_asked_for_inside_the_first_handler_joins_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before anyone asked for a tracer the handler's span is only noted; the tracer finds it."""
    monkeypatch.setattr(user_spans, "_wanted", False)
    provider, exported = _provider()

    with _handling(HANDLER):
        tracer = user_spans._Watching(provider).get_tracer("user")  # what a ProxyTracer does
        with tracer.start_as_current_span("lookup"), tracer.start_as_current_span("parse"):
            pass

    _assert_joined({span.name: span for span in exported.get_finished_spans()})
    assert user_spans._wanted  # the next handlers make their span current


def test_outside_a_sampled_handler_nothing_is_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    """After leave() (or in a background task) a span is a root, and components start none."""
    monkeypatch.setattr(user_spans, "_wanted", False)
    provider, exported = _provider()
    tracer = user_spans._Watching(provider).get_tracer("user")
    with _handling(HANDLER):
        pass

    with tracer.start_as_current_span("background") as span:
        assert not span.is_recording()
    unsampled = SpanContext(trace_id=HANDLER.trace_id, span_id=HANDLER.span_id, flags=0)
    with _handling(unsampled), tracer.start_as_current_span("unsampled") as span:
        assert not span.is_recording()

    assert exported.get_finished_spans() == ()
