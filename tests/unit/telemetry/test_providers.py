"""build_providers and the kubefox sampler, observed through an in-memory span exporter."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from kubefox.telemetry import attributes as attr
from kubefox.telemetry.providers import KubeFoxSampler, TelemetryProviders, build_providers
from kubefox.telemetry.settings import TelemetrySettings


@pytest.fixture
def exported() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@contextlib.contextmanager
def providers_for(exported: InMemorySpanExporter, **fields: object) -> Iterator[TelemetryProviders]:
    providers = build_providers(
        TelemetrySettings(**fields),  # type: ignore[arg-type]
        role="component",
        platform="demo",
        service_name="hello-world-backend-0123abcd",
        instance_id="abc123",
        resource_attributes={attr.COMPONENT_APP: "hello-world", attr.COMPONENT_NAME: "backend"},
        span_processors=[SimpleSpanProcessor(exported)],
    )
    try:
        yield providers
    finally:
        providers.shutdown()


def remote_parent(*, sampled: bool) -> Context:
    context = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT),
    )
    return trace.set_span_in_context(NonRecordingSpan(context))


def test_spans_carry_the_role_s_resource_attributes(exported: InMemorySpanExporter) -> None:
    """service.name, kubefox.platform, kubefox.role, the instance and extra attributes."""
    with providers_for(exported) as providers:
        providers.tracer("test").start_span("work").end()

    (span,) = exported.get_finished_spans()
    resource = span.resource.attributes
    assert resource[attr.SERVICE_NAME] == "hello-world-backend-0123abcd"
    assert resource[attr.PLATFORM] == "demo"
    assert resource[attr.ROLE] == "component"
    assert resource[attr.SERVICE_INSTANCE_ID] == "abc123"
    assert resource[attr.COMPONENT_APP] == "hello-world"


def test_a_zero_ratio_records_only_forced_spans(exported: InMemorySpanExporter) -> None:
    """kubefox.sample=True at start (kf-sample=true) records a span whatever the ratio."""
    with providers_for(exported, sampling_ratio=0.0) as providers:
        tracer = providers.tracer("test")
        with tracer.start_as_current_span("dropped"):
            pass
        with (
            tracer.start_as_current_span("forced", attributes={attr.SAMPLE: True}),
            tracer.start_as_current_span("child of forced"),
        ):
            pass

    assert sorted(span.name for span in exported.get_finished_spans()) == [
        "child of forced",
        "forced",
    ]


def test_a_parent_s_decision_is_followed_unless_forced(exported: InMemorySpanExporter) -> None:
    """A sampled traceparent is honoured at ratio 0; an unsampled one is overridden by force."""
    with providers_for(exported, sampling_ratio=0.0) as providers:
        tracer = providers.tracer("test")
        tracer.start_span("sampled parent", context=remote_parent(sampled=True)).end()
        tracer.start_span("unsampled parent", context=remote_parent(sampled=False)).end()
        tracer.start_span(
            "forced", context=remote_parent(sampled=False), attributes={attr.SAMPLE: True}
        ).end()

    spans = {span.name: span for span in exported.get_finished_spans()}
    assert sorted(spans) == ["forced", "sampled parent"]
    assert spans["forced"].context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C


def test_a_full_ratio_records_every_new_trace(exported: InMemorySpanExporter) -> None:
    """At 1.0 every root span is sampled."""
    with providers_for(exported, sampling_ratio=1.0) as providers:
        for n in range(20):
            providers.tracer("test").start_span(f"span {n}").end()

    assert len(exported.get_finished_spans()) == 20


def test_disabled_telemetry_is_the_no_op_providers(exported: InMemorySpanExporter) -> None:
    """enabled=False: spans are not recording and nothing reaches any processor."""
    with providers_for(exported, enabled=False) as providers:
        span = providers.tracer("test").start_span("nothing")
        span.end()
        providers.meter("test").create_counter("events").add(1)

    assert not span.is_recording()
    assert exported.get_finished_spans() == ()
    assert providers.resource[attr.ROLE] == "component"


def test_the_sampler_describes_its_ratio() -> None:
    """The description names the ratio, as OpenTelemetry's samplers do."""
    assert KubeFoxSampler(0.25).get_description() == "KubeFoxSampler{0.25}"
