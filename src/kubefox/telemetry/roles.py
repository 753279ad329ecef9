"""The telemetry of a running role: its providers, its hop tracer, its metrics, its log forwarder.

:func:`role_telemetry` builds what one role (httpsrv, the broker, a component
process) records through; :func:`component_telemetry` does it for a
component from its Kit settings. Hop spans go through a
:class:`~kubefox.telemetry.export.SpanBatcher`: straight into the telemetry
store for a role of the platform process (``store=``), as packed batches to
the platform's receiver from a component, and as OTLP to an external
collector when one is configured. The OpenTelemetry SDK providers remain for
log records and for user code's own spans and metrics. Needs the ``otel``
extra: the Kit imports this module only when its component has telemetry on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING

import structlog

from kubefox.telemetry import attributes as attr
from kubefox.telemetry.export import (
    ChunkDestination,
    OtlpDestination,
    PackedDestination,
    SpanBatcher,
    SpanDestination,
    StoreDestination,
)
from kubefox.telemetry.log_export import OtelLogForwarder
from kubefox.telemetry.metrics import HopMetrics, MetricsExporter
from kubefox.telemetry.providers import TelemetryProviders, build_providers
from kubefox.telemetry.settings import TelemetrySettings
from kubefox.telemetry.tracing import HopTracer

if TYPE_CHECKING:
    from kubefox.telemetry.protocol import TelemetryStore


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RoleTelemetry:
    """What one role records through; ``tracer``/``metrics`` are ``None`` when off.

    ``prometheus`` renders the role's metrics when it was built with one.
    """

    providers: TelemetryProviders
    tracer: HopTracer | None
    metrics: HopMetrics | None
    prometheus: HopMetrics | None = None

    def log_forwarder(self, name: str) -> structlog.types.Processor:
        """A structlog processor sending every line to the role's OTLP log exporter."""
        return OtelLogForwarder(self.providers.logger(name))

    async def aflush(self, within: float = 10.0) -> bool:
        """Export every span, log record and metric held now (see ``TelemetryProviders``)."""
        return await self.providers.aflush(within)

    async def aclose(self) -> None:
        """Flush and stop the exporters (once, when the role has stopped)."""
        await self.providers.aclose()


def _span_destinations(
    settings: TelemetrySettings,
    resource: Mapping[str, object],
    scope: str,
    store: TelemetryStore | None,
) -> tuple[list[ChunkDestination], list[SpanDestination]]:
    """Where the role's spans go: as chunks (the embedded store), as spans (a collector)."""
    chunks: list[ChunkDestination] = []
    if store is not None:
        chunks.append(StoreDestination(store))
    elif settings.embedded_endpoint:
        chunks.append(
            PackedDestination(settings.embedded_endpoint, timeout=settings.export_timeout)
        )
    spans: list[SpanDestination] = []
    if settings.endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(
            endpoint=f"{settings.endpoint.rstrip('/')}/v1/traces",
            headers=dict(settings.headers),
            timeout=settings.export_timeout,
        )
        spans.append(OtlpDestination(exporter, resource=resource, scope=scope))
    return chunks, spans


def role_telemetry(
    settings: TelemetrySettings,
    *,
    role: str,
    platform: str,
    service_name: str = "",
    instance_id: str = "",
    resource_attributes: Mapping[str, str] | None = None,
    prometheus: bool = False,
    store: TelemetryStore | None = None,
    new_traces: bool = True,
) -> RoleTelemetry:
    """Providers, hop tracer and metrics of ``role`` as ``settings`` say.

    With ``prometheus`` the role's metrics are also rendered for a ``/metrics``
    endpoint (:attr:`RoleTelemetry.prometheus`). Metrics are recorded only
    when something reads them: the Prometheus endpoint or an OTLP collector.
    With ``store`` (a role of the platform process) hop spans go straight
    into it instead of through the embedded receiver. ``new_traces`` is
    :func:`~kubefox.telemetry.providers.build_providers`'.
    """
    providers = build_providers(
        settings,
        role=role,
        platform=platform,
        service_name=service_name,
        instance_id=instance_id,
        resource_attributes=resource_attributes,
        new_traces=new_traces,
    )
    scope = f"kubefox.{role}"
    tracer: HopTracer | None = None
    if settings.enabled and settings.traces:
        chunks, destinations = _span_destinations(settings, providers.resource, scope, store)
        if chunks or destinations:
            batcher = SpanBatcher(
                destinations, chunks=chunks, resource=providers.resource, scope=scope
            )
            providers.extras.append(batcher)
            tracer = HopTracer(batcher, ratio=settings.sampling_ratio)
    exported = settings.enabled and settings.metrics and bool(settings.endpoint)
    metrics: HopMetrics | None = None
    if settings.enabled and (prometheus or exported):
        metrics = HopMetrics(resource=providers.resource, scope=scope)
        if exported:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                OTLPMetricExporter,
            )

            exporter = OTLPMetricExporter(
                endpoint=f"{settings.endpoint.rstrip('/')}/v1/metrics",
                headers=dict(settings.headers),
                timeout=settings.export_timeout,
            )
            providers.extras.append(
                MetricsExporter(metrics, exporter, interval=settings.metrics_interval)
            )
    return RoleTelemetry(
        providers=providers,
        tracer=tracer,
        metrics=metrics,
        prometheus=metrics if prometheus else None,
    )


def component_telemetry(
    settings: TelemetrySettings,
    *,
    platform: str,
    app: str,
    name: str,
    hash: str,
    instance_id: str,
) -> RoleTelemetry:
    """The telemetry of a component instance: ``service.name`` is ``<app>-<name>-<hash>``.

    Its tracer provider starts no trace: the component's own OpenTelemetry
    spans are recorded inside sampled requests only (:mod:`kubefox.telemetry.user_spans`).
    """
    return role_telemetry(
        settings,
        role="component",
        platform=platform,
        service_name=f"{app}-{name}-{hash[:7]}",
        instance_id=instance_id,
        resource_attributes={
            attr.COMPONENT_APP: app,
            attr.COMPONENT_NAME: name,
            attr.COMPONENT_HASH: hash,
            attr.COMPONENT_ID: instance_id,
        },
        new_traces=False,
    )
