"""The telemetry of a running role: its providers, its hop tracer, its metrics, its log forwarder.

:func:`role_telemetry` builds what one role (httpsrv, the broker, a component
process) records through; :func:`component_telemetry` does it for a
component from its Kit settings. Needs the ``otel`` extra: the Kit imports
this module only when its component has telemetry on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import structlog

from kubefox.telemetry import attributes as attr
from kubefox.telemetry.log_export import OtelLogForwarder
from kubefox.telemetry.metrics import HopMetrics, PrometheusReader
from kubefox.telemetry.providers import TelemetryProviders, build_providers
from kubefox.telemetry.settings import TelemetrySettings
from kubefox.telemetry.tracing import HopTracer


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RoleTelemetry:
    """What one role records through; ``tracer``/``metrics`` are ``None`` when off.

    ``prometheus`` renders the role's metrics when it was built with one.
    """

    providers: TelemetryProviders
    tracer: HopTracer | None
    metrics: HopMetrics | None
    prometheus: PrometheusReader | None = None

    def log_forwarder(self, name: str) -> structlog.types.Processor:
        """A structlog processor sending every line to the role's OTLP log exporter."""
        return OtelLogForwarder(self.providers.logger(name))

    async def aclose(self) -> None:
        """Flush and stop the exporters (once, when the role has stopped)."""
        await self.providers.aclose()


def role_telemetry(
    settings: TelemetrySettings,
    *,
    role: str,
    platform: str,
    service_name: str = "",
    instance_id: str = "",
    resource_attributes: Mapping[str, str] | None = None,
    prometheus: bool = False,
) -> RoleTelemetry:
    """Providers, hop tracer and metrics of ``role`` as ``settings`` say.

    With ``prometheus`` the role's metrics are also rendered for a ``/metrics``
    endpoint (:attr:`RoleTelemetry.prometheus`). Metrics are recorded only
    when something reads them: the Prometheus reader or an OTLP collector.
    """
    reader = PrometheusReader() if prometheus and settings.enabled else None
    readers: Sequence[PrometheusReader] = (reader,) if reader is not None else ()
    providers = build_providers(
        settings,
        role=role,
        platform=platform,
        service_name=service_name,
        instance_id=instance_id,
        resource_attributes=resource_attributes,
        metric_readers=readers,
    )
    tracer = (
        HopTracer(providers.tracer(f"kubefox.{role}"), ratio=settings.sampling_ratio)
        if settings.enabled and settings.traces
        else None
    )
    measured = settings.enabled and (reader is not None or (settings.metrics and settings.endpoint))
    metrics = HopMetrics(providers.meter(f"kubefox.{role}")) if measured else None
    return RoleTelemetry(providers=providers, tracer=tracer, metrics=metrics, prometheus=reader)


def component_telemetry(
    settings: TelemetrySettings,
    *,
    platform: str,
    app: str,
    name: str,
    hash: str,
    instance_id: str,
) -> RoleTelemetry:
    """The telemetry of a component instance: ``service.name`` is ``<app>-<name>-<hash>``."""
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
    )
