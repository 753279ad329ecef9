"""SQLiteTelemetryStore: the store contract, plus what only a file on this machine promises."""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kubefox.core.errors import InvalidError, UnavailableError
from kubefox.telemetry import open_telemetry_store
from kubefox.telemetry.protocol import Retention, TelemetryStore
from kubefox.telemetry.sqlite import SQLiteTelemetryStore
from tests.contracts.telemetry_store import (
    TRACE_A,
    MakeStore,
    TelemetryStoreContract,
    log,
    next_record,
    span,
    span_id,
)
from tests.unit.telemetry.hops import COMPACT_CALL_ATTRIBUTES, compact_chunk


class TestSQLiteTelemetryStore(TelemetryStoreContract):
    @pytest.fixture
    async def make_store(self, tmp_path: Path) -> AsyncIterator[MakeStore]:
        stores: list[TelemetryStore] = []

        async def make(retention: Retention | None = None) -> TelemetryStore:
            store = await SQLiteTelemetryStore.open(
                tmp_path / f"telemetry-{len(stores)}.db", retention=retention, poll_interval=0.05
            )
            stores.append(store)
            return store

        try:
            yield make
        finally:
            for store in stores:
                await store.aclose()


async def test_records_survive_a_reopen(tmp_path: Path) -> None:
    """The file is the store: closing and opening it again loses nothing."""
    path = tmp_path / "state" / "telemetry.db"
    store = await SQLiteTelemetryStore.open(path)
    await store.put_spans([span(TRACE_A, 1)])
    await store.put_logs([log("kept")])
    await store.aclose()

    again = await SQLiteTelemetryStore.open(path)
    try:
        assert len((await again.trace(TRACE_A)).spans) == 1
        assert [record.body for record in await again.logs()] == ["kept"]
    finally:
        await again.aclose()


async def test_the_file_is_in_wal_mode(tmp_path: Path) -> None:
    """Readers in other processes (fox trace) never wait for the platform's writes."""
    path = tmp_path / "telemetry.db"
    store = await SQLiteTelemetryStore.open(path)
    await store.aclose()

    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("PRAGMA auto_vacuum").fetchone() == (2,)  # incremental


async def test_a_new_file_has_64_kib_pages_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    """Span chunks are written in big pages; a file made with 4 KiB pages still opens."""
    old = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(old)) as db:
        db.execute("PRAGMA page_size = 4096")
        db.execute("CREATE TABLE unrelated (x)")
    for path in (tmp_path / "new.db", old):
        store = await SQLiteTelemetryStore.open(path)
        await store.put_spans([span(TRACE_A, 1)])
        await store.aclose()

    sizes = []
    for path in (tmp_path / "new.db", old):
        with contextlib.closing(sqlite3.connect(path)) as db:
            sizes.append(db.execute("PRAGMA page_size").fetchone())
    assert sizes == [(65536,), (4096,)]


async def test_the_retention_never_scans_the_span_chunks_rows(tmp_path: Path) -> None:
    """A prune reads counts, sizes and times from indexes: a chunk's row holds kilobytes."""
    path = tmp_path / "telemetry.db"
    store = await SQLiteTelemetryStore.open(path)
    statements: list[str] = []
    try:
        for n in range(1, 4):
            await store.put_spans([span(TRACE_A, n)])
        db = store._db  # the store's own connection: the statements a prune runs
        db.set_trace_callback(statements.append)
        await store.prune()
        db.set_trace_callback(None)
    finally:
        await store.aclose()

    reads = [s for s in statements if "span_chunks" in s and s.lstrip().startswith("SELECT")]
    assert reads
    with contextlib.closing(sqlite3.connect(path)) as db:
        plans = [
            row[3] for statement in reads for row in db.execute(f"EXPLAIN QUERY PLAN {statement}")
        ]
    assert "SCAN span_chunks" not in plans, plans


async def test_a_follower_sees_what_another_connection_writes(tmp_path: Path) -> None:
    """fox logs --follow in one process sees records the platform writes in another."""
    path = tmp_path / "telemetry.db"
    writer = await SQLiteTelemetryStore.open(path)
    reader = await SQLiteTelemetryStore.open(path, poll_interval=0.02)
    try:
        await writer.put_logs([log("first")])
        (first,) = await reader.logs()
        async with contextlib.aclosing(reader.follow(after=first.seq)) as records:
            await writer.put_logs([log("second")])

            assert (await next_record(records)).body == "second"
    finally:
        await reader.aclose()
        await writer.aclose()


