"""Hop spans leave the process in batches, cut and encoded on the event loop.

:class:`SpanBatcher` takes each ended span on the hot path (a
:class:`~kubefox.telemetry.spans.HopSpan`, a lazy one, or a compact one kept
flat); a task of the role's event loop wakes every ``delay``
seconds (``busy_delay`` under load) and hands the batch to every destination:

* :class:`StoreDestination`: straight into the platform's telemetry store
  (httpsrv and the broker run in the platform process: no HTTP round trip);
* :class:`PackedDestination`: from a component, the batch's chunk, built
  here and posted (msgpack, on the loop) to the platform's receiver
  (:data:`~kubefox.telemetry.spans.PACKED_PATH`), which stores it as it is;
* :class:`OtlpDestination`: OTLP to an external collector through the
  OpenTelemetry SDK's own exporter (protobuf, its headers and retries).

*Decision:* a span is only appended to a list when it ends; each batch is
encoded at export time on the event loop, in one msgspec call with the
chunk's key text gathered by loops in C (see
:class:`~kubefox.telemetry._chunks.HopChunkWriter`), a component's chunk is posted on the loop
too, and only the SQLite store and an external collector's exporter (blocking
APIs) run on a worker thread. Python work on a second thread, however little,
made the loop's thread wait for the GIL after each of its system calls (the
convoy effect): measured in the platform at 100 % sampling, socket writes and
``getrandom`` took three to five times as long per call while a thread built
batches, and posting chunks with ``http.client`` from a worker thread cost 4 %
of the throughput (see :mod:`kubefox.telemetry._post`).

A destination that fails logs it and loses that batch; the others still
get it. Spans beyond ``max_queue`` waiting are dropped and counted, so a
stuck destination cannot grow memory.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from kubefox.telemetry._chunks import ChunkRow, HopChunkWriter, decode, pack_row, record
from kubefox.telemetry._post import Poster, on_loop
from kubefox.telemetry.spans import (
    COMPACT_FIELDS,
    PACKED_MEDIA_TYPE,
    PACKED_PATH,
    CompactSpan,
    HopSpan,
    expand_flat,
)
from kubefox.telemetry.tracing import LazySpan

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter

    from kubefox.telemetry.protocol import TelemetryStore

log = structlog.get_logger(__name__)

#: Seconds between two exports: short, so ``fox trace`` finds a request made a moment ago.
DEFAULT_DELAY = 0.5
#: Seconds between two exports under load (see :class:`SpanBatcher`).
DEFAULT_BUSY_DELAY = 2.0
#: Spans waiting at an export's time that make it a busy one (500 a second and more).
DEFAULT_BUSY_SPANS = 250
DEFAULT_MAX_BATCH = 2048
DEFAULT_MAX_QUEUE = 16384


class SpanDestination(Protocol):
    """Where a batch of ended spans goes; ``send`` runs on the batcher's event loop."""

    async def send(self, spans: list[HopSpan]) -> None:
        """Send ``spans``: encode here, block only in a worker thread; raises on failure."""

    def shutdown(self) -> None:
        """Release connections; no send follows."""


class ChunkDestination(Protocol):
    """Where a batch goes as a chunk; ``send_chunk`` runs on the batcher's event loop."""

    async def send_chunk(self, row: ChunkRow) -> None:
        """Send ``row``: block only in a worker thread; raises on failure."""

    def shutdown(self) -> None:
        """Release connections; no send follows."""


