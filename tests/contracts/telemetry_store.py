"""Behaviour every TelemetryStore backend must show.

Backends subclass :class:`TelemetryStoreContract` and provide ``make_store``:
an async factory ``(retention=None) -> TelemetryStore`` whose stores the
fixture closes at the end of the test (unit: SQLite, integration: PostgreSQL
against the real server). Times are around the real clock, because retention
ages records against it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from kubefox.core.errors import InvalidError, NotFoundError, UnavailableError
from kubefox.telemetry import attributes as attr
from kubefox.telemetry.protocol import Retention, TelemetryStore
from kubefox.telemetry.records import (
    LogRecord,
    SpanEvent,
    SpanKind,
    SpanRecord,
    StatusCode,
)

MakeStore = Callable[..., Awaitable[TelemetryStore]]

TRACE_A = "0af7651916cd43dd8448eb211c80319c"
TRACE_B = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACE_C = "11111111111111111111111111111111"
MS = 1_000_000

RESOURCE = {
    attr.SERVICE_NAME: "hello-world-backend-0123abcd",
    attr.PLATFORM: "demo",
    attr.ROLE: "component",
    attr.COMPONENT_APP: "hello-world",
    attr.COMPONENT_NAME: "backend",
    attr.COMPONENT_HASH: "0123abcd",
}


def now_ns() -> int:
    return time.time_ns()


def span_id(n: int) -> str:
    return f"{n:016x}"


def span(
    trace_id: str,
    n: int,
    *,
    parent: int = 0,
    start: int | None = None,
    duration_ms: float = 1.0,
    name: str = "",
    error: str = "",
    attrs: dict[str, Any] | None = None,
) -> SpanRecord:
    """Span ``n`` of ``trace_id``, child of span ``parent`` (0: a root)."""
    begin = now_ns() if start is None else start
    return SpanRecord(
        trace_id=trace_id,
        span_id=span_id(n),
        parent_span_id=span_id(parent) if parent else "",
        name=name or f"span {n}",
        kind=SpanKind.SERVER if not parent else SpanKind.INTERNAL,
        start_ns=begin,
        end_ns=begin + int(duration_ms * MS),
        status_code=StatusCode.ERROR if error else StatusCode.UNSET,
        status_message=error,
        attributes=attrs or {},
        resource=RESOURCE,
    )


def log(
    body: str,
    *,
    time_ns: int | None = None,
    trace_id: str = "",
    attrs: dict[str, Any] | None = None,
) -> LogRecord:
    return LogRecord(
        time_ns=now_ns() if time_ns is None else time_ns,
        severity_number=9,
        severity_text="info",
        body=body,
        attributes=attrs or {},
        resource=RESOURCE,
        trace_id=trace_id,
        span_id=span_id(1) if trace_id else "",
    )


def bodies(records: list[LogRecord]) -> list[str]:
    return [record.body for record in records]


async def next_record(records: AsyncIterator[LogRecord], within: float = 5.0) -> LogRecord:
    """The follow's next record, failing the test instead of hanging."""
    async with asyncio.timeout(within):
        return await anext(records)


