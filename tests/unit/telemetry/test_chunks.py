"""Hop chunks: built a batch at once or a span at a time, read back as the spans they hold."""

from __future__ import annotations

import msgspec

from kubefox.telemetry import _chunks
from kubefox.telemetry._sql import ROW_OVERHEAD
from kubefox.telemetry.spans import HopSpan, shared_attributes
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
