"""What fox trace and fox logs print: a waterfall with timings, log lines, and JSON forms."""

from __future__ import annotations

import io
import json

from rich.console import Console

from kubefox.telemetry import LogRecord, SpanEvent, SpanRecord, StatusCode, Trace
from kubefox.telemetry import attributes as attr
from kubefox.telemetry.render import (
    format_time,
    log_json,
    render_log,
    render_logs,
    render_trace,
    trace_json,
)

TRACE = "0af7651916cd43dd8448eb211c80319c"
T0 = 1_760_000_000_000_000_000
MS = 1_000_000


def span(
    n: int, parent: int, start_ms: float, duration_ms: float, name: str, **fields: object
) -> SpanRecord:
    start = T0 + int(start_ms * MS)
    return SpanRecord(
        trace_id=TRACE,
        span_id=f"{n:016x}",
        parent_span_id=f"{parent:016x}" if parent else "",
        name=name,
        start_ns=start,
        end_ns=start + int(duration_ms * MS),
        resource={attr.SERVICE_NAME: "httpsrv" if n == 1 else "hello-world-backend"},
        **fields,  # type: ignore[arg-type]
    )


def request_trace() -> Trace:
    return Trace.of(
        TRACE,
        [
            span(1, 0, 0, 20, "GET /hello"),
            span(2, 1, 2, 10, "route"),
            span(3, 2, 4, 4, "handler", attributes={attr.EVENT_ID: "ev-1"}),
            span(
                4,
                1,
                10,
                10,
                "call backend",
                status_code=StatusCode.ERROR,
                events=(
                    SpanEvent(
                        name="exception",
                        time_ns=T0,
                        attributes={"exception.type": "TimeoutError", "exception.message": "late"},
                    ),
                ),
            ),
        ],
    )


def render(renderable: object, *, width: int = 120, styles: bool = False) -> str:
    console = Console(
        file=io.StringIO(),
        record=True,
        width=width,
        force_terminal=styles,
        color_system="standard",
    )
    console.print(renderable)
    return console.export_text(styles=styles)


def test_the_waterfall_is_a_tree_with_offsets_and_durations_in_ms() -> None:
    """Children sit under their parent with tree guides; each row has start and duration."""
    lines = render(render_trace(request_trace(), bar_width=20)).splitlines()

    assert lines[0].startswith(f"Trace {TRACE}  GET /hello  20.00 ms  4 spans")
    assert "1 failed" in lines[0]
    rows = [line for line in lines[2:] if line.strip()]
    assert rows[0].startswith("GET /hello")
    assert rows[1].startswith("├─ route")
    assert rows[2].startswith("│  └─ handler")
    assert rows[3].startswith("└─ call backend ✗")
    assert rows[4] == "✗ call backend (hello-world-backend): TimeoutError: late"
    assert "2.00 ms" in rows[1]
    assert "10.00 ms" in rows[1]
    assert "hello-world-backend" in rows[1]


def test_bars_share_one_time_axis() -> None:
    """A bar's offset and length are its start and duration scaled to the trace."""
    rows = render(render_trace(request_trace(), bar_width=20)).splitlines()[2:]

    assert rows[0].rstrip().endswith("█" * 20)
    call = next(row for row in rows if "call backend" in row).rstrip()
    assert call.endswith(" " + "█" * 10)
    handler = next(row for row in rows if "handler" in row).rstrip()
    assert handler.endswith(" " * 4 + "█" * 4)


def test_errors_are_red() -> None:
    """The failed span's name, duration, bar and message are styled red."""
    styled = render(render_trace(request_trace(), bar_width=20), styles=True)

    call_row = next(line for line in styled.splitlines() if "call backend" in line)
    assert "\x1b[31m" in call_row
    healthy_row = next(line for line in styled.splitlines() if "route" in line)
    assert "\x1b[31m" not in healthy_row


