"""How the SQLite store keeps spans: one row per written batch (a *chunk*), not per span.

A row per span cost about 20 µs of SQLite per span on our machines (a 1 kB
row, a unique index on random trace and span ids, the event index, the time
indexes; ``docs/benchmarks.md``), which at 100 % sampling was most of what
tracing cost the platform. A chunk is one JSON document holding a batch's
spans (each distinct resource once) plus what queries need to find it:

* the trace ids and event ids of its spans as plain text, searched with
  ``instr()`` (a scan of a few bytes per span, far cheaper than keeping two
  random-key B-trees; a match is confirmed after decoding);
* its first and last start times, its latest root span and latest span (for
  ``last_trace``), its span count and payload size (for retention).

Two formats of ``data``: :data:`ENTRIES` (lists with hex ids, made from
records) and :data:`HOPS` (hop spans as msgspec encodes them, ids in base64,
made in one C call from :class:`~kubefox.telemetry.spans.HopSpan` lists). A
component builds its :data:`HOPS` chunk itself and posts it (msgpack) to the
platform's receiver, which stores it as it came: the platform does no work per
component span. It cannot vouch for what a component wrote, so readers check
every span as they decode it (impossible ids or times are left out, text is
cleaned) and skip a chunk that does not decode; a component can only spoil
its own telemetry.

A :data:`HOPS` chunk may hold compact spans too
(:data:`~kubefox.telemetry.spans.CompactSpan`: a kind's index and primitives,
all of them one flat list) with the kinds they name (name, OTLP kind, shared
set); readers expand them into hop spans and check them alike.

Retention still works span by span: a chunk that straddles a limit is
rewritten without the spans that must go. A span sent twice is kept twice
and returned once (the first stored wins), as the contract asks.
"""

from __future__ import annotations

import binascii
import operator
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain, compress, repeat
from typing import Any

import msgspec
import structlog

from kubefox.core.errors import InvalidError
from kubefox.telemetry import attributes as attr
from kubefox.telemetry._sql import ROW_OVERHEAD, clean, clean_value, decode_json, encode_json
from kubefox.telemetry.records import SpanEvent, SpanKind, SpanRecord, StatusCode
from kubefox.telemetry.spans import (
    C_EVENT,
    C_KIND,
    C_PARENT,
    C_START,
    C_TRACE,
    COMPACT_FIELDS,
    HopSpan,
    expand,
    expand_flat,
    shared_attributes,
    span_kinds,
)

log = structlog.get_logger(__name__)

_MAX_NS = (1 << 63) - 1
#: Separates event ids in a chunk's key text; never inside a cleaned id.
SEP = "\x1f"

# positions in a stored span entry
TRACE, SPAN, PARENT, NAME, KIND, START, END, STATUS, MESSAGE, ATTRS, RESOURCE, EVENTS, SCOPE = (
    range(13)
)

Entry = list[Any]

#: ``data`` holds ``[resources, entries]``, entries as lists with hex ids.
ENTRIES = 0
#: ``data`` holds ``[resource, scope, hop spans, shared sets, kinds, compact spans]``
#: as msgspec encodes them: the shared attribute sets its spans name, by index as
#: text (absent when none is and there are no compact spans); the kinds its
#: compact spans name, by index as text, and those spans, flat (both absent when
#: there are none).
HOPS = 1


class ChunkRow(msgspec.Struct, frozen=True, array_like=True):
    """The column values of one chunk; also what a component posts (msgpack)."""

    count: int
    size: int
    min_start: int
    max_start: int
    root_start: int | None
    root_trace: str | None
    last_start: int
    last_trace: str
    data: str
    traces: str
    events: str
    format: int = ENTRIES


class _HopsData(msgspec.Struct, array_like=True):
    """What a :data:`HOPS` chunk's ``data`` holds (the last three may be absent)."""

    resource: dict[str, Any]
    scope: str
    spans: list[HopSpan]
    shared: dict[str, dict[str, Any]] = {}
    kinds: dict[str, Any] = {}
    compact: list[Any] = []