class SpanBatcher:
    """Collects ended spans and exports them in batches from a task of the event loop.

    Spans are added on the loop that runs the role (the first :meth:`add`
    starts the task there). :meth:`force_flush` and :meth:`shutdown` block,
    so they are called from another thread (``TelemetryProviders.aflush`` and
    ``aclose`` do), never on that loop.

    *Decision, measured:* under load an export is sent every ``busy_delay``
    seconds instead of every ``delay``: when ``busy_spans`` or more spans
    wait at an export's time, it is put off until ``busy_delay`` has passed
    since the last one (or half the queue is taken). What an export costs
    barely depends on its size: at 50 connections on hello-world, exporting
    every 2 s instead of every 0.5 s gave 9 % more throughput with every
    request traced (5 % in the median round; 18 alternating rounds). Every
    5 s instead of 2 s (OpenTelemetry's own default) measured no better once
    the CPU a system spends between its phases is counted: 517 against 514
    µs per request. A developer's few requests still leave within ``delay``;
    ``fox trace`` waits for a trace's missing spans.

    Args:
        destinations: every batch of spans goes to each of them.
        chunks: every batch, as a chunk of ``resource`` and ``scope``, goes to each of them.
        resource: resource attributes of every span (the role's), for ``chunks``.
        scope: the instrumentation scope's name, for ``chunks``.
        delay: seconds between two exports.
        busy_delay: seconds between two exports while ``busy_spans`` or more wait.
        busy_spans: spans waiting that make an export's time a busy one.
        max_batch: spans per batch (and chunk) at most, of each form (built or lazy, compact).
        max_queue: spans kept waiting at most, of each form; more are dropped (counted
            in ``dropped``).
    """

    def __init__(
        self,
        destinations: Sequence[SpanDestination] = (),
        *,
        chunks: Sequence[ChunkDestination] = (),
        resource: Mapping[str, Any] | None = None,
        scope: str = "",
        delay: float = DEFAULT_DELAY,
        busy_delay: float = DEFAULT_BUSY_DELAY,
        busy_spans: int = DEFAULT_BUSY_SPANS,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_queue: int = DEFAULT_MAX_QUEUE,
    ) -> None:
        self.destinations = tuple(destinations)
        self.chunks = tuple(chunks)
        self.delay = delay
        self.busy_delay = max(delay, busy_delay)
        self.busy_spans = busy_spans
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.dropped = 0
        # Ended spans, built or lazy, wait here until the next export (see :meth:`add`).
        self._queue: list[HopSpan | LazySpan] = []
        # Compact spans, one after another, COMPACT_FIELDS values each (see :meth:`keep`).
        self._flat: list[Any] = []
        self._writer = HopChunkWriter(resource or {}, scope) if self.chunks else None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    def add(self, span: HopSpan | LazySpan) -> None:
        """Queue one ended span, built or lazy (the hot path: a length check and an append).

        *Decision, measured:* the hops' spans come lazy
        (:data:`~kubefox.telemetry.tracing.LazySpan`: a tuple of what the
        span is made of) and are built in the export's loop: at 50
        connections on hello-world with every request traced, building a
        component's three spans there instead of while the request ran used
        16 µs less CPU per request (18.0 → 16.7 % of the throughput).
        """
        queue = self._queue
        if len(queue) >= self.max_queue:
            self.dropped += 1
            return
        queue.append(span)
        if self._task is None:
            self._start()

    #: What :meth:`HopTracer.finish <kubefox.telemetry.tracing.HopTracer.finish>`
    #: hands a lazy span to: it is queued as it is.
    defer = add

    def keep(self, span: CompactSpan) -> None:
        """Queue one compact span (the hot path: a length check and an extend).

        *Decision, measured:* the hops whose spans have a kind (the broker's,
        a component's handler and calls) hand them on compact, and they stay
        compact until read: kept flat in one list, encoded in one C call into
        the chunk (:class:`~kubefox.telemetry._chunks.HopChunkWriter`), where a
        lazy span was built into a :class:`HopSpan` first, for about 4.7 µs of
        Python per span, and its tuple stayed tracked by the garbage collector
        while it waited. See ``docs/benchmarks.md``.
        """
        flat = self._flat
        if len(flat) >= self.max_queue * COMPACT_FIELDS:
            self.dropped += 1
            return
        flat.extend(span)
        if self._task is None:
            self._start()

    @property
    def waiting(self) -> int:
        """Spans waiting for the next export (``max_queue`` bounds each form alone)."""
        return len(self._queue) + len(self._flat) // COMPACT_FIELDS

    def _start(self) -> None:
        if self._stopped:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not on a loop (a test): the spans wait for a flush
        self._loop = loop
        self._task = loop.create_task(self._run(), name="kubefox-spans")

    async def _run(self) -> None:
        clock = asyncio.get_running_loop().time
        last = clock()
        while True:
            await asyncio.sleep(self.delay)
            waiting = self.waiting
            if (
                waiting >= self.busy_spans
                and waiting < self.max_queue // 2
                and clock() - last < self.busy_delay - self.delay / 2
            ):
                continue  # busy: this export waits for the busy delay (see the class)
            last = clock()
            await self._export()

    async def _export(self) -> None:
        queue, self._queue = self._queue, []
        flat, self._flat = self._flat, []
        spans = _built(queue)
        writer = self._writer
        size = self.max_batch
        # A batch holds up to max_batch spans of each form, the same slice of each.
        for start in range(0, max(len(spans), len(flat) // COMPACT_FIELDS), size):
            batch = spans[start : start + size]
            compact = flat[start * COMPACT_FIELDS : (start + size) * COMPACT_FIELDS]
            row = writer.chunk_of(batch, compact) if writer is not None else None
            if row is not None:
                for chunked in self.chunks:
                    try:
                        await chunked.send_chunk(row)
                    except Exception as exc:  # noqa: BLE001 - telemetry must not stop the role
                        _export_failed(chunked, row.count, exc)
            if self.destinations:
                await self._send(batch + _expanded(compact))

    async def _send(self, spans: list[HopSpan]) -> None:
        for destination in self.destinations:
            try:
                await destination.send(spans)
            except Exception as exc:  # noqa: BLE001 - telemetry must not stop the role
                _export_failed(destination, len(spans), exc)

    def force_flush(self, timeout: float = 10.0) -> bool:
        """Export everything queued now; whether it was done within ``timeout`` seconds."""
        loop = self._loop
        if loop is None or loop.is_closed() or not loop.is_running():
            if self.waiting:
                asyncio.run(self._export())  # destinations bound to no loop (tests)
            return True
        if on_loop(loop):
            loop.create_task(self._export())  # cannot wait here without blocking the loop
            return False
        try:
            asyncio.run_coroutine_threadsafe(self._export(), loop).result(timeout)
        except (TimeoutError, concurrent.futures.CancelledError, RuntimeError):
            return False
        return True

    def shutdown(self, timeout: float = 10.0) -> None:
        """Export what is queued, stop the task and the destinations; later spans are lost."""
        self._stopped = True
        self.max_queue = 0
        self.force_flush(timeout)
        task, loop = self._task, self._loop
        if task is not None and loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(task.cancel)
        stopping: list[ChunkDestination | SpanDestination] = [*self.chunks, *self.destinations]
        for destination in stopping:
            with contextlib.suppress(Exception):  # shutting down: nothing left to tell
                destination.shutdown()


def _built(queue: list[HopSpan | LazySpan]) -> list[HopSpan]:
    """The spans of ``queue``, lazy ones built; one that cannot be built is logged and left out."""
    spans = []
    for item in queue:
        if isinstance(item, HopSpan):
            spans.append(item)
            continue
        try:
            spans.append(item[0](item))
        except Exception as exc:  # noqa: BLE001 - telemetry must not stop the role
            log.warning("spans.unbuildable", error=str(exc))
    return spans


def _expanded(flat: list[Any]) -> list[HopSpan]:
    """The spans of a flat list of compact ones (for destinations that take spans)."""
    try:
        return expand_flat(flat)
    except Exception as exc:  # noqa: BLE001 - telemetry must not stop the role
        log.warning("spans.unbuildable", spans=len(flat) // COMPACT_FIELDS, error=str(exc))
        return []


def _export_failed(destination: object, count: int, exc: Exception) -> None:
    log.warning(
        "spans.export_failed",
        destination=type(destination).__name__,
        spans=count,
        error=str(exc),
    )


class StoreDestination:
    """Chunks into a telemetry store of the same process (the platform's), on its loop.

    Args:
        store: the platform's telemetry store.
    """

    def __init__(self, store: TelemetryStore) -> None:
        self.store = store

    async def send_chunk(self, row: ChunkRow) -> None:
        """Keep ``row`` as it is when the store takes chunks (SQLite), else as records."""
        await store_chunk(self.store, row)

    def shutdown(self) -> None:
        """The store is the platform's: nothing to release."""


async def store_chunk(store: TelemetryStore, row: ChunkRow) -> None:
    """Keep a component's posted chunk: as it is when ``store`` can, else as records."""
    put = getattr(store, "put_chunk", None)
    if put is not None:
        await put(row)
        return
    resources, entries = decode(row.data, row.format)
    await store.put_spans([record(entry, resources) for entry in entries])


class PackedDestination:
    """One msgpack POST per chunk to the platform's receiver, on the event loop (one retry).

    The chunk is packed and posted on the batcher's loop over a kept-alive
    connection (:class:`~kubefox.telemetry._post.Poster`): no worker thread.

    Args:
        base_url: the receiver's base URL (``http://127.0.0.1:PORT``).
        timeout: seconds one POST may take.
    """

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self._poster = Poster(base_url.rstrip("/") + PACKED_PATH, content_type=PACKED_MEDIA_TYPE)
        self.timeout = timeout

    async def send_chunk(self, row: ChunkRow) -> None:
        """POST ``row`` packed; ``OSError``, ``RuntimeError`` or ``TimeoutError`` if not taken."""
        body = pack_row(row)
        async with asyncio.timeout(self.timeout):
            for attempt in (1, 2):  # a kept-alive connection may have been closed by the server
                try:
                    status = await self._poster.post(body)
                except (OSError, ValueError, asyncio.IncompleteReadError):
                    if attempt == 2:
                        raise
                    await asyncio.sleep(0.05)
                    continue
                if status != 200:
                    raise RuntimeError(f"the receiver answered {status} to {row.count} spans")
                return

    def shutdown(self) -> None:
        """Close the connection, on its loop (``SpanBatcher.shutdown`` runs on another thread)."""
        self._poster.close()


class OtlpDestination:
    """OTLP to a collector through an SDK span exporter (``OTLPSpanExporter``).

    Spans are turned into the SDK's ``ReadableSpan`` per batch, on the
    batcher's thread: the collector gets exactly what the SDK would send.
    """

    def __init__(self, exporter: SpanExporter, *, resource: Mapping[str, Any], scope: str) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope

        self.exporter = exporter
        self._resource = Resource.create(dict(resource))
        self._scope = InstrumentationScope(scope)

    async def send(self, spans: list[HopSpan]) -> None:
        """Convert and export ``spans`` in a worker thread (only with a collector configured)."""
        await asyncio.to_thread(self.export, spans)

    def export(self, spans: list[HopSpan]) -> None:
        """Export ``spans``; ``RuntimeError`` when the exporter reports a failure."""
        from opentelemetry.sdk.trace.export import SpanExportResult

        readable = [self._readable(span) for span in spans]
        if self.exporter.export(readable) is not SpanExportResult.SUCCESS:
            raise RuntimeError(f"the collector did not take {len(spans)} spans")

    def _readable(self, span: HopSpan) -> ReadableSpan:
        from opentelemetry.sdk.trace import Event, ReadableSpan
        from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

        trace_id = int.from_bytes(span.trace_id, "big")
        context = SpanContext(
            trace_id,
            int.from_bytes(span.span_id, "big"),
            is_remote=False,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
        parent = (
            SpanContext(
                trace_id,
                int.from_bytes(span.parent_span_id, "big"),
                is_remote=True,
                trace_flags=TraceFlags(TraceFlags.SAMPLED),
            )
            if span.parent_span_id
            else None
        )
        code = StatusCode(span.status_code)
        status = Status(code, (span.status_message or None) if code is StatusCode.ERROR else None)
        return ReadableSpan(
            name=span.name,
            context=context,
            parent=parent,
            resource=self._resource,
            attributes=span.all_attributes(),
            events=[Event(name, attributes, moment) for name, moment, attributes in span.events],
            kind=SpanKind(max(span.kind - 1, 0)),
            instrumentation_scope=self._scope,
            status=status,
            start_time=span.start_ns,
            end_time=span.end_ns,
        )

    def shutdown(self) -> None:
        """Stop the exporter."""
        self.exporter.shutdown()