def test_the_bar_fills_what_the_console_leaves() -> None:
    """Without bar_width the waterfall uses the console's width, never overflowing it."""
    for width in (60, 100, 160):
        lines = render(render_trace(request_trace()), width=width).splitlines()

        assert max(len(line) for line in lines[1:]) <= width


def test_a_span_whose_parent_was_lost_is_drawn_as_a_root() -> None:
    """An orphan (its parent never arrived) still shows, at the top level."""
    trace = Trace.of(TRACE, [span(1, 0, 0, 5, "root"), span(3, 9, 1, 1, "orphan")])

    rows = render(render_trace(trace, bar_width=10)).splitlines()[2:]

    assert rows[0].startswith("orphan") or rows[1].startswith("orphan")


def test_the_trace_json_lists_spans_in_tree_order_with_timings() -> None:
    """--output json: depth, offset and duration in ms, status, ids; JSON-serialisable."""
    document = trace_json(request_trace())

    assert document["trace_id"] == TRACE
    assert document["duration_ms"] == 20.0
    assert document["span_count"] == 4
    assert document["error"] is True
    assert [(s["name"], s["depth"], s["offset_ms"]) for s in document["spans"]] == [
        ("GET /hello", 0, 0.0),
        ("route", 1, 2.0),
        ("handler", 2, 4.0),
        ("call backend", 1, 10.0),
    ]
    assert document["spans"][2]["event_id"] == "ev-1"
    assert document["spans"][3]["status"] == {"code": "error", "message": ""}
    assert json.loads(json.dumps(document)) == document


def record(**fields: object) -> LogRecord:
    base: dict[str, object] = {
        "time_ns": T0 + 123_456_789,
        "severity_number": 9,
        "body": "said hello",
        "attributes": {
            attr.APP: "hello-world",
            attr.COMPONENT: "backend",
            attr.VIRTUAL_ENVIRONMENT: "qa",
            attr.EVENT_ID: "ev-1",
            "who": "world",
        },
        "trace_id": TRACE,
        "span_id": "00f067aa0ba902b7",
        "seq": 7,
    }
    base.update(fields)
    return LogRecord(**base)  # type: ignore[arg-type]


def test_a_log_line_shows_time_severity_source_body_and_ids() -> None:
    """One line: UTC time, severity, app/component [ve], body, then extras, ids last."""
    line = render(render_log(record()), width=200).rstrip("\n")

    assert line == (
        f"{format_time(T0 + 123_456_789)} INFO  hello-world/backend [qa] said hello  "
        f"who=world event_id=ev-1 trace_id={TRACE}"
    )
    assert format_time(T0 + 123_456_789).endswith(".123456Z")


def test_an_error_line_is_red_and_a_sourceless_line_names_its_service() -> None:
    """Severity colours the line; without app/component the service stands in."""
    styled = render(render_log(record(severity_number=17)), styles=True)
    plain = render(
        render_log(record(attributes={}, resource={attr.SERVICE_NAME: "broker"}, trace_id=""))
    )

    assert "\x1b[1;31mERROR" in styled
    assert " broker said hello" in plain
    assert "trace_id" not in plain


def test_render_logs_prints_one_line_per_record() -> None:
    """A batch renders as consecutive lines in the given order."""
    text = render(render_logs([record(body="one"), record(body="two")]), width=200)

    assert [line.split("  ")[1].rsplit(" ", 1)[-1] for line in text.splitlines()] == ["one", "two"]


def test_the_log_json_is_flat_and_serialisable() -> None:
    """--output json for logs: one object per record with its seq and indexed fields."""
    document = log_json(record())

    assert document["seq"] == 7
    assert document["severity"] == "INFO"
    assert (document["app"], document["component"], document["ve"]) == (
        "hello-world",
        "backend",
        "qa",
    )
    assert document["event_id"] == "ev-1"
    assert json.loads(json.dumps(document)) == document
