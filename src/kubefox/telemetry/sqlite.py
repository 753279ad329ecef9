"""The default telemetry store: one SQLite file in the platform's state directory.

Every statement runs on one dedicated thread that owns the connection, so
the event loop never blocks on disk and writes are naturally serialised. The
database is in WAL mode, so another process (``fox trace`` reading the file
while the platform writes it) reads without waiting. ``synchronous=NORMAL``:
a power cut may lose the last moments of telemetry, never corrupt the file.

Deleted rows free pages that later writes reuse, and ``auto_vacuum =
INCREMENTAL`` hands them back to the file system after a prune, so the file
stays near the retention's ``max_bytes`` of payload plus indexes.

Spans are kept one row per written batch (:mod:`kubefox.telemetry._chunks`:
why, and how queries find them); a file written by an earlier version, with
a row per span, is converted when opened. Log records keep a row each.
"""

# ruff: noqa: S608 - SQL text is built only from this module's constants; values are parameters

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import functools
import sqlite3
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from kubefox.core.errors import NotFoundError, UnavailableError
from kubefox.telemetry import _chunks, _sql
from kubefox.telemetry.protocol import LogQuery, Retention, check_limit
from kubefox.telemetry.records import LogRecord, SpanRecord, Trace, check_trace_id

_T = TypeVar("_T")

# The two span_chunks indexes serve the retention's scans (every prune_every records
# under load): a chunk's row keeps 8 to 64 KiB of its data in the table's leaf page,
# so scanning the table for counts, sizes and times read megabytes per prune (about
# 1 ms of CPU at 300 chunks, 3 ms at 900); the index rows are a few dozen bytes
# (0.26 and 0.55 ms). A file of an earlier version gets them when opened.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS span_chunks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    format INTEGER NOT NULL, count INTEGER NOT NULL, size INTEGER NOT NULL,
    min_start INTEGER NOT NULL, max_start INTEGER NOT NULL,
    root_start INTEGER, root_trace TEXT,
    last_start INTEGER NOT NULL, last_trace TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS span_chunks_sizes
    ON span_chunks (seq, count, size, max_start, last_start);