class TelemetryStoreContract:
    @pytest.fixture
    async def store(self, make_store: MakeStore) -> TelemetryStore:
        return await make_store()

    # -- traces -------------------------------------------------------------------------

    async def test_a_trace_reads_back_every_field_of_its_spans(self, store: TelemetryStore) -> None:
        """Spans come back unchanged: ids, kind, times, status, attributes, resource, events."""
        start = now_ns()
        root = span(
            TRACE_A,
            1,
            start=start,
            duration_ms=5,
            name="GET /hello",
            attrs={
                attr.EVENT_ID: "ev-1",
                attr.HTTP_STATUS_CODE: 200,
                "tags": ["a", "b"],
                "ok": True,
            },
        )
        child = SpanRecord(
            trace_id=TRACE_A,
            span_id=span_id(2),
            parent_span_id=span_id(1),
            name="handler",
            kind=SpanKind.CONSUMER,
            start_ns=start + MS,
            end_ns=start + 3 * MS,
            status_code=StatusCode.ERROR,
            status_message="boom",
            attributes={"ratio": 0.5, "nested": {"k": [1, 2]}},
            resource=RESOURCE,
            events=(SpanEvent(name="exception", time_ns=start + 2 * MS, attributes={"x": "y"}),),
            scope="kubefox.kit",
        )

        await store.put_spans([child, root])
        trace = await store.trace(TRACE_A)

        assert trace.trace_id == TRACE_A
        assert trace.spans == (root, child)
        assert trace.duration_ns == 5 * MS
        assert trace.has_error

    async def test_trace_ids_are_case_insensitive_and_checked(self, store: TelemetryStore) -> None:
        """An upper-case id finds the trace; an id that is not 32 hex digits is invalid."""
        await store.put_spans([span(TRACE_A, 1)])

        assert (await store.trace(TRACE_A.upper())).trace_id == TRACE_A
        with pytest.raises(InvalidError):
            await store.trace("not-a-trace")

    async def test_an_unknown_trace_is_not_found(self, store: TelemetryStore) -> None:
        """trace() of an id nobody stored raises NotFoundError, also a LookupError."""
        with pytest.raises(LookupError):
            await store.trace(TRACE_B)
        with pytest.raises(NotFoundError):
            await store.trace_for_event("nobody")
        with pytest.raises(NotFoundError):
            await store.last_trace()

    async def test_a_span_sent_twice_is_kept_once(self, store: TelemetryStore) -> None:
        """An exporter's retry stores nothing new."""
        first = span(TRACE_A, 1)

        await store.put_spans([first])
        await store.put_spans([first, span(TRACE_A, 2, parent=1)])

        assert [s.span_id for s in (await store.trace(TRACE_A)).spans] == [span_id(1), span_id(2)]

    async def test_trace_for_event_finds_the_trace_by_its_event_id(
        self, store: TelemetryStore
    ) -> None:
        """Any span carrying kubefox.event.id leads to its whole trace."""
        await store.put_spans(
            [
                span(TRACE_A, 1),
                span(TRACE_A, 2, parent=1, attrs={attr.EVENT_ID: "ev-a"}),
                span(TRACE_B, 3, attrs={attr.EVENT_ID: "ev-b"}),
            ]
        )

        trace = await store.trace_for_event("ev-a")

        assert trace.trace_id == TRACE_A
        assert len(trace.spans) == 2

    async def test_trace_for_an_event_in_two_traces_is_the_later_one(
        self, store: TelemetryStore
    ) -> None:
        """An event id seen in two traces (a replay) resolves to the one that started last."""
        start = now_ns()
        await store.put_spans(
            [
                span(TRACE_B, 1, start=start + 10 * MS, attrs={attr.EVENT_ID: "ev"}),
                span(TRACE_A, 2, start=start, attrs={attr.EVENT_ID: "ev"}),
            ]
        )

        assert (await store.trace_for_event("ev")).trace_id == TRACE_B

    async def test_last_trace_is_the_one_whose_root_started_last(
        self, store: TelemetryStore
    ) -> None:
        """A late child of an older trace does not make it the latest request."""
        start = now_ns()
        await store.put_spans(
            [
                span(TRACE_A, 1, start=start),
                span(TRACE_B, 2, start=start + 5 * MS),
                span(TRACE_A, 3, parent=1, start=start + 9 * MS),
            ]
        )

        assert (await store.last_trace()).trace_id == TRACE_B

    async def test_last_trace_without_any_root_is_the_latest_span_s(
        self, store: TelemetryStore
    ) -> None:
        """Traces that continue a remote parent still have a latest one."""
        start = now_ns()
        await store.put_spans(
            [span(TRACE_A, 2, parent=1, start=start + MS), span(TRACE_B, 4, parent=3, start=start)]
        )

        assert (await store.last_trace()).trace_id == TRACE_A

    async def test_text_with_nul_characters_is_kept_with_a_replacement(
        self, store: TelemetryStore
    ) -> None:
        """NUL in a name or body (PostgreSQL text cannot hold it) becomes U+FFFD everywhere.

        Inside attribute values it survives: JSON escapes it.
        """
        await store.put_spans([span(TRACE_A, 1, name="a\x00b", attrs={"key": "c\x00d"})])
        await store.put_logs([log("e\x00f")])

        stored = (await store.trace(TRACE_A)).spans[0]
        assert stored.name == "a\ufffdb"
        assert stored.attributes == {"key": "c\x00d"}
        assert bodies(await store.logs()) == ["e\ufffdf"]

    async def test_an_impossible_time_is_invalid(self, store: TelemetryStore) -> None:
        """Times beyond a signed 64-bit nanosecond count are refused before anything is kept."""
        with pytest.raises(InvalidError):
            await store.put_spans([span(TRACE_A, 1), span(TRACE_A, 2, start=1 << 64)])
        with pytest.raises(InvalidError):
            await store.put_logs([log("x", time_ns=-1)])

        with pytest.raises(NotFoundError):
            await store.trace(TRACE_A)

    # -- logs ---------------------------------------------------------------------------

    async def test_logs_are_the_newest_first_limit_in_time_order(
        self, store: TelemetryStore
    ) -> None:
        """limit keeps the newest records; they come back oldest first, each with a seq."""
        start = now_ns()
        await store.put_logs([log(f"line {n}", time_ns=start + n * MS) for n in (3, 1, 4, 2, 5)])

        records = await store.logs(limit=3)

        assert bodies(records) == ["line 3", "line 4", "line 5"]
        assert all(record.seq > 0 for record in records)
        assert records[0].severity == "INFO"
        assert records[0].resource == RESOURCE

    async def test_log_filters_combine(self, store: TelemetryStore) -> None:
        """app, component, ve and trace id filter; resource attributes count as the record's."""
        await store.put_logs(
            [
                log("backend qa", attrs={attr.VIRTUAL_ENVIRONMENT: "qa"}),
                log("backend prod", trace_id=TRACE_A, attrs={attr.VIRTUAL_ENVIRONMENT: "prod"}),
                log("frontend", attrs={attr.COMPONENT: "frontend", attr.VIRTUAL_ENVIRONMENT: "qa"}),
                log("other app", attrs={attr.APP: "other"}),
            ]
        )

        assert bodies(await store.logs(app="hello-world", component="backend")) == [
            "backend qa",
            "backend prod",
        ]
        assert bodies(await store.logs(ve="qa")) == ["backend qa", "frontend"]
        assert bodies(await store.logs(trace_id=TRACE_A)) == ["backend prod"]
        assert bodies(await store.logs(app="other")) == ["other app"]
        assert await store.logs(app="hello-world", component="nobody") == []

    async def test_logs_since_keeps_later_records(self, store: TelemetryStore) -> None:
        """since is inclusive and takes an aware datetime."""
        start = now_ns()
        await store.put_logs([log("old", time_ns=start - 10_000 * MS), log("new", time_ns=start)])
        moment = datetime.datetime.fromtimestamp((start - 1_000 * MS) / 1e9, tz=datetime.UTC)

        assert bodies(await store.logs(since=moment)) == ["new"]

        with pytest.raises(InvalidError):
            await store.logs(since=datetime.datetime(2026, 1, 1))  # naive on purpose

    async def test_a_limit_below_one_is_invalid(self, store: TelemetryStore) -> None:
        """logs(limit=0) is a mistake, not an empty answer."""
        with pytest.raises(InvalidError):
            await store.logs(limit=0)

    async def test_follow_yields_records_stored_after_it_started(
        self, store: TelemetryStore
    ) -> None:
        """Earlier records are not repeated; new matching ones arrive in store order."""
        await store.put_logs([log("before")])

        async with contextlib.aclosing(store.follow(component="backend")) as records:
            # the follower starts in the background: probe until it sees a write
            first = asyncio.ensure_future(next_record(records))
            while not first.done():
                await store.put_logs([log("probe")])
                await asyncio.wait([first], timeout=0.05)
            await store.put_logs([log("skip", attrs={attr.COMPONENT: "frontend"}), log("one")])
            await store.put_logs([log("two")])
            seen = [(await first).body]
            while seen[-1] != "two":
                seen.append((await next_record(records)).body)

        assert [body for body in seen if body != "probe"] == ["one", "two"]

    async def test_follow_continues_after_a_given_seq(self, store: TelemetryStore) -> None:
        """after= resumes right behind a record from logs(), missing nothing."""
        await store.put_logs([log("a"), log("b"), log("c")])
        first = (await store.logs(limit=3))[0]

        async with contextlib.aclosing(store.follow(after=first.seq)) as records:
            assert [(await next_record(records)).body for _ in range(2)] == ["b", "c"]

    async def test_follow_ends_when_the_store_closes(self, store: TelemetryStore) -> None:
        """A follower waiting for records stops quietly on aclose()."""
        records = store.follow()
        waiting = asyncio.ensure_future(anext(records, None))
        await asyncio.sleep(0.05)

        await store.aclose()

        async with asyncio.timeout(5):
            assert await waiting is None

    # -- retention ------------------------------------------------------------------------

    async def test_prune_deletes_records_older_than_max_age(self, make_store: MakeStore) -> None:
        """Spans and logs older than max_age go; younger ones stay."""
        store = await make_store(Retention(max_age=3600))
        old = now_ns() - 2 * 3600 * 1_000_000_000
        await store.put_spans([span(TRACE_A, 1, start=old), span(TRACE_B, 2)])
        await store.put_logs([log("old", time_ns=old), log("new")])

        deleted = await store.prune()

        assert deleted == 2
        with pytest.raises(NotFoundError):
            await store.trace(TRACE_A)
        assert (await store.trace(TRACE_B)).spans
        assert bodies(await store.logs()) == ["new"]

    async def test_max_rows_keep_the_newest_records(self, make_store: MakeStore) -> None:
        """Beyond max_spans/max_logs rows the oldest stored go first."""
        store = await make_store(Retention(max_spans=3, max_logs=2))
        await store.put_spans([span(TRACE_A, n) for n in range(1, 6)])
        await store.put_logs([log(f"{n}", time_ns=now_ns() + n) for n in range(5)])

        await store.prune()

        assert [s.span_id for s in (await store.trace(TRACE_A)).spans] == [
            span_id(3),
            span_id(4),
            span_id(5),
        ]
        assert bodies(await store.logs()) == ["3", "4"]

    async def test_writes_alone_enforce_the_retention(self, make_store: MakeStore) -> None:
        """With prune_every=1 nobody needs to call prune(): the store never grows past it."""
        store = await make_store(Retention(max_logs=3, prune_every=1))

        for n in range(10):
            await store.put_logs([log(f"{n}", time_ns=now_ns() + n)])

        assert bodies(await store.logs(limit=100)) == ["7", "8", "9"]

    async def test_max_bytes_bounds_the_payload_kept(self, make_store: MakeStore) -> None:
        """Over max_bytes the oldest records go until the newest fit in 90% of it."""
        store = await make_store(Retention(max_bytes=20_000))
        padding = "x" * 900
        await store.put_spans([span(TRACE_C, n, attrs={"pad": padding}) for n in range(1, 21)])
        await store.put_logs([log(f"{n} {padding}", time_ns=now_ns() + n) for n in range(20)])

        await store.prune()

        spans = (await store.trace(TRACE_C)).spans
        logs = await store.logs(limit=100)
        kept = len(spans) + len(logs)
        assert 10 <= kept <= 18  # each record is about 1 kB of payload
        assert spans[-1].span_id == span_id(20)
        assert logs[-1].body.startswith("19 ")

    # -- lifecycle ----------------------------------------------------------------------

    async def test_a_closed_store_is_unavailable(self, store: TelemetryStore) -> None:
        """Every call after aclose() raises UnavailableError; aclose() itself is idempotent."""
        await store.aclose()
        await store.aclose()

        with pytest.raises(UnavailableError):
            await store.put_spans([span(TRACE_A, 1)])
        with pytest.raises(UnavailableError):
            await store.put_logs([log("x")])
        with pytest.raises(UnavailableError):
            await store.logs()
        with pytest.raises(UnavailableError):
            await store.trace(TRACE_A)

    async def test_putting_nothing_is_a_no_op(self, store: TelemetryStore) -> None:
        """Empty batches (an exporter flushing nothing) are fine."""
        await store.put_spans([])
        await store.put_logs([])

        assert await store.logs() == []
