"""What ``fox trace`` and ``fox logs`` show: a trace as a waterfall, log lines, and JSON forms.

Kept out of the CLI so it can be tested by rendering into a recording
console. The terminal forms are rich renderables; the JSON forms are plain
dicts ready for ``json.dumps`` (``--output json``; one dict per line when
following logs).

The waterfall draws one row per span, depth first under its parent with tree
guides, with its offset from the trace's start, its duration in
milliseconds, and a bar placed and sized on a common time axis. Spans that
ended in error are red and marked ✗, and their messages follow the table in
full (a table cell would cut them short).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.table import Table
from rich.text import Text

from kubefox.telemetry import attributes as attr
from kubefox.telemetry.records import LogRecord, SpanRecord, Trace

_NS_PER_MS = 1_000_000
_NAME_WIDTH = 48
_SERVICE_WIDTH = 28
_SEVERITY_STYLES = {
    "TRACE": "dim",
    "DEBUG": "dim",
    "INFO": "green",
    "WARN": "yellow",
    "WARNING": "yellow",
    "ERROR": "bold red",
    "FATAL": "bold red",
    "CRITICAL": "bold red",
}
# shown in their own places on a log line, so not repeated among its attributes
_LOG_SHOWN = frozenset({attr.APP, attr.COMPONENT, attr.VIRTUAL_ENVIRONMENT, attr.EVENT_ID})


def format_time(time_ns: int) -> str:
    """``2026-05-01T12:00:00.123456Z``: UTC with microseconds."""
    moment = datetime.datetime.fromtimestamp(time_ns // 1_000_000_000, tz=datetime.UTC)
    moment = moment.replace(microsecond=(time_ns % 1_000_000_000) // 1000)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_ms(duration_ns: int) -> str:
    """A duration in milliseconds with two decimals: ``12.35 ms``."""
    return f"{duration_ns / _NS_PER_MS:,.2f} ms"


def _error_text(span: SpanRecord) -> str:
    if span.status_message:
        return span.status_message
    for event in span.events:
        if event.name == "exception":
            kind = event.attributes.get("exception.type", "")
            message = event.attributes.get("exception.message", "")
            return f"{kind}: {message}" if kind and message else str(kind or message)
    return "error"


def _guides(trace: Trace) -> list[tuple[str, SpanRecord]]:
    """Each span with its tree-guide prefix, in waterfall order."""
    entries = trace.walk()
    # Scanning backwards, ``open_depths`` holds the depths that have a later sibling
    # still to come: a span is the last child when its depth is not among them.
    last = [True] * len(entries)
    open_depths: set[int] = set()
    for index in range(len(entries) - 1, -1, -1):
        depth = entries[index][0]
        last[index] = depth not in open_depths
        open_depths = {d for d in open_depths if d < depth} | {depth}
    out: list[tuple[str, SpanRecord]] = []
    stack: list[bool] = []
    for (depth, span), is_last in zip(entries, last, strict=True):
        del stack[depth:]
        prefix = ""
        if depth:
            prefix = "".join("   " if done else "│  " for done in stack[1:depth])
            prefix += "└─ " if is_last else "├─ "
        stack.append(is_last)
        out.append((prefix, span))
    return out


class TraceWaterfall:
    """A rich renderable: the trace's spans as a tree with timings and bars.

    Args:
        trace: what to draw.
        bar_width: cells of the time axis; by default what the console leaves.
    """

    def __init__(self, trace: Trace, *, bar_width: int | None = None) -> None:
        self.trace = trace
        self.bar_width = bar_width

    def _header(self) -> Text:
        trace = self.trace
        roots = trace.roots()
        header = Text.assemble(
            ("Trace ", "bold"),
            (trace.trace_id, "bold cyan"),
            "  ",
            (roots[0].name if roots else "", "bold"),
            f"  {format_ms(trace.duration_ns)}  {len(trace.spans)} spans  ",
            (format_time(trace.start_ns), "dim"),
        )
        errors = sum(span.is_error for span in trace.spans)
        if errors:
            header.append(f"  {errors} failed", style="bold red")
        return header

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        trace = self.trace
        rows = _guides(trace)
        origin, total = trace.start_ns, max(trace.duration_ns, 1)
        names = [Text(prefix, style="dim") + _name(span) for prefix, span in rows]
        starts = [format_ms(span.start_ns - origin) for _, span in rows]
        durations = [format_ms(span.duration_ns) for _, span in rows]
        widths = (
            min(_NAME_WIDTH, max(len("Span"), *(name.cell_len for name in names))),
            min(_SERVICE_WIDTH, max(len("Service"), *(len(span.service) for _, span in rows))),
            max(len("Start"), *(len(text) for text in starts)),
            max(len("Duration"), *(len(text) for text in durations)),
        )
        # one cell of padding each side of every inner column edge: 4 edges
        # a narrow console shortens the bar first, then the names (never the timings)
        width = self.bar_width or max(4, options.max_width - sum(widths) - 8)

        table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
        table.add_column("Span", max_width=_NAME_WIDTH, no_wrap=True, overflow="ellipsis")
        table.add_column("Service", max_width=_SERVICE_WIDTH, no_wrap=True, overflow="ellipsis")
        table.add_column("Start", justify="right", no_wrap=True, min_width=widths[2])
        table.add_column("Duration", justify="right", no_wrap=True, min_width=widths[3])
        table.add_column("", no_wrap=True, width=width, min_width=width)
        for (_, span), name, start, duration in zip(rows, names, starts, durations, strict=True):
            offset = min(width - 1, (span.start_ns - origin) * width // total)
            length = max(1, min(width - offset, round(span.duration_ns * width / total)))
            bar = Text(" " * offset)
            bar.append("█" * length, style="red" if span.is_error else "cyan")
            table.add_row(
                name,
                Text(span.service, style="dim"),
                start,
                Text(duration, style="red" if span.is_error else ""),
                bar,
            )
        yield self._header()
        yield table
        for _, span in rows:
            if span.is_error:
                where = f" ({span.service})" if span.service else ""
                yield Text(f"✗ {span.name}{where}: {_error_text(span)}", style="red")


def _name(span: SpanRecord) -> Text:
    if span.is_error:
        return Text(f"{span.name} ✗", style="red")
    return Text(span.name)


def render_trace(trace: Trace, *, bar_width: int | None = None) -> TraceWaterfall:
    """The waterfall of ``trace`` for ``console.print``."""
    return TraceWaterfall(trace, bar_width=bar_width)


def render_log(record: LogRecord) -> Text:
    """One log line: time, severity, source, body, then attributes and ids, dimmed."""
    severity = record.severity
    source = "/".join(filter(None, (record.app, record.component))) or record.service or "-"
    line = Text.assemble(
        (format_time(record.time_ns), "dim"),
        " ",
        (f"{severity:<5}", _SEVERITY_STYLES.get(severity, "")),
        " ",
        (source, "cyan"),
    )
    if record.virtual_environment:
        line.append(f" [{record.virtual_environment}]", style="magenta")
    line.append(" ")
    line.append(record.body, style="red" if severity in ("ERROR", "FATAL") else "")
    extras = [f"{key}={value}" for key, value in record.attributes.items() if key not in _LOG_SHOWN]
    if record.event_id:
        extras.append(f"event_id={record.event_id}")
    if record.trace_id:
        extras.append(f"trace_id={record.trace_id}")
    if extras:
        line.append("  " + " ".join(extras), style="dim")
    return line


def render_logs(records: Iterable[LogRecord]) -> Group:
    """Log lines, one per record, for ``console.print``."""
    return Group(*(render_log(record) for record in records))


def span_json(span: SpanRecord, *, origin_ns: int = 0, depth: int = 0) -> dict[str, Any]:
    """A span as a JSON-ready dict; ``offset_ms`` counts from ``origin_ns``."""
    return {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id or None,
        "name": span.name,
        "kind": span.kind.name.lower(),
        "service": span.service,
        "depth": depth,
        "start_time": format_time(span.start_ns),
        "start_ns": span.start_ns,
        "end_ns": span.end_ns,
        "offset_ms": (span.start_ns - origin_ns) / _NS_PER_MS if origin_ns else 0.0,
        "duration_ms": span.duration_ns / _NS_PER_MS,
        "status": {"code": span.status_code.name.lower(), "message": span.status_message},
        "event_id": span.event_id or None,
        "attributes": dict(span.attributes),
        "resource": dict(span.resource),
        "events": [
            {"name": e.name, "time_ns": e.time_ns, "attributes": dict(e.attributes)}
            for e in span.events
        ],
    }


def trace_json(trace: Trace) -> dict[str, Any]:
    """A trace as a JSON-ready dict: its summary and its spans in waterfall order."""
    origin = trace.start_ns
    return {
        "trace_id": trace.trace_id,
        "start_time": format_time(origin),
        "duration_ms": trace.duration_ns / _NS_PER_MS,
        "span_count": len(trace.spans),
        "error": trace.has_error,
        "spans": [span_json(span, origin_ns=origin, depth=depth) for depth, span in trace.walk()],
    }


def log_json(record: LogRecord) -> dict[str, Any]:
    """A log record as a JSON-ready dict (one line each for ``fox logs --output json``)."""
    return {
        "seq": record.seq,
        "time": format_time(record.time_ns),
        "time_ns": record.time_ns,
        "severity": record.severity,
        "severity_number": record.severity_number,
        "body": record.body,
        "app": record.app or None,
        "component": record.component or None,
        "ve": record.virtual_environment or None,
        "service": record.service or None,
        "event_id": record.event_id or None,
        "trace_id": record.trace_id or None,
        "span_id": record.span_id or None,
        "attributes": dict(record.attributes),
        "resource": dict(record.resource),
    }
