"""Hop chunks: built a batch at once or a span at a time, read back as the spans they hold."""

from __future__ import annotations

from typing import Any

import msgspec

from kubefox.telemetry import _chunks
from kubefox.telemetry._sql import ROW_OVERHEAD
from kubefox.telemetry.spans import (
    C_EVENT,
    C_TRACE,
    COMPACT_FIELDS,
    HopSpan,
    expand,
    shared_attributes,
    span_kinds,
)
from tests.unit.telemetry.hops import TRACE, hop

RESOURCE = {"service.name": "httpsrv", "kubefox.platform": "demo"}


def _batch_chunk(spans: list[HopSpan]) -> _chunks.ChunkRow:
    """What encoding the whole batch at once, as before the writer, made of ``spans``."""
    root = max((s for s in spans if not s.parent_span_id), key=lambda s: s.start_ns)
    last = max(reversed(spans), key=lambda s: s.start_ns)
    data = msgspec.json.encode([RESOURCE, "scope", spans]).decode()
    events = [str(s.attributes["kubefox.event.id"]) for s in spans]
    return _chunks.ChunkRow(
        count=len(spans),
        size=ROW_OVERHEAD * len(spans) + len(data),
        min_start=min(s.start_ns for s in spans),
        max_start=last.start_ns,
        root_start=root.start_ns,
        root_trace=root.trace_id.hex(),
        last_start=last.start_ns,
        last_trace=last.trace_id.hex(),
        data=data,
        traces="".join(s.trace_id.hex() for s in spans),
        events=_chunks.SEP + _chunks.SEP.join(events) + _chunks.SEP,
        format=_chunks.HOPS,
    )


def test_a_chunk_written_span_by_span_is_the_batch_s_chunk() -> None:
    """Same data, key text, times and latest root as encoding the batch at once."""
    spans = [hop(2), hop(1), hop(3, parent=(2).to_bytes(8, "big"), start=5), hop(4)]
    writer = _chunks.HopChunkWriter(RESOURCE, "scope")
    for span in spans:
        writer.add(span)

    row = writer.take()

    assert row == _batch_chunk(spans)
    assert writer.take() is None  # taking starts a new chunk


def test_a_batch_s_chunk_is_the_one_written_span_by_span() -> None:
    """chunk_of, which gathers the key text in C, gives the chunk add and take give."""
    spans = [hop(2), hop(1), hop(3, parent=(2).to_bytes(8, "big"), start=5), hop(4)]

    row = _chunks.HopChunkWriter(RESOURCE, "scope").chunk_of(spans)

    assert row == _batch_chunk(spans)


def test_of_spans_starting_together_the_one_added_last_is_the_latest() -> None:
    """Ties in start time go to the later span, for the latest span and the latest root."""
    spans = [
        hop(1, start=7),
        hop(2, start=7, parent=(1).to_bytes(8, "big")),
        hop(3, start=7),
        hop(4, start=7, parent=(3).to_bytes(8, "big")),
    ]
    spans[2].trace_id = bytes(range(1, 17))
    spans[3].trace_id = bytes(range(2, 18))
    writer = _chunks.HopChunkWriter(RESOURCE, "scope")
    for span in spans:
        writer.add(span)
    one_by_one = writer.take()

    row = _chunks.HopChunkWriter(RESOURCE, "scope").chunk_of(spans)

    assert row == one_by_one
    assert row is not None
    assert (row.root_trace, row.last_trace) == (spans[2].trace_id.hex(), spans[3].trace_id.hex())


def test_a_chunk_without_a_root_span_has_no_root() -> None:
    """Spans whose parents live elsewhere (a component's) give the chunk no root."""
    row = _chunks.hop_chunk(RESOURCE, "scope", [hop(1, parent=b"\x01" * 8)])

    assert (row.root_start, row.root_trace) == (None, None)
    assert row.last_trace == TRACE.hex()


