"""What the SQL backends share: one table layout, row codecs, the retention plan, follow.

SQLite and PostgreSQL keep the same two tables (``spans`` and ``logs``), with
the indexed fields (trace and span ids, event id, app, component, virtual
environment, service) as columns and the rest as JSON text. Both backends
encode and decode rows here, so they hand out identical records and agree on
what counts against ``max_bytes``.

Text is cleaned before it is stored: NUL characters (PostgreSQL text cannot
hold them) become U+FFFD, and so do lone surrogates (not encodable as UTF-8),
in both backends alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Mapping
from typing import Any, TypeVar

import msgspec

from kubefox.core.errors import InvalidError, UnavailableError
from kubefox.telemetry.protocol import LogQuery, Retention
from kubefox.telemetry.records import LogRecord, SpanEvent, SpanKind, SpanRecord, StatusCode

_E = TypeVar("_E", SpanKind, StatusCode)

#: Bytes counted per row on top of its text and JSON (ids, times, row overhead).
ROW_OVERHEAD = 96

SPAN_COLUMNS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "kind",
    "start_ns",
    "end_ns",
    "status_code",
    "status_message",
    "service",
    "event_id",
    "app",
    "component",
    "ve",
    "attributes",
    "resource",
    "events",
    "scope",
    "size",
)
LOG_COLUMNS = (
    "time_ns",
    "severity_number",
    "severity_text",
    "body",
    "trace_id",
    "span_id",
    "event_id",
    "app",
    "component",
    "ve",
    "service",
    "attributes",
    "resource",
    "size",
)
#: Columns read back for a span (``SPAN_COLUMNS`` minus the derived ones).
SPAN_SELECT = (
    "trace_id, span_id, parent_span_id, name, kind, start_ns, end_ns, status_code, "
    "status_message, attributes, resource, events, scope"
)
LOG_SELECT = (
    "seq, time_ns, severity_number, severity_text, body, trace_id, span_id, attributes, resource"
)

SpanRow = tuple[
    str, str, str, str, int, int, int, int, str, str, str, str, str, str, str, str, str, str, int
]
LogRow = tuple[int, int, str, str, str, str, str, str, str, str, str, str, str, int]


def clean(text: str) -> str:
    """``text`` without NUL characters or lone surrogates (each becomes U+FFFD)."""
    if text.isascii():
        return text.replace("\x00", "\ufffd") if "\x00" in text else text
    text = text.replace("\x00", "\ufffd")
    try:
        text.encode()
    except UnicodeEncodeError:
        return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    return text


def clean_value(value: Any) -> Any:
    """``value`` with every text in it (keys too) cleaned; tuples become lists."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, Mapping):
        return {clean(str(k)): clean_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_value(v) for v in value]
    return value


def encode_json(value: Any) -> str:
    """Compact JSON text of ``value``; values JSON cannot hold are stored as their ``str``."""
    try:
        data = msgspec.json.encode(value, enc_hook=str)
    except (UnicodeEncodeError, TypeError, ValueError, OverflowError):
        data = msgspec.json.encode(clean_value(value), enc_hook=str)
    return clean(data.decode())


def decode_json(text: str) -> Any:
    """The value stored as JSON ``text``."""
    return msgspec.json.decode(text)


_MAX_NS = (1 << 63) - 1


def _check_ns(name: str, value: int) -> int:
    if not 0 <= value <= _MAX_NS:
        raise InvalidError(f"{name} must be a Unix time in nanoseconds", value=value)
    return value


def span_row(span: SpanRecord) -> SpanRow:
    """The ``SPAN_COLUMNS`` values of ``span``; ``InvalidError`` for an impossible time."""
    _check_ns("start_ns", span.start_ns)
    _check_ns("end_ns", span.end_ns)
    attributes = encode_json(dict(span.attributes))
    resource = encode_json(dict(span.resource))
    events = encode_json(
        [
            {"name": e.name, "time_ns": e.time_ns, "attributes": dict(e.attributes)}
            for e in span.events
        ]
    )
    name = clean(span.name)
    message = clean(span.status_message)
    size = ROW_OVERHEAD + len(name) + len(message) + len(attributes) + len(resource) + len(events)
    return (
        span.trace_id,
        span.span_id,
        span.parent_span_id,
        name,
        int(span.kind),
        span.start_ns,
        span.end_ns,
        int(span.status_code),
        message,
        clean(span.service),
        clean(span.event_id),
        clean(span.app),
        clean(span.component),
        clean(span.virtual_environment),
        attributes,
        resource,
        events,
        clean(span.scope),
        size,
    )


