"""OpenTelemetry SDK providers for one process, built from :class:`TelemetrySettings`.

:func:`build_providers` makes the tracer, meter and logger providers of a
role (``httpsrv``, ``broker``, a component...) with kubefox's resource
attributes, the kubefox sampler, and OTLP/HTTP exporters to the platform's
embedded receiver and/or an external collector. Nothing here touches the
OpenTelemetry globals until :meth:`TelemetryProviders.install` is called, so
tests and embedded roles can build as many as they like.

Needs the ``otel`` extra (opentelemetry-sdk, opentelemetry-exporter-otlp-proto-http).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from opentelemetry import _logs, metrics, trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider as SdkLoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind, TraceState
from opentelemetry.util.types import Attributes

from kubefox.telemetry import attributes as attr
from kubefox.telemetry.settings import TelemetrySettings

# The SDK's 5 s default makes `fox trace` miss a request made a moment ago;
# half a second still batches under load.
_EXPORT_DELAY_MS = 500


class KubeFoxSampler(Sampler):
    """Parent-based ratio sampling that a span can force with ``kubefox.sample=True``.

    A span started with the attribute :data:`kubefox.telemetry.attributes.SAMPLE`
    set to ``True`` (httpsrv sets it for ``kf-sample=true``) is recorded and
    sampled even under an unsampled parent; otherwise a parent's decision is
    followed and new traces are sampled at ``ratio`` by trace id.
    """

    def __init__(self, ratio: float) -> None:
        self.ratio = ratio
        self._delegate = ParentBased(root=TraceIdRatioBased(ratio))

    def should_sample(  # noqa: PLR0917 - the SDK's signature
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if attributes and attributes.get(attr.SAMPLE) is True:
            parent = trace.get_current_span(parent_context).get_span_context()
            return SamplingResult(
                Decision.RECORD_AND_SAMPLE,
                attributes,
                parent.trace_state if parent.is_valid else trace_state,
            )
        return self._delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"KubeFoxSampler{{{self.ratio}}}"


class Exporting(Protocol):
    """Something else that exports with the providers (kubefox's span batcher, say)."""

    def force_flush(self, timeout: float = 10.0) -> bool:
        """Export what is held now; whether it went within ``timeout`` seconds."""

    def shutdown(self, timeout: float = 10.0) -> None:
        """Export what is held, then stop."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TelemetryProviders:
    """The three providers of one process; ``shutdown()`` flushes and stops every exporter.

    ``extras`` are flushed and stopped with them (first, as they may log).
    """

    tracer_provider: trace.TracerProvider
    meter_provider: metrics.MeterProvider
    logger_provider: _logs.LoggerProvider
    resource: Mapping[str, Any]
    extras: list[Exporting] = dataclasses.field(default_factory=list)

    def tracer(self, name: str) -> trace.Tracer:
        """A tracer of the instrumentation ``name`` (a module name, say)."""
        return self.tracer_provider.get_tracer(name)

    def meter(self, name: str) -> metrics.Meter:
        """A meter of the instrumentation ``name``."""
        return self.meter_provider.get_meter(name)

    def logger(self, name: str) -> _logs.Logger:
        """An OpenTelemetry logger of the instrumentation ``name``."""
        return self.logger_provider.get_logger(name)

    def install(self) -> None:
        """Make these the process's global providers (once, at the entry point)."""
        trace.set_tracer_provider(self.tracer_provider)
        metrics.set_meter_provider(self.meter_provider)
        _logs.set_logger_provider(self.logger_provider)

    def force_flush(self, timeout: float = 10.0) -> bool:
        """Export everything pending now; whether all of it went within ``timeout`` seconds."""
        millis = int(timeout * 1000)
        done = True
        for extra in self.extras:
            done = bool(extra.force_flush(timeout)) and done
        for provider in (self.tracer_provider, self.meter_provider, self.logger_provider):
            flush = getattr(provider, "force_flush", None)
            if flush is not None:
                done = bool(flush(millis)) and done
        return done

    async def aflush(self, within: float = 10.0) -> bool:
        """:meth:`force_flush` off the event loop (exporters block while they send)."""
        return await asyncio.to_thread(self.force_flush, within)

    async def aclose(self) -> None:
        """:meth:`shutdown` off the event loop; call it once, when the process stops."""
        await asyncio.to_thread(self.shutdown)

    def shutdown(self) -> None:
        """Flush and stop every processor and exporter; later spans are dropped."""
        extras = list(self.extras)
        self.extras.clear()
        for extra in extras:
            extra.shutdown()
        for provider in (self.tracer_provider, self.meter_provider, self.logger_provider):
            stop = getattr(provider, "shutdown", None)
            if stop is not None:
                stop()


def build_providers(
    settings: TelemetrySettings,
    *,
    role: str,
    platform: str,
    service_name: str = "",
    instance_id: str = "",
    resource_attributes: Mapping[str, str] | None = None,
    span_processors: Sequence[SpanProcessor] = (),
    metric_readers: Sequence[MetricReader] = (),
    new_traces: bool = True,
) -> TelemetryProviders:
    """The providers of one process of ``role`` on ``platform``, exporting as ``settings`` say.

    Args:
        settings: sampling and destinations.
        role: ``httpsrv``, ``broker``, ``operator``, ``api`` or ``component``.
        platform: the platform's name.
        service_name: ``service.name``; the role when empty (a component passes
            ``<app>-<component>-<hash>``).
        instance_id: ``service.instance.id`` (a component's instance id).
        resource_attributes: more resource attributes (``kubefox.component.*``).
        span_processors: more span processors (tests, a debugger).
        metric_readers: more metric readers (the Prometheus endpoint).
        new_traces: whether the tracer provider's spans may start a trace (at
            the settings' ratio); without, they are recorded only under a
            sampled parent or when forced (a component's own spans:
            :mod:`kubefox.telemetry.user_spans`).

    When ``settings.enabled`` is false the providers are OpenTelemetry's
    no-op ones: instrumentation costs next to nothing.
    """
    resource_map: dict[str, Any] = {
        attr.SERVICE_NAME: service_name or role,
        attr.PLATFORM: platform,
        attr.ROLE: role,
    }
    if instance_id:
        resource_map[attr.SERVICE_INSTANCE_ID] = instance_id
    resource_map.update(resource_attributes or {})
    if not settings.enabled:
        return TelemetryProviders(
            tracer_provider=trace.NoOpTracerProvider(),
            meter_provider=metrics.NoOpMeterProvider(),
            logger_provider=_logs.NoOpLoggerProvider(),
            resource=resource_map,
        )
    resource = Resource.create(resource_map)
    destinations = _destinations(settings)

    tracer_provider = SdkTracerProvider(
        resource=resource,
        sampler=KubeFoxSampler(settings.sampling_ratio if new_traces else 0.0),
    )
    for processor in span_processors:
        tracer_provider.add_span_processor(processor)
    if settings.traces:
        for base, headers in destinations:
            exporter = OTLPSpanExporter(
                endpoint=f"{base}/v1/traces", headers=headers, timeout=settings.export_timeout
            )
            tracer_provider.add_span_processor(
                BatchSpanProcessor(exporter, schedule_delay_millis=_EXPORT_DELAY_MS)
            )

    readers = list(metric_readers)
    if settings.metrics and settings.endpoint:
        # the embedded receiver keeps traces and logs only; metrics go to a collector
        metric_exporter = OTLPMetricExporter(
            endpoint=f"{settings.endpoint.rstrip('/')}/v1/metrics",
            headers=settings.headers,
            timeout=settings.export_timeout,
        )
        readers.append(
            PeriodicExportingMetricReader(
                metric_exporter, export_interval_millis=settings.metrics_interval * 1000
            )
        )
    meter_provider = SdkMeterProvider(resource=resource, metric_readers=readers)

    logger_provider = SdkLoggerProvider(resource=resource)
    if settings.logs:
        for base, headers in destinations:
            log_exporter = OTLPLogExporter(
                endpoint=f"{base}/v1/logs", headers=headers, timeout=settings.export_timeout
            )
            logger_provider.add_log_record_processor(
                BatchLogRecordProcessor(log_exporter, schedule_delay_millis=_EXPORT_DELAY_MS)
            )

    return TelemetryProviders(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        logger_provider=logger_provider,
        resource=dict(resource.attributes),
    )


def _destinations(settings: TelemetrySettings) -> list[tuple[str, dict[str, str]]]:
    """(base URL, headers) of every OTLP destination; the embedded one gets no headers."""
    out: list[tuple[str, dict[str, str]]] = []
    if settings.embedded_endpoint:
        out.append((settings.embedded_endpoint.rstrip("/"), {}))
    if settings.endpoint:
        out.append((settings.endpoint.rstrip("/"), dict(settings.headers)))
    return out