def test_text_json_cannot_hold_is_stored_cleaned() -> None:
    """A lone surrogate or NUL in a name or attribute becomes U+FFFD; the span is kept."""
    bad = hop(2, attributes={"note": "a\ud800b"})
    bad.name = "hop\x00 \udfff"

    row = _chunks.hop_chunk(RESOURCE, "scope", [hop(1), bad])

    _, entries = _chunks.decode(row.data, row.format)
    assert [entry[_chunks.NAME] for entry in entries] == ["hop 1", "hop\ufffd \ufffd"]
    assert entries[1][_chunks.ATTRS]["note"] == "a\ufffdb"


def test_a_span_that_cannot_be_encoded_is_left_out_not_raised() -> None:
    """Adding a span never fails the hop that ended it; the chunk keeps the others."""

    class Unprintable:
        def __str__(self) -> str:
            raise ValueError("no text")

    row = _chunks.HopChunkWriter(RESOURCE, "scope").chunk_of(
        [hop(1), hop(2, attributes={"odd": Unprintable()}), hop(3)]
    )

    assert row is not None
    _, entries = _chunks.decode(row.data, row.format)
    assert [entry[_chunks.NAME] for entry in entries] == ["hop 1", "hop 3"]
    assert row.count == 2
    assert row.traces == TRACE.hex() * 2


def test_a_chunk_holds_each_shared_set_its_spans_name_once() -> None:
    """Spans naming a shared set read back with its attributes; the chunk stores it once."""
    index = shared_attributes.share({"kubefox.app": "hello", "kubefox.component": "backend"}).index
    spans = [hop(1), hop(2), hop(3, attributes={"kubefox.component": "own wins"})]
    for span in spans:
        span.shared = index

    row = _chunks.hop_chunk(RESOURCE, "scope", spans)
    _, entries = _chunks.decode(row.data, row.format)

    assert row.data.count('"kubefox.app"') == 1
    assert [entry[_chunks.ATTRS] for entry in entries] == [
        {"kubefox.app": "hello", "kubefox.component": "backend", "kubefox.event.id": "ev-1"},
        {"kubefox.app": "hello", "kubefox.component": "backend", "kubefox.event.id": "ev-2"},
        {"kubefox.app": "hello", "kubefox.component": "own wins", "kubefox.event.id": "ev-3"},
    ]


def test_a_chunk_without_shared_sets_or_with_an_unknown_one_still_reads() -> None:
    """A chunk of before shared sets reads as it did; a set the chunk lacks adds nothing."""
    old = msgspec.json.encode([RESOURCE, "scope", [hop(1)]]).decode()
    stray = hop(2)
    stray.shared = 7
    lacking = msgspec.json.encode([RESOURCE, "scope", [stray], {"1": {"x": 1}}]).decode()

    _, old_entries = _chunks.decode(old, _chunks.HOPS)
    _, lacking_entries = _chunks.decode(lacking, _chunks.HOPS)

    assert old_entries[0][_chunks.ATTRS] == {"kubefox.event.id": "ev-1"}
    assert lacking_entries[0][_chunks.ATTRS] == {"kubefox.event.id": "ev-2"}


def test_a_shared_set_json_cannot_hold_is_stored_cleaned() -> None:
    """A lone surrogate in a shared attribute becomes U+FFFD; the spans keep their set."""
    index = shared_attributes.share({"kubefox.app": "he\ud800llo"}).index
    span = hop(1)
    span.shared = index

    row = _chunks.hop_chunk(RESOURCE, "scope", [span])
    _, entries = _chunks.decode(row.data, row.format)

    assert entries[0][_chunks.ATTRS] == {"kubefox.app": "he\ufffdllo", "kubefox.event.id": "ev-1"}


def _compact(n: int, kind: int, *, parent: bytes = b"", start: int | None = None) -> list[Any]:
    """Compact span ``n``, as :func:`hop` makes span ``n`` but for its kind's name and set."""
    span = hop(n, parent=parent, start=start)
    return [
        kind,
        f"ev-{n}",
        "",
        span.trace_id,
        span.span_id,
        span.parent_span_id,
        span.start_ns,
        span.end_ns,
        200,
    ]


def _kind(name: str) -> int:
    shared = shared_attributes.share({"kubefox.app": "hello", "kubefox.hop": name}).index
    return span_kinds.index(name, 2, shared)