_hops_decoder = msgspec.json.Decoder(_HopsData)
_row_encoder = msgspec.msgpack.Encoder()
_row_decoder = msgspec.msgpack.Decoder(ChunkRow)


def _check_ns(name: str, value: int) -> int:
    if not 0 <= value <= _MAX_NS:
        raise InvalidError(f"{name} must be a Unix time in nanoseconds", value=value)
    return value


def entries_of(spans: Sequence[SpanRecord]) -> tuple[list[dict[str, Any]], list[Entry]]:
    """The resources (each distinct one once) and entries of ``spans``; checks the times."""
    resources: list[dict[str, Any]] = []
    seen: dict[int, int] = {}
    entries: list[Entry] = []
    for span in spans:
        _check_ns("start_ns", span.start_ns)
        _check_ns("end_ns", span.end_ns)
        resource = span.resource
        index = seen.get(id(resource))
        if index is None:
            index = seen[id(resource)] = len(resources)
            resources.append(dict(resource))
        entries.append(
            [
                span.trace_id.lower(),
                span.span_id.lower(),
                span.parent_span_id.lower(),
                clean(span.name),
                int(span.kind),
                span.start_ns,
                span.end_ns,
                int(span.status_code),
                clean(span.status_message),
                span.attributes,
                index,
                [[clean(e.name), e.time_ns, e.attributes] for e in span.events]
                if span.events
                else [],
                clean(span.scope),
            ]
        )
    return resources, entries


_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)


def entries_of_hops(  # noqa: PLR0917 - a chunk's parts, in order
    spans: Sequence[HopSpan],
    resource: Mapping[str, Any],
    scope: str,
    shared: Mapping[str, dict[str, Any]] | None = None,
    kinds: Mapping[str, Any] | None = None,
    compact: Sequence[Any] = (),
) -> tuple[list[dict[str, Any]], list[Entry], int]:
    """Resources, entries and the count of spans left out (impossible ids or times).

    The same entries as :func:`entries_of` on the spans' records, without
    building the records: the platform's own spans and the packed batches of
    components take this way into the store. A span's shared attributes are
    looked up in ``shared`` (the chunk's table, by index as text); an index
    the table lacks adds none. ``compact`` spans (flat, as a chunk holds them)
    come after ``spans``, their kinds looked up in ``kinds``; one of the wrong
    shape or naming a kind the table lacks is left out.
    """
    entries: list[Entry] = []
    rejected = 0
    if compact:
        expanded, rejected = _read_compact(compact, kinds or {})
        spans = [*spans, *expanded]
    scope = clean(scope)
    for span in spans:
        trace_id, span_id, parent = span.trace_id, span.span_id, span.parent_span_id
        start, end = span.start_ns, span.end_ns
        if (
            len(trace_id) != 16
            or len(span_id) != 8
            or len(parent) not in (0, 8)
            or trace_id == _ZERO_TRACE
            or span_id == _ZERO_SPAN
            or not 0 <= start <= _MAX_NS
            or not 0 <= end <= _MAX_NS
        ):
            rejected += 1
            continue
        kind = span.kind if 0 <= span.kind <= 5 else 0
        status = span.status_code if 0 <= span.status_code <= 2 else 0
        attributes = span.attributes
        if span.shared >= 0 and shared:
            common = shared.get(str(span.shared))
            if common:
                attributes = {**common, **attributes}
        entries.append(
            [
                trace_id.hex(),
                span_id.hex(),
                parent.hex(),
                clean(span.name),
                kind,
                start,
                end,
                status,
                clean(span.status_message),
                attributes,
                0,
                [
                    [clean(name), moment if 0 <= moment <= _MAX_NS else 0, values]
                    for name, moment, values in span.events
                ]
                if span.events
                else [],
                scope,
            ]
        )
    return [dict(resource)], entries, rejected