async def test_open_telemetry_store_opens_sqlite_urls(tmp_path: Path) -> None:
    """sqlite:////absolute/path opens (and creates) that file."""
    path = tmp_path / "deep" / "t.db"

    store = await open_telemetry_store(f"sqlite:///{path}")
    try:
        await store.put_logs([log("x")])
    finally:
        await store.aclose()

    assert path.exists()


@pytest.mark.parametrize(
    "url", ["sqlite://host/x.db", "sqlite:///", "sqlite:///x.db?mode=ro", "mysql://db/x"]
)
async def test_open_telemetry_store_refuses_bad_urls(url: str) -> None:
    """A URL naming no file, or an unknown scheme, is invalid."""
    with pytest.raises(InvalidError):
        await open_telemetry_store(url)


async def test_a_file_that_is_not_a_database_is_unavailable(tmp_path: Path) -> None:
    """Opening garbage fails with UnavailableError naming the file, not a sqlite3 error."""
    path = tmp_path / "telemetry.db"
    path.write_bytes(b"this is not a database" * 100)

    with pytest.raises(UnavailableError, match=r"telemetry\.db"):
        await SQLiteTelemetryStore.open(path)


_ROW_PER_SPAN_SCHEMA = """
CREATE TABLE spans (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    trace_id TEXT NOT NULL, span_id TEXT NOT NULL, parent_span_id TEXT NOT NULL,
    name TEXT NOT NULL, kind INTEGER NOT NULL, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,
    status_code INTEGER NOT NULL, status_message TEXT NOT NULL, service TEXT NOT NULL,
    event_id TEXT NOT NULL, app TEXT NOT NULL, component TEXT NOT NULL, ve TEXT NOT NULL,
    attributes TEXT NOT NULL, resource TEXT NOT NULL, events TEXT NOT NULL, scope TEXT NOT NULL,
    size INTEGER NOT NULL,
    UNIQUE (trace_id, span_id)
);
"""


async def test_a_file_with_a_row_per_span_is_converted_when_opened(tmp_path: Path) -> None:
    """Spans an earlier version kept one row each are found after an upgrade; the table goes."""
    from kubefox.telemetry import _sql
    from kubefox.telemetry.records import SpanEvent

    path = tmp_path / "old.db"
    old = [
        span(TRACE_A, 1, attrs={"kubefox.event.id": "ev-old"}),
        span(TRACE_A, 2, parent=1, error="late"),
    ]
    old[1] = dataclasses.replace(old[1], events=(SpanEvent(name="exception", time_ns=5),))
    columns = ", ".join(_sql.SPAN_COLUMNS)
    marks = ", ".join("?" * len(_sql.SPAN_COLUMNS))
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(_ROW_PER_SPAN_SCHEMA)
        db.executemany(
            f"INSERT INTO spans ({columns}) VALUES ({marks})",  # noqa: S608 - constants only
            [_sql.span_row(s) for s in old],
        )
        db.commit()

    store = await SQLiteTelemetryStore.open(path)
    try:
        trace = await store.trace_for_event("ev-old")
        await store.put_spans([span(TRACE_A, 3, parent=1)])
        again = await store.trace(TRACE_A)
    finally:
        await store.aclose()

    assert trace.spans == tuple(old)
    assert [s.span_id for s in again.spans] == [span_id(1), span_id(2), span_id(3)]
    with contextlib.closing(sqlite3.connect(path)) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert "spans" not in tables


async def test_a_chunk_of_compact_spans_straddling_the_limit_keeps_its_newest_whole(
    tmp_path: Path,
) -> None:
    """Retention rewrites a component's chunk span by span, compact spans expanded."""
    store = await SQLiteTelemetryStore.open(
        tmp_path / "t.db",
        retention=Retention(max_spans=1),
        clock=lambda: 1_700_000_000_000_001_000,  # a moment after the chunk's spans
    )
    try:
        await store.put_chunk(compact_chunk())  # a handler span, then its call's

        await store.prune()

        [call] = (await store.trace_for_event("ev-2")).spans
    finally:
        await store.aclose()
    assert call.name == "Send REQUEST to backend"
    assert call.attributes == COMPACT_CALL_ATTRIBUTES
