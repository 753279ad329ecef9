"""Metrics of every hop, on the OpenTelemetry metrics SDK, and a Prometheus text reader.

:class:`HopMetrics` holds the instruments a role records into:

* ``kubefox_hop_duration_seconds`` (histogram): one observation per event
  handled by a hop, labelled ``hop`` (``httpsrv``, ``broker``, ``component``,
  ``call``), ``app``, ``component``, ``deployment``, ``virtual_environment``
  and ``code`` (the HTTP status answered). Its ``_count`` is the number of
  events, so events need no counter of their own: one record per hop is the
  whole hot-path cost.
* ``kubefox_errors_total`` (counter): failed events by the same labels and
  the kubefox error code (only failures pay for it).
* ``kubefox_in_flight`` and ``kubefox_component_instances`` (gauges): read
  from the roles when collected, so the hot path pays nothing.

:class:`PrometheusReader` is a metric reader of the SDK that renders what it
collects in Prometheus' text exposition format (version 0.0.4), for a role's
``/metrics`` endpoint; an OTLP exporter reader can sit beside it on the same
provider.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.sdk.metrics import Counter, Histogram, ObservableGauge, UpDownCounter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    MetricReader,
    MetricsData,
    Sum,
)
from opentelemetry.sdk.metrics.export import (
    Histogram as HistogramData,
)

#: Media type of the Prometheus text format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Histogram buckets in seconds: a hop takes from tens of microseconds to the TTL.
DURATION_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
HOP_DURATION = "kubefox.hop.duration"
ERRORS = "kubefox.errors"
IN_FLIGHT = "kubefox.in_flight"
INSTANCES = "kubefox.component.instances"

_INVALID = re.compile(r"[^a-zA-Z0-9_:]")


def hop_labels(
    hop: str,
    *,
    app: str = "",
    component: str = "",
    deployment: str = "",
    virtual_environment: str = "",
    code: int = 0,
) -> dict[str, Any]:
    """The labels of one observation (a dict the caller may cache and reuse)."""
    return {
        "hop": hop,
        "app": app,
        "component": component,
        "deployment": deployment,
        "virtual_environment": virtual_environment,
        "code": code,
    }


class HopMetrics:
    """The instruments of one role; recording is one histogram call per event.

    Args:
        meter: the role's meter (``providers.meter("kubefox.<role>")``).
    """

    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self._duration = meter.create_histogram(
            HOP_DURATION,
            unit="s",
            description="Time each hop took per event, by outcome.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._errors = meter.create_counter(
            ERRORS, unit="1", description="Events that failed, by kubefox error code."
        )

    def record(self, seconds: float, labels: Mapping[str, Any]) -> None:
        """One event handled by a hop in ``seconds``, labelled ``labels``."""
        self._duration.record(seconds, labels)

    def failed(self, labels: Mapping[str, Any], error_code: int) -> None:
        """One event failed with kubefox ``error_code``."""
        self._errors.add(1, {**labels, "error_code": error_code})

    def gauge(
        self,
        name: str,
        description: str,
        read: Callable[[], Iterable[tuple[float, Mapping[str, Any]]]],
    ) -> None:
        """A gauge read when metrics are collected: ``read()`` yields (value, labels) pairs."""

        def observe(_options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(value, dict(labels)) for value, labels in read()]

        self.meter.create_observable_gauge(name, [observe], unit="1", description=description)


class PrometheusReader(MetricReader):
    """Collects on demand and renders the Prometheus text format (counters as ``_total``).

    Sums are cumulative, as Prometheus expects. Resource attributes are left
    out: the scraper adds ``job`` and ``instance`` itself.
    """

    def __init__(self) -> None:
        super().__init__(
            preferred_temporality={
                Counter: AggregationTemporality.CUMULATIVE,
                UpDownCounter: AggregationTemporality.CUMULATIVE,
                Histogram: AggregationTemporality.CUMULATIVE,
                ObservableGauge: AggregationTemporality.CUMULATIVE,
            }
        )
        self._lock = threading.Lock()
        self._data: MetricsData | None = None

    def _receive_metrics(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> None:
        self._data = metrics_data

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Nothing to release: rendering stops with the provider."""

    def render(self) -> str:
        """Collect now and return every metric in the text exposition format."""
        with self._lock:
            self._data = None
            self.collect()
            data: MetricsData | None = self._data
        if data is None:
            return ""
        lines: list[str] = []
        for resource_metrics in data.resource_metrics:
            job = str(resource_metrics.resource.attributes.get("service.name", ""))
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    _render_metric(lines, metric.name, metric.description or "", metric.data, job)
        return "\n".join(lines) + "\n" if lines else ""


def _name(name: str) -> str:
    return _INVALID.sub("_", name)


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(attributes: Mapping[str, Any], job: str, extra: tuple[str, str] | None = None) -> str:
    items = [(_name(str(key)), _escape(value)) for key, value in attributes.items()]
    if extra is not None:
        items.append(extra)
    if not items:
        return ""
    return "{" + ",".join(f'{key}="{value}"' for key, value in items) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _render_metric(lines: list[str], raw_name: str, description: str, data: Any, job: str) -> None:
    name = _name(raw_name)
    if isinstance(data, HistogramData):
        if raw_name.endswith(".duration"):
            name += "_seconds"
        lines.append(f"# HELP {name} {description}")
        lines.append(f"# TYPE {name} histogram")
        for histogram in data.data_points:
            attributes = histogram.attributes or {}
            cumulative = 0
            for bound, count in zip(
                (*histogram.explicit_bounds, math.inf), histogram.bucket_counts, strict=False
            ):
                cumulative += count
                le = ("le", _number(bound))
                lines.append(f"{name}_bucket{_labels(attributes, job, le)} {cumulative}")
            labels = _labels(attributes, job)
            lines.append(f"{name}_sum{labels} {_number(histogram.sum)}")
            lines.append(f"{name}_count{labels} {histogram.count}")
        return
    if isinstance(data, Sum) and data.is_monotonic:
        name += "_total"
        kind = "counter"
    elif isinstance(data, Sum | Gauge):
        kind = "gauge"
    else:  # exponential histograms: kubefox makes none
        return
    lines.append(f"# HELP {name} {description}")
    lines.append(f"# TYPE {name} {kind}")
    lines.extend(
        f"{name}{_labels(point.attributes or {}, job)} {_number(point.value)}"
        for point in data.data_points
    )
