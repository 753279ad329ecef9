"""Hop metrics: fixed-bucket histograms rendered in Prometheus' text format and as OTLP data."""

from __future__ import annotations

from opentelemetry.sdk.metrics.export import Gauge, Histogram, Sum

from kubefox.telemetry.metrics import DURATION_BUCKETS, HopMetrics, hop_labels


def _metrics() -> tuple[HopMetrics, HopMetrics]:
    metrics = HopMetrics(resource={"service.name": "platform"})
    return metrics, metrics


def test_one_record_gives_a_histogram_whose_count_is_the_events() -> None:
    """Buckets are cumulative, ``_count`` counts events, labels are the hop's."""
    metrics, reader = _metrics()
    labels = hop_labels(
        "httpsrv",
        app="hello",
        component="frontend",
        deployment="d",
        virtual_environment="qa",
        code=200,
    )
    metrics.record(0.0003, labels)
    metrics.record(0.002, labels)
    text = reader.render()
    assert "# TYPE kubefox_hop_duration_seconds histogram" in text
    expected = (
        'hop="httpsrv",app="hello",component="frontend",deployment="d",'
        'virtual_environment="qa",code="200"'
    )
    assert f"kubefox_hop_duration_seconds_count{{{expected}}} 2" in text
    assert f'kubefox_hop_duration_seconds_bucket{{{expected},le="0.0005"}} 1' in text
    assert f'kubefox_hop_duration_seconds_bucket{{{expected},le="+Inf"}} 2' in text


def test_failures_are_a_counter_and_gauges_are_read_when_collected() -> None:
    """Errors render as ``_total`` with the error code; a gauge calls its reader each time."""
    metrics, reader = _metrics()
    metrics.failed(hop_labels("broker", app="a"), 7)
    seen = [3]
    metrics.gauge("kubefox.in_flight", "in flight", lambda: [(seen[0], {"hop": "broker"})])
    first = reader.render()
    seen[0] = 5
    second = reader.render()
    assert "# TYPE kubefox_errors_total counter" in first
    assert 'error_code="7"' in first
    assert 'kubefox_in_flight{hop="broker"} 3' in first
    assert 'kubefox_in_flight{hop="broker"} 5' in second


def test_label_values_are_escaped() -> None:
    """Quotes, backslashes and newlines in a label cannot break the exposition format."""
    metrics, reader = _metrics()
    metrics.record(0.1, hop_labels("httpsrv", app='a"b\\c\nd'))
    assert 'app="a\\"b\\\\c\\nd"' in reader.render()


def test_observe_and_record_fill_the_same_series() -> None:
    """The hot path's key and a label dict in the same order name one series."""
    metrics, reader = _metrics()
    labels = hop_labels("broker", app="a", component="b", deployment="d", virtual_environment="v")
    metrics.record(0.0001, labels)
    metrics.observe(20.0, metrics.key("broker", "a", "b", "d", "v", 0))
    metrics.observe(60.0, metrics.key("broker", "a", "b", "d", "v", 0))
    text = reader.render()
    series = 'hop="broker",app="a",component="b",deployment="d",virtual_environment="v",code="0"'
    assert f"kubefox_hop_duration_seconds_count{{{series}}} 3" in text
    assert f'kubefox_hop_duration_seconds_bucket{{{series},le="0.0001"}} 1' in text
    assert f'kubefox_hop_duration_seconds_bucket{{{series},le="10"}} 1' in text
    assert f'kubefox_hop_duration_seconds_bucket{{{series},le="30"}} 2' in text
    assert f'kubefox_hop_duration_seconds_bucket{{{series},le="+Inf"}} 3' in text
    assert f"kubefox_hop_duration_seconds_sum{{{series}}} 80.0001" in text


def test_metrics_data_carries_the_same_series_for_otlp_export() -> None:
    """Histogram buckets, the error counter and the gauges, cumulative, with the resource."""
    metrics, _ = _metrics()
    key = metrics.key("httpsrv", "hello", "frontend", "d", "qa", 500)
    metrics.observe(0.002, key)
    metrics.failed_key(key, 2)
    metrics.gauge("kubefox.in_flight", "in flight", lambda: [(4, {"hop": "httpsrv"})])

    data = metrics.metrics_data()

    (resource_metrics,) = data.resource_metrics
    assert resource_metrics.resource.attributes["service.name"] == "platform"
    by_name = {m.name: m for m in resource_metrics.scope_metrics[0].metrics}
    histogram = by_name["kubefox.hop.duration"].data
    assert isinstance(histogram, Histogram)
    (point,) = histogram.data_points
    assert point.count == 1
    assert list(point.explicit_bounds) == list(DURATION_BUCKETS)
    assert point.bucket_counts[DURATION_BUCKETS.index(0.0025)] == 1
    assert point.attributes is not None
    assert point.attributes["code"] == 500
    errors = by_name["kubefox.errors"].data
    assert isinstance(errors, Sum)
    assert errors.is_monotonic
    assert errors.data_points[0].value == 1
    assert errors.data_points[0].attributes is not None
    assert errors.data_points[0].attributes["error_code"] == 2
    gauge = by_name["kubefox.in_flight"].data
    assert isinstance(gauge, Gauge)
    assert gauge.data_points[0].value == 4


def test_a_failing_gauge_does_not_hide_the_other_metrics() -> None:
    """A gauge whose reader raises is left out; the histogram still renders."""
    metrics, reader = _metrics()
    metrics.observe(0.001, metrics.key("httpsrv", "", "", "", "", 200))

    def broken() -> list[tuple[float, dict[str, str]]]:
        raise RuntimeError("gone")

    metrics.gauge("kubefox.in_flight", "in flight", broken)
    text = reader.render()
    assert "kubefox_hop_duration_seconds_count" in text
    assert "kubefox_in_flight" not in text