def test_compact_spans_read_back_as_the_spans_they_stand_for() -> None:
    """A chunk of compact spans reads as the chunk of their expanded spans, keys and all."""
    kind = _kind("compact hop")
    flat = [
        *_compact(2, kind),
        *_compact(1, kind),
        *_compact(3, kind, parent=(2).to_bytes(8, "big"), start=5),
    ]
    expanded = [expand(flat[i : i + COMPACT_FIELDS]) for i in range(0, len(flat), COMPACT_FIELDS)]

    row = _chunks.HopChunkWriter(RESOURCE, "scope").chunk_of([], flat)
    whole = _chunks.hop_chunk(RESOURCE, "scope", expanded)

    assert row is not None
    assert _chunks.decode(row.data, row.format) == _chunks.decode(whole.data, whole.format)
    keys = ("count", "min_start", "max_start", "root_start", "root_trace", "last_trace", "traces")
    assert [getattr(row, key) for key in (*keys, "events")] == [
        getattr(whole, key) for key in (*keys, "events")
    ]
    assert row.size < whole.size  # a kind's name and set are in the chunk once
    _, entries = _chunks.decode(row.data, row.format)
    assert entries[0][_chunks.ATTRS] == {
        "kubefox.app": "hello",
        "kubefox.hop": "compact hop",
        "kubefox.event.id": "ev-2",
        "http.response.status_code": 200,
    }


def test_a_chunk_of_built_and_compact_spans_holds_both() -> None:
    """Built spans first, then compact ones; of equal starts the compact one is the latest."""
    kind = _kind("mixed hop")
    built = [hop(1, start=9), hop(2, start=3, parent=(1).to_bytes(8, "big"))]
    compact_trace = bytes(range(3, 19))
    flat = _compact(4, kind, start=9)
    flat[C_TRACE] = compact_trace

    row = _chunks.HopChunkWriter(RESOURCE, "scope").chunk_of(built, flat)

    assert row is not None
    _, entries = _chunks.decode(row.data, row.format)
    assert [entry[_chunks.NAME] for entry in entries] == ["hop 1", "hop 2", "mixed hop"]
    assert row.count == 3
    assert (row.min_start, row.max_start) == (3, 9)
    assert row.last_trace == row.root_trace == compact_trace.hex()
    assert row.traces == (TRACE * 2 + compact_trace).hex()
    assert row.events == _chunks.SEP + _chunks.SEP.join(["ev-1", "ev-2", "ev-4"]) + _chunks.SEP


def test_compact_spans_of_the_wrong_shape_are_left_out() -> None:
    """A component's chunk is not trusted: a bad value leaves its span out, not the chunk."""
    good = _compact(1, 0)
    bad_kind = [*good[:0], 9, *good[1:]]
    text_time = [*good[:6], "soon", *good[7:]]
    bad_id = [*good[:3], "not base64!", *good[4:]]
    ids = [msgspec.json.decode(msgspec.json.encode(value)) for value in good]
    data = msgspec.json.encode(
        [
            RESOURCE,
            "scope",
            [],
            {"0": {"kubefox.app": "hello"}},
            {"0": ["good", 2, 0], "9": ["odd kind", "server", 0]},
            [*ids, *bad_kind, *text_time, *bad_id, *ids[:4]],
        ]
    ).decode()

    _, entries = _chunks.decode(data, _chunks.HOPS)

    assert [entry[_chunks.NAME] for entry in entries] == ["good"]
    assert entries[0][_chunks.ATTRS]["kubefox.app"] == "hello"


def test_a_compact_span_with_text_json_cannot_hold_is_stored_cleaned() -> None:
    """A lone surrogate in a compact span's event id is cleaned; the batch is still stored."""
    kind = _kind("dirty hop")
    flat = _compact(1, kind)
    flat[C_EVENT] = "ev-\ud800"

    row = _chunks.HopChunkWriter(RESOURCE, "scope").chunk_of([hop(2)], flat)

    assert row is not None
    _, entries = _chunks.decode(row.data, row.format)
    assert [entry[_chunks.ATTRS]["kubefox.event.id"] for entry in entries] == ["ev-2", "ev-\ufffd"]
