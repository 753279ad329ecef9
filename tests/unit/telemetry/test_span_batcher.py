"""The span batcher: a task of the event loop, every destination gets each batch, bounded."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from kubefox.telemetry._chunks import NAME, SCOPE, ChunkRow, decode
from kubefox.telemetry.export import SpanBatcher
from kubefox.telemetry.spans import CompactSpan, HopSpan, shared_attributes, span_kinds
from kubefox.telemetry.tracing import HopTracer, LazySpan


class Kept:
    """A destination keeping every batch (and the thread it was sent from)."""

    def __init__(self, *, fail: bool = False) -> None:
        self.batches: list[list[HopSpan]] = []
        self.threads: set[str] = set()
        self.fail = fail
        self.stopped = False
        self.sent = asyncio.Event()

    async def send(self, spans: list[HopSpan]) -> None:
        self.threads.add(threading.current_thread().name)
        if self.fail:
            raise OSError("collector down")
        self.batches.append(spans)
        self.sent.set()

    def shutdown(self) -> None:
        self.stopped = True


def _names(kept: Kept) -> list[str]:
    return [span.name for batch in kept.batches for span in batch]


def _emit(tracer: HopTracer, count: int) -> None:
    for n in range(count):
        tracer.end(tracer.start(f"hop {n}", parent=None))


async def test_a_flush_from_another_thread_sends_on_the_loop_to_every_destination() -> None:
    """A failing destination does not keep the others from their batch."""
    good, broken = Kept(), Kept(fail=True)
    batcher = SpanBatcher([broken, good], delay=30.0)
    _emit(HopTracer(batcher), 5)

    assert await asyncio.to_thread(batcher.force_flush, 5.0)
    await asyncio.to_thread(batcher.shutdown)

    assert _names(good) == [f"hop {n}" for n in range(5)]
    assert good.threads == {threading.current_thread().name}  # the loop's, not a worker's
    assert good.stopped
    assert broken.stopped


async def test_batches_go_out_on_their_own_after_the_delay() -> None:
    """Nobody needs to flush: the loop's task sends what waited ``delay`` seconds."""
    kept = Kept()
    batcher = SpanBatcher([kept], delay=0.01)
    _emit(HopTracer(batcher), 3)

    async with asyncio.timeout(5):
        await kept.sent.wait()
    await asyncio.to_thread(batcher.shutdown)

    assert _names(kept) == ["hop 0", "hop 1", "hop 2"]


async def test_under_load_batches_wait_for_the_busy_delay() -> None:
    """With busy_spans or more waiting, an export waits busy_delay; fewer leave after delay."""
    loop = asyncio.get_running_loop()
    busy, quiet = Kept(), Kept()
    busy_batcher = SpanBatcher([busy], delay=0.02, busy_delay=0.5, busy_spans=3)
    quiet_batcher = SpanBatcher([quiet], delay=0.02, busy_delay=0.5, busy_spans=3)
    started = loop.time()
    _emit(HopTracer(busy_batcher), 3)
    _emit(HopTracer(quiet_batcher), 2)

    async with asyncio.timeout(5):
        await quiet.sent.wait()
        quiet_after = loop.time() - started
        await busy.sent.wait()
        busy_after = loop.time() - started
    await asyncio.to_thread(busy_batcher.shutdown)
    await asyncio.to_thread(quiet_batcher.shutdown)

    assert quiet_after < 0.4 <= busy_after
    assert _names(busy) == ["hop 0", "hop 1", "hop 2"]


async def test_a_busy_batcher_sends_before_half_its_queue_is_taken() -> None:
    """The busy delay never lets more than half of max_queue wait: no span is dropped for it."""
    kept = Kept()
    batcher = SpanBatcher([kept], delay=0.02, busy_delay=30.0, busy_spans=1, max_queue=8)
    _emit(HopTracer(batcher), 4)

    async with asyncio.timeout(5):
        await kept.sent.wait()
    await asyncio.to_thread(batcher.shutdown)

    assert _names(kept) == [f"hop {n}" for n in range(4)]
    assert batcher.dropped == 0


async def test_the_queue_is_bounded_and_batches_are_cut_at_max_batch() -> None:
    """Over max_queue waiting spans are dropped and counted; a batch holds max_batch at most."""
    kept = Kept()
    batcher = SpanBatcher([kept], delay=30.0, max_batch=3, max_queue=7)
    _emit(HopTracer(batcher), 10)

    await asyncio.to_thread(batcher.shutdown)

    assert batcher.dropped == 3
    assert [len(batch) for batch in kept.batches] == [3, 3, 1]
    assert _names(kept) == [f"hop {n}" for n in range(7)]


async def test_spans_ended_after_shutdown_are_dropped() -> None:
    """A role that stopped exports nothing more."""
    kept = Kept()
    batcher = SpanBatcher([kept])
    await asyncio.to_thread(batcher.shutdown)
    tracer = HopTracer(batcher)

    tracer.end(tracer.start("late", parent=None))

    assert await asyncio.to_thread(batcher.force_flush, 1.0)
    assert kept.batches == []
    assert batcher.dropped == 1


