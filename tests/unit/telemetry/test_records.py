"""Records and traces: ids are checked, indexed fields are found, trees are walked safely."""

from __future__ import annotations

import pytest

from kubefox.core.errors import InvalidError
from kubefox.telemetry import LogRecord, SpanRecord, Trace
from kubefox.telemetry import attributes as attr
from kubefox.telemetry.records import check_span_id, check_trace_id, severity_name

TRACE = "0af7651916cd43dd8448eb211c80319c"


def span(n: int, parent: int = 0, start: int = 0) -> SpanRecord:
    return SpanRecord(
        trace_id=TRACE,
        span_id=f"{n:016x}",
        parent_span_id=f"{parent:016x}" if parent else "",
        name=f"s{n}",
        start_ns=start,
        end_ns=start + 10,
    )


@pytest.mark.parametrize("bad", ["", "abc", "0" * 32, "g" * 32, TRACE + "00"])
def test_a_malformed_trace_id_is_invalid(bad: str) -> None:
    """32 hex digits, not all zero, as W3C trace context requires."""
    with pytest.raises(InvalidError):
        check_trace_id(bad)


def test_ids_are_normalised_to_lowercase() -> None:
    """Upper-case hex is accepted and lowered."""
    assert check_trace_id(TRACE.upper()) == TRACE
    assert check_span_id("00F067AA0BA902B7") == "00f067aa0ba902b7"
    with pytest.raises(InvalidError):
        check_span_id("0" * 16)


def test_a_record_s_attributes_win_over_its_resource() -> None:
    """A role serving many apps names the app per record; a component names it once."""
    resource = {attr.COMPONENT_APP: "from-resource", attr.COMPONENT_NAME: "backend"}

    own = LogRecord(time_ns=1, attributes={attr.APP: "from-record"}, resource=resource)
    inherited = LogRecord(time_ns=1, resource=resource)

    assert (own.app, own.component) == ("from-record", "backend")
    assert (inherited.app, inherited.component, inherited.virtual_environment) == (
        "from-resource",
        "backend",
        "",
    )


@pytest.mark.parametrize(
    ("number", "name"),
    [(0, "UNSET"), (1, "TRACE"), (9, "INFO"), (13, "WARN"), (21, "FATAL"), (99, "UNSET")],
)
def test_severity_numbers_have_otlp_s_names(number: int, name: str) -> None:
    """Without a severity text, the number names the severity."""
    assert severity_name(number) == name
    assert LogRecord(time_ns=1, severity_number=number).severity == name


def test_walk_is_depth_first_with_children_by_start() -> None:
    """Each child directly under its parent, siblings in start order."""
    trace = Trace.of(
        TRACE, [span(3, 1, start=5), span(1), span(2, 1, start=1), span(4, 2, start=2)]
    )

    assert [(depth, s.name) for depth, s in trace.walk()] == [
        (0, "s1"),
        (1, "s2"),
        (2, "s4"),
        (1, "s3"),
    ]


def test_walk_survives_a_parent_cycle() -> None:
    """A producer's bad parent ids cannot loop the renderer: each span appears once."""
    trace = Trace.of(TRACE, [span(1), span(2, 3), span(3, 2)])

    assert sorted(s.name for _, s in trace.walk()) == ["s1", "s2", "s3"]


def test_a_negative_duration_is_zero() -> None:
    """A span ending before it starts (clock skew) has no duration rather than a negative one."""
    skewed = SpanRecord(trace_id=TRACE, span_id="1" * 16, name="x", start_ns=10, end_ns=5)

    assert skewed.duration_ns == 0
