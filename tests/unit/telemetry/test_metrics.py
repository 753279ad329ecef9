"""Hop metrics on the OpenTelemetry SDK, rendered in Prometheus' text format."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider

from kubefox.telemetry.metrics import HopMetrics, PrometheusReader, hop_labels


def _metrics() -> tuple[HopMetrics, PrometheusReader]:
    reader = PrometheusReader()
    provider = MeterProvider(metric_readers=[reader])
    return HopMetrics(provider.get_meter("t")), reader


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