def _read_compact(flat: Sequence[Any], kinds: Mapping[str, Any]) -> tuple[list[HopSpan], int]:
    """The hop spans of a chunk's compact spans, and how many were not ones.

    Nothing read is trusted (a component wrote it): every value's type is
    checked, ids are base64 as JSON keeps bytes.
    """
    spans: list[HopSpan] = []
    rejected = 1 if len(flat) % COMPACT_FIELDS else 0
    for start in range(0, len(flat) - COMPACT_FIELDS + 1, COMPACT_FIELDS):
        index, event, parent_event, trace, span, parent, begin, end, status = flat[
            start : start + COMPACT_FIELDS
        ]
        kind = kinds.get(str(index)) if type(index) is int else None
        if not (
            type(kind) is list
            and len(kind) == 3
            and type(kind[0]) is str
            and type(kind[1]) is int
            and type(kind[2]) is int
            and type(event) is str
            and type(parent_event) is str
            and type(trace) is str
            and type(span) is str
            and type(parent) is str
            and type(begin) is int
            and type(end) is int
            and type(status) is int
        ):
            rejected += 1
            continue
        try:
            ids = [binascii.a2b_base64(text, strict_mode=True) for text in (trace, span, parent)]
        except binascii.Error:
            rejected += 1
            continue
        spans.append(
            expand(
                (index, event, parent_event, *ids, begin, end, status), (kind[0], kind[1], kind[2])
            )
        )
    return spans, rejected


def _event_id(entry: Entry) -> str:
    value = entry[ATTRS].get(attr.EVENT_ID)
    return clean(str(value)) if value is not None and value != "" else ""


def chunk_row(resources: list[dict[str, Any]], entries: list[Entry]) -> ChunkRow:
    """The row keeping ``entries`` (not empty)."""
    data = encode_json([resources, entries])
    root: Entry | None = None
    last = entries[0]
    low = high = last[START]
    events: list[str] = []
    for entry in entries:
        start = entry[START]
        low = min(low, start)
        if start >= last[START]:
            last = entry
        if not entry[PARENT] and (root is None or start >= root[START]):
            root = entry
        event = _event_id(entry)
        if event:
            events.append(event)
    high = last[START]
    return ChunkRow(
        count=len(entries),
        size=ROW_OVERHEAD * len(entries) + len(data),
        min_start=low,
        max_start=high,
        root_start=None if root is None else root[START],
        root_trace=None if root is None else root[TRACE],
        last_start=high,
        last_trace=last[TRACE],
        data=data,
        traces="".join(entry[TRACE] for entry in entries),
        events=SEP + SEP.join(events) + SEP if events else "",
    )