def log_row(record: LogRecord) -> LogRow:
    """The ``LOG_COLUMNS`` values of ``record``; ``InvalidError`` for an impossible time."""
    _check_ns("time_ns", record.time_ns)
    attributes = encode_json(dict(record.attributes))
    resource = encode_json(dict(record.resource))
    body = clean(record.body)
    size = ROW_OVERHEAD + len(body) + len(attributes) + len(resource)
    return (
        record.time_ns,
        record.severity_number if 0 <= record.severity_number <= 24 else 0,
        clean(record.severity_text),
        body,
        record.trace_id,
        record.span_id,
        clean(record.event_id),
        clean(record.app),
        clean(record.component),
        clean(record.virtual_environment),
        clean(record.service),
        attributes,
        resource,
        size,
    )


def span_from_row(row: tuple[Any, ...] | Any) -> SpanRecord:
    """A span from the ``SPAN_SELECT`` columns."""
    events = tuple(
        SpanEvent(name=e["name"], time_ns=e["time_ns"], attributes=e["attributes"])
        for e in decode_json(row[11])
    )
    return SpanRecord(
        trace_id=row[0],
        span_id=row[1],
        parent_span_id=row[2],
        name=row[3],
        kind=_enum(SpanKind, row[4], SpanKind.UNSPECIFIED),
        start_ns=row[5],
        end_ns=row[6],
        status_code=_enum(StatusCode, row[7], StatusCode.UNSET),
        status_message=row[8],
        attributes=decode_json(row[9]),
        resource=decode_json(row[10]),
        events=events,
        scope=row[12],
    )


def log_from_row(row: tuple[Any, ...] | Any) -> LogRecord:
    """A log record from the ``LOG_SELECT`` columns."""
    return LogRecord(
        seq=row[0],
        time_ns=row[1],
        severity_number=row[2],
        severity_text=row[3],
        body=row[4],
        trace_id=row[5],
        span_id=row[6],
        attributes=decode_json(row[7]),
        resource=decode_json(row[8]),
    )


def _enum(kind: type[_E], value: int, default: _E) -> _E:
    try:
        return kind(value)
    except ValueError:
        return default


def log_filters(query: LogQuery, placeholder: Callable[[int], str]) -> tuple[str, list[Any]]:
    """The ``AND``-joined SQL conditions of ``query`` and their parameters.

    ``placeholder(n)`` spells the n-th parameter (1-based) in the backend's style.
    """
    conditions: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("app", query.app),
        ("component", query.component),
        ("ve", query.ve),
        ("trace_id", query.trace_id),
    ):
        if value is not None:
            params.append(value)
            conditions.append(f"{column} = {placeholder(len(params))}")
    if query.since_ns is not None:
        params.append(query.since_ns)
        conditions.append(f"time_ns >= {placeholder(len(params))}")
    return " AND ".join(conditions) or "TRUE", params


def byte_targets(span_bytes: int, log_bytes: int, max_bytes: int) -> tuple[int, int] | None:
    """Bytes each kind may keep after a prune, or ``None`` when both fit.

    Over ``max_bytes``, both kinds are cut by the same fraction so that
    together they hold 90% of it: room for the next writes before a prune.
    """
    total = span_bytes + log_bytes
    if total <= max_bytes:
        return None
    ratio = 0.9 * max_bytes / total
    return int(span_bytes * ratio), int(log_bytes * ratio)


class Notifier:
    """Wakes every follower of a store in this process when logs are written or it closes."""

    def __init__(self) -> None:
        self._waiters: set[asyncio.Event] = set()

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._waiters.add(event)
        try:
            yield event
        finally:
            self._waiters.discard(event)

    def notify(self) -> None:
        for event in self._waiters:
            event.set()


async def follow_logs(
    *,
    fetch_after: Callable[[int], Awaitable[list[LogRecord]]],
    last_seq: Callable[[], Awaitable[int]],
    after: int | None,
    notifier: Notifier,
    closed: Callable[[], bool],
    poll_interval: float,
) -> AsyncGenerator[LogRecord, None]:
    """The follow loop both backends run: fetch what is new, else wait for a write or a tick.

    ``fetch_after(seq)`` returns the next matching records after ``seq`` in
    ``seq`` order (a bounded batch); the loop ends quietly once ``closed()``.
    """
    with notifier.subscribe() as woken:
        position = await last_seq() if after is None else after
        while not closed():
            woken.clear()
            try:
                batch = await fetch_after(position)
            except UnavailableError:
                if closed():
                    return
                raise
            for record in batch:
                position = record.seq
                yield record
            if batch:
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll_interval):
                    await woken.wait()


class PrunePacer:
    """When a store prunes on write: after ``prune_every`` records or ``prune_interval`` seconds.

    Both adapters write in batches and prune in the same rhythm; keeping the
    count and the clock here keeps that rhythm one rule.
    """

    def __init__(self) -> None:
        self._written = 0
        self._last = time.monotonic()

    def pruned(self) -> None:
        """Start counting again: a prune just ran."""
        self._written = 0
        self._last = time.monotonic()

    def due_after(self, count: int, retention: Retention) -> bool:
        """Note ``count`` records written; whether the retention should be enforced now."""
        self._written += count
        return (
            self._written >= retention.prune_every
            or time.monotonic() - self._last >= retention.prune_interval
        )