CREATE INDEX IF NOT EXISTS span_chunks_min_start ON span_chunks (min_start);
CREATE TABLE IF NOT EXISTS span_keys (
    seq INTEGER PRIMARY KEY, traces TEXT NOT NULL, events TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS logs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ns INTEGER NOT NULL, severity_number INTEGER NOT NULL, severity_text TEXT NOT NULL,
    body TEXT NOT NULL, trace_id TEXT NOT NULL, span_id TEXT NOT NULL, event_id TEXT NOT NULL,
    app TEXT NOT NULL, component TEXT NOT NULL, ve TEXT NOT NULL, service TEXT NOT NULL,
    attributes TEXT NOT NULL, resource TEXT NOT NULL, size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_time ON logs (time_ns);
CREATE INDEX IF NOT EXISTS logs_trace ON logs (trace_id) WHERE trace_id != '';
CREATE INDEX IF NOT EXISTS logs_app ON logs (app, component, time_ns);
"""

_INSERT_CHUNK = (
    "INSERT INTO span_chunks (format, count, size, min_start, max_start, root_start, "
    "root_trace, last_start, last_trace, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPDATE_CHUNK = (
    "UPDATE span_chunks SET format = ?, count = ?, size = ?, min_start = ?, max_start = ?, "
    "root_start = ?, root_trace = ?, last_start = ?, last_trace = ?, data = ? WHERE seq = ?"
)
_CHUNKS_OF_TRACE = (
    "SELECT c.data, c.format FROM span_keys k JOIN span_chunks c ON c.seq = k.seq "
    "WHERE instr(k.traces, ?) > 0 ORDER BY k.seq"
)
_CHUNKS_OF_EVENT = (
    "SELECT c.data, c.format FROM span_keys k JOIN span_chunks c ON c.seq = k.seq "
    "WHERE instr(k.events, ?) > 0 ORDER BY k.seq"
)
_MIGRATE_BATCH = 5000
_INSERT_LOG = (
    f"INSERT INTO logs ({', '.join(_sql.LOG_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_sql.LOG_COLUMNS))})"
)
_FOLLOW_BATCH = 500
_PAGE_SIZE = 65536


def _placeholder(_: int) -> str:
    return "?"


def _boundary_by_bytes(table: str) -> str:
    # the newest seq whose running total of size (newest first) exceeds the budget
    return (
        f"SELECT seq FROM (SELECT seq, SUM(size) OVER (ORDER BY seq DESC) AS acc FROM {table}) "
        "WHERE acc > ? ORDER BY seq DESC LIMIT 1"
    )


class SQLiteTelemetryStore:
    """A :class:`~kubefox.telemetry.protocol.TelemetryStore` in one SQLite file.

    Open it with :meth:`open`; ``":memory:"`` keeps everything in this process.

    Args:
        connection: an open connection, used only on ``executor``'s one thread.
        executor: a one-thread executor owning ``connection``.
        retention: what the store keeps.
        poll_interval: seconds between two looks for records other processes wrote.
        clock: the wall clock in Unix nanoseconds (retention ages against it).
    """

    def __init__(
        self,
        connection: sqlite3.Connection,
        executor: concurrent.futures.ThreadPoolExecutor,
        *,
        retention: Retention,
        poll_interval: float,
        clock: Callable[[], int],
    ) -> None:
        self.retention = retention
        self._db = connection
        self._executor = executor
        self._poll_interval = poll_interval
        self._clock = clock
        self._closed = False
        self._notifier = _sql.Notifier()
        self._pacer = _sql.PrunePacer()

    @classmethod
    async def open(
        cls,
        path: Path | str,
        *,
        retention: Retention | None = None,
        poll_interval: float = 0.5,
        clock: Callable[[], int] = time.time_ns,
    ) -> SQLiteTelemetryStore:
        """Open (creating it and its directory if needed) the store at ``path``.

        Raises:
            UnavailableError: the file cannot be opened or is not a telemetry store.
        """
        executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="kubefox-telemetry-sqlite"
        )
        loop = asyncio.get_running_loop()
        try:
            connection = await loop.run_in_executor(executor, _connect, str(path))
        except (sqlite3.Error, OSError) as exc:
            executor.shutdown(wait=False)
            raise UnavailableError(f"cannot open the telemetry store {path}: {exc}") from exc
        store = cls(
            connection,
            executor,
            retention=retention or Retention(),
            poll_interval=poll_interval,
            clock=clock,
        )
        try:
            await store._run(store._migrate)
        except UnavailableError:
            await store.aclose()
            raise
        await store.prune()
        return store

    # -- plumbing ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise UnavailableError("the telemetry store is closed")

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        self._check_open()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, functools.partial(fn, *args))
        except sqlite3.Error as exc:
            raise UnavailableError(f"telemetry store failed: {exc}") from exc
        except RuntimeError as exc:  # the executor was shut down by aclose meanwhile
            raise UnavailableError("the telemetry store is closed") from exc

    def _write(self, statement: str, rows: list[Any]) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(statement, rows)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _insert_chunk(self, row: _chunks.ChunkRow) -> None:
        db = self._db
        seq = db.execute(
            _INSERT_CHUNK,
            (
                row.format,
                row.count,
                row.size,
                row.min_start,
                row.max_start,
                row.root_start,
                row.root_trace,
                row.last_start,
                row.last_trace,
                row.data,
            ),
        ).lastrowid
        db.execute("INSERT INTO span_keys VALUES (?, ?, ?)", (seq, row.traces, row.events))

    def _write_chunk(self, row: _chunks.ChunkRow) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            self._insert_chunk(row)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    async def _after_write(self, count: int) -> None:
        if self._pacer.due_after(count, self.retention):
            await self.prune()

    # -- the port ----------------------------------------------------------------------------

    async def put_spans(self, spans: Sequence[SpanRecord]) -> None:
        """Keep ``spans``; a span already kept (same trace and span id) is kept once."""
        self._check_open()
        if not spans:
            return
        resources, entries = _chunks.entries_of(spans)
        row = _chunks.chunk_row(resources, entries)
        await self._run(self._write_chunk, row)
        await self._after_write(len(entries))

    async def put_chunk(self, row: _chunks.ChunkRow) -> None:
        """Keep a chunk a component built (:func:`kubefox.telemetry._chunks.pack`) as it is."""
        self._check_open()
        await self._run(self._write_chunk, row)
        await self._after_write(row.count)

    async def put_logs(self, records: Sequence[LogRecord]) -> None:
        """Keep ``records``; each gets a new ``seq``."""
        self._check_open()
        if not records:
            return
        rows = [_sql.log_row(record) for record in records]
        await self._run(self._write, _INSERT_LOG, rows)
        self._notifier.notify()
        await self._after_write(len(rows))

    def _select_trace(self, trace_id: str) -> list[SpanRecord]:
        cursor = self._db.execute(_CHUNKS_OF_TRACE, (trace_id,))
        return _chunks.spans_of_trace(((row[0], row[1]) for row in cursor), trace_id)

    def _trace_of_event(self, event_id: str) -> str | None:
        cursor = self._db.execute(_CHUNKS_OF_EVENT, (_chunks.SEP + event_id + _chunks.SEP,))
        return _chunks.latest_trace_of_event(((row[0], row[1]) for row in cursor), event_id)

    async def trace(self, trace_id: str) -> Trace:
        """Every kept span of ``trace_id``; ``NotFoundError`` if there is none."""
        trace_id = check_trace_id(trace_id)
        spans = await self._run(self._select_trace, trace_id)
        if not spans:
            raise NotFoundError(f"no trace {trace_id}", trace_id=trace_id)
        return Trace.of(trace_id, spans)

    def _scalar(self, statement: str, params: tuple[Any, ...] = ()) -> Any:
        row = self._db.execute(statement, params).fetchone()
        return None if row is None else row[0]

    async def trace_for_event(self, event_id: str) -> Trace:
        """The trace holding a span of event ``event_id``; ``NotFoundError`` if none."""
        trace_id = await self._run(self._trace_of_event, event_id) if event_id else None
        if trace_id is None:
            raise NotFoundError(f"no trace holds event {event_id}", event_id=event_id)
        return await self.trace(trace_id)

    def _last_trace_id(self) -> str | None:
        found = self._scalar(
            "SELECT root_trace FROM span_chunks WHERE root_trace IS NOT NULL "
            "ORDER BY root_start DESC, seq DESC LIMIT 1"
        )
        if found is None:
            found = self._scalar(
                "SELECT last_trace FROM span_chunks ORDER BY last_start DESC, seq DESC LIMIT 1"
            )
        return None if found is None else str(found)

    async def last_trace(self) -> Trace:
        """The trace whose root span started last; ``NotFoundError`` for an empty store."""
        trace_id = await self._run(self._last_trace_id)
        if trace_id is None:
            raise NotFoundError("no trace has been recorded yet")
        return await self.trace(trace_id)

    def _select_logs(self, statement: str, params: list[Any]) -> list[LogRecord]:
        return [_sql.log_from_row(row) for row in self._db.execute(statement, params).fetchall()]

    async def logs(
        self,
        *,
        app: str | None = None,
        component: str | None = None,
        ve: str | None = None,
        trace_id: str | None = None,
        since: datetime.datetime | None = None,
        limit: int = 100,
    ) -> list[LogRecord]:
        """The newest ``limit`` matching records, oldest first."""
        query = LogQuery.of(app=app, component=component, ve=ve, trace_id=trace_id, since=since)
        where, params = _sql.log_filters(query, _placeholder)
        statement = (
            f"SELECT {_sql.LOG_SELECT} FROM logs WHERE {where} "
            "ORDER BY time_ns DESC, seq DESC LIMIT ?"
        )
        records = await self._run(self._select_logs, statement, [*params, check_limit(limit)])
        records.reverse()
        return records

    def follow(
        self,
        *,
        app: str | None = None,
        component: str | None = None,
        ve: str | None = None,
        trace_id: str | None = None,
        after: int | None = None,
    ) -> AsyncGenerator[LogRecord, None]:
        """Yield matching records as they are stored, in ``seq`` order, until closed."""
        query = LogQuery.of(app=app, component=component, ve=ve, trace_id=trace_id)
        where, params = _sql.log_filters(query, _placeholder)
        statement = (
            f"SELECT {_sql.LOG_SELECT} FROM logs WHERE seq > ? AND {where} ORDER BY seq LIMIT ?"
        )

        async def fetch_after(seq: int) -> list[LogRecord]:
            return await self._run(self._select_logs, statement, [seq, *params, _FOLLOW_BATCH])

        async def last_seq() -> int:
            return int(await self._run(self._scalar, "SELECT COALESCE(MAX(seq), 0) FROM logs"))

        return _sql.follow_logs(
            fetch_after=fetch_after,
            last_seq=last_seq,
            after=after,
            notifier=self._notifier,
            closed=lambda: self._closed,
            poll_interval=self._poll_interval,
        )

    def _prune(self, now_ns: int) -> int:
        retention = self.retention
        db = self._db
        cutoff = now_ns - int(retention.max_age * 1e9)
        db.execute("BEGIN IMMEDIATE")
        try:
            deleted = self._prune_spans_by_age(cutoff)
            deleted += db.execute("DELETE FROM logs WHERE time_ns < ?", (cutoff,)).rowcount
            deleted += self._keep_newest_spans(retention.max_spans, by_bytes=False)
            deleted += db.execute(
                "DELETE FROM logs WHERE seq <= "
                "(SELECT seq FROM logs ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                (retention.max_logs,),
            ).rowcount
            span_bytes = int(self._scalar("SELECT COALESCE(SUM(size), 0) FROM span_chunks"))
            log_bytes = int(self._scalar("SELECT COALESCE(SUM(size), 0) FROM logs"))
            targets = _sql.byte_targets(span_bytes, log_bytes, retention.max_bytes)
            if targets is not None:
                span_budget, log_budget = targets
                deleted += self._keep_newest_spans(span_budget, by_bytes=True)
                deleted += db.execute(
                    f"DELETE FROM logs WHERE seq <= ({_boundary_by_bytes('logs')})",
                    (log_budget,),
                ).rowcount
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        if deleted:
            db.execute("PRAGMA incremental_vacuum")
        return deleted

    def _drop_chunks(self, seqs: list[int]) -> None:
        for table in ("span_chunks", "span_keys"):
            self._db.executemany(f"DELETE FROM {table} WHERE seq = ?", [(seq,) for seq in seqs])

    def _rewrite_chunk(
        self, seq: int, data: str, fmt: int, keep: Callable[[int, _chunks.Entry], bool]
    ) -> int:
        """Keep only the entries of chunk ``seq`` that ``keep(index, entry)``; how many went.

        The rewritten chunk is in the :data:`~kubefox.telemetry._chunks.ENTRIES` format.
        """
        try:
            resources, entries = _chunks.decode(data, fmt)
        except (ValueError, TypeError):  # msgspec.DecodeError is a ValueError
            self._drop_chunks([seq])  # unreadable (a component's bad chunk): nothing to keep
            return 0
        kept = [entry for index, entry in enumerate(entries) if keep(index, entry)]
        if not kept:
            self._drop_chunks([seq])
            return len(entries)
        row = _chunks.chunk_row(resources, kept)
        self._db.execute(
            _UPDATE_CHUNK,
            (
                row.format,
                row.count,
                row.size,
                row.min_start,
                row.max_start,
                row.root_start,
                row.root_trace,
                row.last_start,
                row.last_trace,
                row.data,
                seq,
            ),
        )
        self._db.execute(
            "UPDATE span_keys SET traces = ?, events = ? WHERE seq = ?",
            (row.traces, row.events, seq),
        )
        return len(entries) - len(kept)

    def _prune_spans_by_age(self, cutoff: int) -> int:
        db = self._db
        gone = db.execute(
            "SELECT seq, count FROM span_chunks WHERE max_start < ? AND last_start < ?",
            (cutoff, cutoff),
        ).fetchall()
        self._drop_chunks([seq for seq, _ in gone])
        deleted = int(sum(count for _, count in gone))
        straddling = db.execute(
            "SELECT seq, data, format FROM span_chunks WHERE min_start < ?", (cutoff,)
        ).fetchall()
        for seq, data, fmt in straddling:
            deleted += self._rewrite_chunk(
                seq, data, fmt, lambda _, entry: entry[_chunks.START] >= cutoff
            )
        return deleted

    def _keep_newest_spans(self, budget: int, *, by_bytes: bool) -> int:
        """Delete the oldest stored spans until the newest fit ``budget`` spans or bytes."""
        column = "size" if by_bytes else "count"
        rows: list[tuple[int, int, int]] = self._db.execute(
            f"SELECT seq, count, {column} FROM span_chunks ORDER BY seq DESC"
        ).fetchall()
        total = 0
        for position, (seq, count, amount) in enumerate(rows):
            if total + amount <= budget:
                total += amount
                continue
            # this chunk straddles the budget: keep its newest spans that fit, drop the older
            per = amount / count if count else 0
            fit = int((budget - total) // per) if per else count
            older = [s for s, _, _ in rows[position + 1 :]]
            self._drop_chunks(older)
            deleted = int(sum(c for _, c, _ in rows[position + 1 :]))
            if fit <= 0:
                self._drop_chunks([seq])
                return deleted + count
            data, fmt = self._db.execute(
                "SELECT data, format FROM span_chunks WHERE seq = ?", (seq,)
            ).fetchone()
            first_kept = count - fit
            return deleted + self._rewrite_chunk(seq, str(data), int(fmt), _from_index(first_kept))
        return 0

    def _migrate(self) -> None:
        """Convert a file with a row per span (an earlier version's) to chunks, then drop it."""
        db = self._db
        if self._scalar("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'spans'"):
            db.execute("BEGIN IMMEDIATE")
            try:
                cursor = db.execute(f"SELECT {_sql.SPAN_SELECT} FROM spans ORDER BY seq")
                while batch := cursor.fetchmany(_MIGRATE_BATCH):
                    records = [_sql.span_from_row(row) for row in batch]
                    resources, entries = _chunks.entries_of(records)
                    self._insert_chunk(_chunks.chunk_row(resources, entries))
                db.execute("DROP TABLE spans")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    async def prune(self) -> int:
        """Enforce the retention now; return how many records were deleted."""
        self._pacer.pruned()
        return await self._run(self._prune, self._clock())

    async def aclose(self) -> None:
        """End follows and close the file. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._notifier.notify()
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._db.close)
        finally:
            self._executor.shutdown(wait=False)


def _from_index(first: int) -> Callable[[int, _chunks.Entry], bool]:
    """Keeps the entries from index ``first`` on."""

    def keep(index: int, _: _chunks.Entry) -> bool:
        return index >= first

    return keep


def _connect(path: str) -> sqlite3.Connection:
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    # autocommit mode: transactions are explicit (BEGIN IMMEDIATE takes the write lock at once)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA busy_timeout = 5000")
        # These two only take effect on a new, empty file: they must precede the first
        # table (and the page size WAL mode). A span chunk is about a megabyte under
        # load, written twice (the WAL, then the checkpoint): 64 KiB pages take a
        # sixteenth of the system calls and page headers of 4 KiB ones, and the writer
        # thread spends 0.57 instead of 1.33 µs of CPU per span stored. A small commit
        # of log records writes bigger pages (about 150 instead of 60 µs for five).
        db.execute(f"PRAGMA page_size = {_PAGE_SIZE}")
        db.execute("PRAGMA auto_vacuum = INCREMENTAL")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA journal_size_limit = 67108864")
        db.executescript(_SCHEMA)
    except BaseException:
        db.close()
        raise
    return db