class HopChunkWriter:
    """Builds the :data:`HOPS` chunks of one producer's spans, a batch at once or span by span.

    :meth:`chunk_of` encodes a whole batch in one msgspec call and gathers
    what queries need (key text, times, the latest root) with loops that run
    in C (``map``, ``operator.attrgetter``): no Python code runs per span.
    *Decision, measured:* at 50 connections on hello-world with every request
    traced, building each batch this way at export time used 9.5 µs less CPU
    per request (five spans) than encoding each span into the chunk as it
    ended, which ran about fifteen Python-level calls per span on the hot path.

    :meth:`add` and :meth:`take` build a chunk span by span, cleaning what
    JSON or UTF-8 cannot hold and leaving out a span that cannot be encoded
    at all: the way taken when a batch does not encode as it is. Either way
    the chunk is the one :func:`hop_chunk` makes of the same spans.

    Args:
        resource: the producer's resource attributes.
        scope: the instrumentation scope's name.
    """

    __slots__ = (
        "_data",
        "_events",
        "_head",
        "_last_start",
        "_last_trace",
        "_low",
        "_prefix",
        "_root_start",
        "_root_trace",
        "_shared",
        "_traces",
        "count",
    )

    def __init__(self, resource: Mapping[str, Any], scope: str) -> None:
        # ``[resource, scope, [`` once; each span then appends ``span,``
        self._prefix = encode_json([dict(resource), scope])[:-1].encode() + b","
        self._head = self._prefix + b"["
        self._reset()

    def _reset(self) -> None:
        self._data = bytearray(self._head)
        self._traces = bytearray()
        self._events: list[str] = []
        self._shared: set[int] = set()
        self._low = _AFTER_ALL
        self._last_start = self._root_start = _BEFORE_ALL
        self._last_trace = self._root_trace = b""
        #: Spans in the chunk being built.
        self.count = 0

    def add(self, span: HopSpan) -> None:
        """Encode ``span`` into the chunk; a span that cannot be encoded at all is left out."""
        data = self._data
        mark = len(data)
        try:
            _span_encoder.encode_into(span, data, -1)
        except (UnicodeEncodeError, TypeError, ValueError, OverflowError):
            del data[mark:]  # a failed encode may leave bytes behind
            if not _encode_cleaned(span, data):
                del data[mark:]
                return
        data += b","
        start = span.start_ns
        trace_id = span.trace_id
        self._low = min(self._low, start)
        if start >= self._last_start:
            self._last_start = start
            self._last_trace = trace_id
        if not span.parent_span_id and start >= self._root_start:
            self._root_start = start
            self._root_trace = trace_id
        self._traces += trace_id
        if span.shared >= 0:
            self._shared.add(span.shared)
        event = span.attributes.get(_EVENT_ID)
        if event:
            self._events.append(event if type(event) is str else str(event))
        self.count += 1

    def chunk_of(
        self, spans: Sequence[HopSpan], compact: list[Any] | None = None
    ) -> ChunkRow | None:
        """The chunk of ``spans`` and flat ``compact`` ones; ``None`` if none encodes.

        Call it with nothing added; compact spans are this process's. A batch
        that does not encode as it is (text to clean, a value that is no JSON)
        is built span by span instead (:meth:`add`), its compact spans expanded.
        """
        flat = compact or []
        if not spans and not flat:
            return None
        try:
            return self._batch(spans, flat)
        except (UnicodeEncodeError, TypeError, ValueError, OverflowError):
            for span in [*spans, *expand_flat(flat)]:
                self.add(span)
            return self.take()

    def _batch(self, spans: Sequence[HopSpan], flat: list[Any]) -> ChunkRow:
        data = bytearray(self._prefix)
        _span_encoder.encode_into(spans, data, -1)
        starts = flat[C_START::COMPACT_FIELDS]  # of the compact spans
        count = len(spans) + len(starts)
        shared = set(map(_shared_of, spans))
        kinds = set(flat[C_KIND::COMPACT_FIELDS])
        shared.update(span_kinds[kind][2] for kind in kinds)  # a few kinds
        shared.discard(-1)
        _close(data, shared, kinds, flat)
        # The latest span, and the latest root: of equal starts, the one added last
        # (compact spans count as added after the others).
        latest = _latest(spans, flat, starts, roots=False)
        if latest is None:  # pragma: no cover - chunk_of asks for a span or more
            raise ValueError("a chunk holds one span or more")
        root = _latest(spans, flat, starts, roots=True)
        events = [
            *map(str, filter(None, map(dict.get, map(_attrs_of, spans), repeat(_EVENT_ID)))),
            *filter(None, flat[C_EVENT::COMPACT_FIELDS]),
        ]
        text = data.decode()
        return ChunkRow(
            count=count,
            size=ROW_OVERHEAD * count + len(text),
            min_start=min(chain(starts, map(_start_of, spans))),
            max_start=latest[0],
            root_start=None if root is None else root[0],
            root_trace=None if root is None else root[1].hex(),
            last_start=latest[0],
            last_trace=latest[1].hex(),
            data=text,
            traces=(
                b"".join(map(_trace_of, spans)) + b"".join(flat[C_TRACE::COMPACT_FIELDS])
            ).hex(),
            # cleaning the joined text cleans every id: SEP is left alone
            events=SEP + clean(SEP.join(events)) + SEP if events else "",
            format=HOPS,
        )

    def take(self) -> ChunkRow | None:
        """The chunk of the spans added since the last take (``None`` if none); starts anew."""
        if not self.count:
            return None
        data = self._data
        data[-1:] = b"]"  # the last span's comma closes the span list
        _close(data, self._shared)
        text = data.decode()
        events = self._events
        count = self.count
        rootless = self._root_start == _BEFORE_ALL
        row = ChunkRow(
            count=count,
            size=ROW_OVERHEAD * count + len(text),
            min_start=self._low,
            max_start=self._last_start,
            root_start=None if rootless else self._root_start,
            root_trace=None if rootless else self._root_trace.hex(),
            last_start=self._last_start,
            last_trace=self._last_trace.hex(),
            data=text,
            traces=self._traces.hex(),
            # cleaning the joined text cleans every id: SEP is left alone
            events=SEP + clean(SEP.join(events)) + SEP if events else "",
            format=HOPS,
        )
        self._reset()
        return row