class Chunks:
    """A chunk destination keeping every chunk."""

    def __init__(self) -> None:
        self.rows: list[ChunkRow] = []
        self.stopped = False

    async def send_chunk(self, row: ChunkRow) -> None:
        self.rows.append(row)

    def shutdown(self) -> None:
        self.stopped = True


def _chunk_names(chunks: Chunks) -> list[str]:
    return [entry[NAME] for row in chunks.rows for entry in decode(row.data, row.format)[1]]


async def test_chunk_destinations_get_the_batch_as_the_store_keeps_it() -> None:
    """One chunk of the role's resource and scope; span destinations still get the spans."""
    chunks, kept = Chunks(), Kept()
    batcher = SpanBatcher(
        [kept], chunks=[chunks], resource={"service.name": "httpsrv"}, scope="kubefox.httpsrv"
    )
    _emit(HopTracer(batcher), 4)

    await asyncio.to_thread(batcher.shutdown)

    [row] = chunks.rows
    resources, entries = decode(row.data, row.format)
    assert resources == [{"service.name": "httpsrv"}]
    assert {entry[SCOPE] for entry in entries} == {"kubefox.httpsrv"}
    assert _chunk_names(chunks) == _names(kept) == [f"hop {n}" for n in range(4)]
    assert chunks.stopped


async def test_chunks_are_cut_at_max_batch_and_the_queue_is_bounded() -> None:
    """A chunk holds max_batch spans at most; over max_queue waiting, spans are dropped."""
    chunks = Chunks()
    batcher = SpanBatcher(chunks=[chunks], delay=30.0, max_batch=3, max_queue=7)
    _emit(HopTracer(batcher), 10)

    await asyncio.to_thread(batcher.shutdown)

    assert batcher.dropped == 3
    assert [row.count for row in chunks.rows] == [3, 3, 1]
    assert _chunk_names(chunks) == [f"hop {n}" for n in range(7)]


def test_a_flush_off_any_loop_sends_the_chunk() -> None:
    """Spans added with no event loop running (a script, a test) still go out on flush."""
    chunks = Chunks()
    batcher = SpanBatcher(chunks=[chunks])
    _emit(HopTracer(batcher), 2)

    assert batcher.force_flush(1.0)

    assert _chunk_names(chunks) == ["hop 0", "hop 1"]


def _lazy(name: str, build: Callable[[LazySpan], HopSpan] | None = None) -> LazySpan:
    def made(lazy: LazySpan) -> HopSpan:
        _, name, _, _, _, trace_id, span_id, parent, start, end, _ = lazy
        return HopSpan(trace_id, span_id, parent, name, 1, start, end)

    return (build or made, name, None, "", "", b"\x01" * 16, b"\x02" * 8, b"", 1, 2, 0)


async def test_deferred_spans_are_built_when_exported_and_count_in_the_queue() -> None:
    """defer keeps what a span is made of; the export builds it. One that cannot be is left out."""

    def broken(lazy: LazySpan) -> HopSpan:
        raise ValueError("no span")

    kept = Kept()
    batcher = SpanBatcher([kept], delay=30.0, max_queue=4)
    tracer = HopTracer(batcher)
    _emit(tracer, 1)
    tracer.defer(_lazy("deferred 1"))
    tracer.defer(_lazy("unbuildable", broken))
    tracer.defer(_lazy("deferred 2"))
    tracer.defer(_lazy("over the queue"))

    await asyncio.to_thread(batcher.shutdown)

    assert batcher.dropped == 1
    assert _names(kept) == ["hop 0", "deferred 1", "deferred 2"]


def _compact_span(n: int) -> CompactSpan:
    shared = shared_attributes.share({"batcher-test": True}).index
    kind = span_kinds.index("compact", 2, shared)
    return (kind, f"ev-{n}", "", b"\x01" * 16, n.to_bytes(8, "big"), b"", n, n + 1, 200)


async def test_compact_spans_go_out_in_the_chunk_and_whole_to_span_destinations() -> None:
    """Kept flat until the export; the chunk holds them, a span destination gets them built."""
    chunks, kept = Chunks(), Kept()
    batcher = SpanBatcher([kept], chunks=[chunks], delay=30.0, max_batch=2, max_queue=3)
    tracer = HopTracer(batcher)
    _emit(tracer, 1)
    for n in range(1, 5):
        tracer.keep(_compact_span(n))

    await asyncio.to_thread(batcher.shutdown)

    assert batcher.dropped == 1  # max_queue bounds the compact spans too
    assert [row.count for row in chunks.rows] == [3, 1]  # a batch: up to max_batch of each form
    assert _chunk_names(chunks) == _names(kept) == ["hop 0", "compact", "compact", "compact"]
    ids = [span.attributes["kubefox.event.id"] for span in kept.batches[1]]
    assert ids == ["ev-3"]