_EVENT_ID = attr.EVENT_ID
_start_of = operator.attrgetter("start_ns")
_trace_of = operator.attrgetter("trace_id")
_parent_of = operator.attrgetter("parent_span_id")
_shared_of = operator.attrgetter("shared")
_attrs_of = operator.attrgetter("attributes")
_AFTER_ALL = 1 << 64
_BEFORE_ALL = -(1 << 64)
_span_encoder = msgspec.json.Encoder(enc_hook=str)


def _latest(
    spans: Sequence[HopSpan], flat: list[Any], starts: list[int], *, roots: bool
) -> tuple[int, bytes] | None:
    """The start and trace of the latest span (or root) of a batch; ``None``: no root.

    ``starts`` are the compact spans' (of ``flat``). Of equal starts, the one
    added last, compact spans after the others. Runs in C (``max``, ``map``,
    ``compress``): nothing per span in Python.
    """
    found: tuple[int, bytes] | None = None
    chosen: Sequence[HopSpan] = spans
    if roots:
        chosen = list(compress(spans, map(operator.not_, map(_parent_of, spans))))
    if chosen:
        span = max(reversed(chosen), key=_start_of)
        found = (span.start_ns, span.trace_id)
    if starts:
        places: Iterable[int] = range(len(starts))
        if roots:
            places = compress(places, map(operator.not_, flat[C_PARENT::COMPACT_FIELDS]))
        last = max(reversed(list(places)), key=starts.__getitem__, default=None)
        if last is not None and (found is None or starts[last] >= found[0]):
            found = (starts[last], flat[last * COMPACT_FIELDS + C_TRACE])
    return found


def _close(
    data: bytearray, shared: set[int], kinds: set[int] | None = None, flat: list[Any] | None = None
) -> None:
    """End a chunk after its closed span list: shared sets, kinds and compact spans, ``]``."""
    if shared or flat:
        data += b","
        _encode_table({str(index): shared_attributes[index] for index in sorted(shared)}, data)
    if flat:
        data += b","
        _span_encoder.encode_into(
            {str(kind): span_kinds[kind] for kind in sorted(kinds or ())}, data, -1
        )
        data += b","
        _span_encoder.encode_into(flat, data, -1)
    data += b"]"


def _encode_table(table: dict[str, dict[str, Any]], into: bytearray) -> None:
    """Append the shared sets of a chunk, cleaned if need be; ``{}`` if even that fails."""
    mark = len(into)
    try:
        _span_encoder.encode_into(table, into, -1)
        return
    except (UnicodeEncodeError, TypeError, ValueError, OverflowError):
        del into[mark:]  # a failed encode may leave bytes behind
    try:
        _span_encoder.encode_into(clean_value(table), into, -1)
        return
    except (UnicodeEncodeError, TypeError, ValueError, OverflowError) as exc:
        del into[mark:]
        log.warning("telemetry.shared_attributes_unencodable", sets=len(table), error=str(exc))
    into += b"{}"


def _encode_cleaned(span: HopSpan, into: bytearray) -> bool:
    """Append ``span`` with text JSON or UTF-8 cannot hold cleaned; whether it could be."""
    try:
        _span_encoder.encode_into(clean_value(list(msgspec.structs.astuple(span))), into, -1)
    except (UnicodeEncodeError, TypeError, ValueError, OverflowError) as exc:
        log.warning("telemetry.span_unencodable", name=span.name, error=str(exc))
        return False
    return True


def hop_chunk(resource: Mapping[str, Any], scope: str, spans: Sequence[HopSpan]) -> ChunkRow:
    """The :data:`HOPS` chunk of ``spans`` (not empty) of one producer."""
    row = HopChunkWriter(resource, scope).chunk_of(spans)
    if row is None:
        raise ValueError("a chunk holds one hop span or more")
    return row


def pack(resource: Mapping[str, Any], scope: str, spans: Sequence[HopSpan]) -> bytes:
    """What a component posts for ``spans``: their chunk, msgpack-encoded."""
    return pack_row(hop_chunk(resource, scope, spans))


def pack_row(row: ChunkRow) -> bytes:
    """What a component posts for a chunk it built: ``row``, msgpack-encoded."""
    return _row_encoder.encode(row)


def unpack(body: bytes) -> ChunkRow:
    """A posted chunk; ``InvalidError`` if ``body`` is not one (its ``data`` is checked on read)."""
    try:
        row = _row_decoder.decode(body)
    except (msgspec.DecodeError, ValueError) as exc:
        raise InvalidError("not a packed span chunk", reason=str(exc)) from exc
    if row.format != HOPS or row.count < 1:
        raise InvalidError("a packed span chunk holds one hop span or more")
    return row


def decode(data: str, fmt: int = ENTRIES) -> tuple[list[dict[str, Any]], list[Entry]]:
    """The resources and entries kept in a chunk's ``data`` (checked, for :data:`HOPS`).

    Raises:
        msgspec.DecodeError, ValueError: ``data`` is not a chunk of format ``fmt``.
    """
    if fmt == HOPS:
        chunk = _hops_decoder.decode(data)
        resources, entries, _ = entries_of_hops(
            chunk.spans, chunk.resource, chunk.scope, chunk.shared, chunk.kinds, chunk.compact
        )
        return resources, entries
    resources, entries = decode_json(data)
    return resources, entries


def _decoded(
    chunks: Iterable[tuple[str, int]],
) -> Iterable[tuple[list[dict[str, Any]], list[Entry]]]:
    for data, fmt in chunks:
        try:
            yield decode(data, fmt)
        except (msgspec.DecodeError, ValueError, TypeError) as exc:
            log.warning("telemetry.chunk_unreadable", error=str(exc))


def _enum(kind: type[SpanKind] | type[StatusCode], value: int) -> Any:
    try:
        return kind(value)
    except ValueError:
        return kind(0)


def record(entry: Entry, resources: list[dict[str, Any]]) -> SpanRecord:
    """The span an entry keeps."""
    return SpanRecord(
        trace_id=entry[TRACE],
        span_id=entry[SPAN],
        parent_span_id=entry[PARENT],
        name=entry[NAME],
        kind=_enum(SpanKind, entry[KIND]),
        start_ns=entry[START],
        end_ns=entry[END],
        status_code=_enum(StatusCode, entry[STATUS]),
        status_message=entry[MESSAGE],
        attributes=entry[ATTRS],
        resource=resources[entry[RESOURCE]],
        events=tuple(
            SpanEvent(name=name, time_ns=moment, attributes=values)
            for name, moment, values in entry[EVENTS]
        ),
        scope=entry[SCOPE],
    )


def spans_of_trace(chunks: Iterable[tuple[str, int]], trace_id: str) -> list[SpanRecord]:
    """The spans of ``trace_id`` in ``(data, format)`` chunks (oldest stored first), each once."""
    out: list[SpanRecord] = []
    seen: set[str] = set()
    for resources, entries in _decoded(chunks):
        for entry in entries:
            if entry[TRACE] == trace_id and entry[SPAN] not in seen:
                seen.add(entry[SPAN])
                out.append(record(entry, resources))
    return out


def latest_trace_of_event(chunks: Iterable[tuple[str, int]], event_id: str) -> str | None:
    """The trace of the span of ``event_id`` that started last (later stored wins a tie)."""
    found: tuple[int, str] | None = None
    for _, entries in _decoded(chunks):
        for entry in entries:
            if _event_id(entry) == event_id and (found is None or entry[START] >= found[0]):
                found = (entry[START], entry[TRACE])
    return None if found is None else found[1]
