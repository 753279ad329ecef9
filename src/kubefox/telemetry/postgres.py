"""The telemetry store at scale: PostgreSQL through asyncpg (the only module importing it).

The tables live in their own schema (``kubefox_telemetry`` unless told), so the
store can share a database with anything else. Several platform processes may
write to one store: creating the tables and pruning take a transaction-scoped
advisory lock, and so does writing logs, so that log ``seq`` values become
visible in their order and a follower polling ``seq > n`` never skips one that
committed late.
"""

# ruff: noqa: S608 - SQL text is built only from this module's constants; values are parameters

from __future__ import annotations

import datetime
import re
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg

from kubefox.core.errors import InvalidError, NotFoundError, UnavailableError
from kubefox.telemetry import _sql
from kubefox.telemetry.protocol import LogQuery, Retention, check_limit
from kubefox.telemetry.records import LogRecord, SpanRecord, Trace, check_trace_id

_T = TypeVar("_T")

#: The schema holding the tables unless the URL names another (``?schema=``).
DEFAULT_SCHEMA = "kubefox_telemetry"

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# arbitrary constants naming this store's advisory locks
_DDL_LOCK = 0x6B66_7400
_LOG_LOCK = 0x6B66_7401
_PRUNE_LOCK = 0x6B66_7402
_FOLLOW_BATCH = 500

_TABLES = """
CREATE TABLE IF NOT EXISTS spans (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trace_id TEXT NOT NULL, span_id TEXT NOT NULL, parent_span_id TEXT NOT NULL,
    name TEXT NOT NULL, kind SMALLINT NOT NULL, start_ns BIGINT NOT NULL, end_ns BIGINT NOT NULL,
    status_code SMALLINT NOT NULL, status_message TEXT NOT NULL, service TEXT NOT NULL,
    event_id TEXT NOT NULL, app TEXT NOT NULL, component TEXT NOT NULL, ve TEXT NOT NULL,
    attributes TEXT NOT NULL, resource TEXT NOT NULL, events TEXT NOT NULL, scope TEXT NOT NULL,
    size INTEGER NOT NULL,
    UNIQUE (trace_id, span_id)
);
CREATE INDEX IF NOT EXISTS spans_event ON spans (event_id) WHERE event_id <> '';
CREATE INDEX IF NOT EXISTS spans_roots ON spans (start_ns) WHERE parent_span_id = '';
CREATE INDEX IF NOT EXISTS spans_start ON spans (start_ns);
CREATE TABLE IF NOT EXISTS logs (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time_ns BIGINT NOT NULL, severity_number SMALLINT NOT NULL, severity_text TEXT NOT NULL,
    body TEXT NOT NULL, trace_id TEXT NOT NULL, span_id TEXT NOT NULL, event_id TEXT NOT NULL,
    app TEXT NOT NULL, component TEXT NOT NULL, ve TEXT NOT NULL, service TEXT NOT NULL,
    attributes TEXT NOT NULL, resource TEXT NOT NULL, size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_time ON logs (time_ns);
CREATE INDEX IF NOT EXISTS logs_trace ON logs (trace_id) WHERE trace_id <> '';
CREATE INDEX IF NOT EXISTS logs_app ON logs (app, component, time_ns);
"""


def _values(count: int) -> str:
    return ", ".join(f"${n}" for n in range(1, count + 1))


_INSERT_SPAN = (
    f"INSERT INTO spans ({', '.join(_sql.SPAN_COLUMNS)}) "
    f"VALUES ({_values(len(_sql.SPAN_COLUMNS))}) ON CONFLICT (trace_id, span_id) DO NOTHING"
)
_INSERT_LOG = (
    f"INSERT INTO logs ({', '.join(_sql.LOG_COLUMNS)}) VALUES ({_values(len(_sql.LOG_COLUMNS))})"
)


def _placeholder(n: int) -> str:
    return f"${n}"


def _count(status: str) -> int:
    # asyncpg returns the command tag, e.g. "DELETE 12"
    return int(status.rsplit(" ", 1)[-1])


def _boundary_by_bytes(table: str) -> str:
    return (
        f"SELECT seq FROM (SELECT seq, SUM(size) OVER (ORDER BY seq DESC) AS acc FROM {table}) "
        "AS running WHERE acc > $1 ORDER BY seq DESC LIMIT 1"
    )


class PostgresTelemetryStore:
    """A :class:`~kubefox.telemetry.protocol.TelemetryStore` in PostgreSQL tables.

    Open it with :meth:`connect`.

    Args:
        pool: a pool whose connections use ``schema`` as their search path.
        retention: what the store keeps.
        poll_interval: seconds between two looks for records other processes wrote.
        clock: the wall clock in Unix nanoseconds (retention ages against it).
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        retention: Retention,
        poll_interval: float,
        clock: Callable[[], int],
    ) -> None:
        self.retention = retention
        self._pool = pool
        self._poll_interval = poll_interval
        self._clock = clock
        self._closed = False
        self._notifier = _sql.Notifier()
        self._pacer = _sql.PrunePacer()

    @classmethod
    async def connect(
        cls,
        dsn: str,
        *,
        schema: str = DEFAULT_SCHEMA,
        retention: Retention | None = None,
        poll_interval: float = 0.5,
        clock: Callable[[], int] = time.time_ns,
        max_connections: int = 4,
    ) -> PostgresTelemetryStore:
        """Connect to ``dsn`` and create the schema and tables if they are missing.

        Raises:
            InvalidError: ``schema`` is not a lowercase SQL identifier.
            UnavailableError: the server cannot be reached or refuses us.
        """
        if not _SCHEMA_NAME.fullmatch(schema):
            raise InvalidError(
                "a schema name is lowercase letters, digits and '_', starting with a letter",
                schema=schema,
            )
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=1,
                max_size=max_connections,
                server_settings={"search_path": schema, "application_name": "kubefox-telemetry"},
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise UnavailableError(f"cannot connect to the telemetry database: {exc}") from exc
        store = cls(
            pool, retention=retention or Retention(), poll_interval=poll_interval, clock=clock
        )
        try:
            await store._guard(store._create(schema))
            await store.prune()
        except BaseException:
            await pool.close()
            raise
        return store

    async def _create(self, schema: str) -> None:
        async with self._pool.acquire() as db, db.transaction():
            await db.execute("SELECT pg_advisory_xact_lock($1)", _DDL_LOCK)
            await db.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            await db.execute(_TABLES)

    async def _guard(self, work: Awaitable[_T]) -> _T:
        try:
            return await work
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise UnavailableError(f"telemetry store failed: {exc}") from exc

    def _check_open(self) -> None:
        if self._closed:
            raise UnavailableError("the telemetry store is closed")

    async def _after_write(self, count: int) -> None:
        if self._pacer.due_after(count, self.retention):
            await self.prune()

    # -- the port ----------------------------------------------------------------------------

    async def put_spans(self, spans: Sequence[SpanRecord]) -> None:
        """Keep ``spans``; a span already kept (same trace and span id) is kept once."""
        self._check_open()
        if not spans:
            return
        rows = [_sql.span_row(span) for span in spans]
        await self._guard(self._pool.executemany(_INSERT_SPAN, rows))
        await self._after_write(len(rows))

    async def _insert_logs(self, rows: list[_sql.LogRow]) -> None:
        async with self._pool.acquire() as db, db.transaction():
            await db.execute("SELECT pg_advisory_xact_lock($1)", _LOG_LOCK)
            await db.executemany(_INSERT_LOG, rows)

    async def put_logs(self, records: Sequence[LogRecord]) -> None:
        """Keep ``records``; each gets a new ``seq``."""
        self._check_open()
        if not records:
            return
        rows = [_sql.log_row(record) for record in records]
        await self._guard(self._insert_logs(rows))
        self._notifier.notify()
        await self._after_write(len(rows))

    async def trace(self, trace_id: str) -> Trace:
        """Every kept span of ``trace_id``; ``NotFoundError`` if there is none."""
        self._check_open()
        trace_id = check_trace_id(trace_id)
        rows = await self._guard(
            self._pool.fetch(f"SELECT {_sql.SPAN_SELECT} FROM spans WHERE trace_id = $1", trace_id)
        )
        if not rows:
            raise NotFoundError(f"no trace {trace_id}", trace_id=trace_id)
        return Trace.of(trace_id, [_sql.span_from_row(row) for row in rows])

    async def trace_for_event(self, event_id: str) -> Trace:
        """The trace holding a span of event ``event_id``; ``NotFoundError`` if none."""
        self._check_open()
        trace_id = await self._guard(
            self._pool.fetchval(
                "SELECT trace_id FROM spans WHERE event_id = $1 ORDER BY start_ns DESC LIMIT 1",
                event_id,
            )
        )
        if trace_id is None:
            raise NotFoundError(f"no trace holds event {event_id}", event_id=event_id)
        return await self.trace(trace_id)

    async def last_trace(self) -> Trace:
        """The trace whose root span started last; ``NotFoundError`` for an empty store."""
        self._check_open()
        trace_id = await self._guard(
            self._pool.fetchval(
                "SELECT trace_id FROM spans WHERE parent_span_id = '' "
                "ORDER BY start_ns DESC, seq DESC LIMIT 1"
            )
        )
        if trace_id is None:
            trace_id = await self._guard(
                self._pool.fetchval(
                    "SELECT trace_id FROM spans ORDER BY start_ns DESC, seq DESC LIMIT 1"
                )
            )
        if trace_id is None:
            raise NotFoundError("no trace has been recorded yet")
        return await self.trace(trace_id)

    async def _select_logs(self, statement: str, params: list[Any]) -> list[LogRecord]:
        self._check_open()
        rows = await self._guard(self._pool.fetch(statement, *params))
        return [_sql.log_from_row(row) for row in rows]

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
            f"ORDER BY time_ns DESC, seq DESC LIMIT ${len(params) + 1}"
        )
        records = await self._select_logs(statement, [*params, check_limit(limit)])
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
        # $1 is the position, the filters follow, the batch size comes last
        where, params = _sql.log_filters(query, lambda n: f"${n + 1}")
        statement = (
            f"SELECT {_sql.LOG_SELECT} FROM logs WHERE seq > $1 AND {where} "
            f"ORDER BY seq LIMIT ${len(params) + 2}"
        )

        async def fetch_after(seq: int) -> list[LogRecord]:
            return await self._select_logs(statement, [seq, *params, _FOLLOW_BATCH])

        async def last_seq() -> int:
            self._check_open()
            return int(
                await self._guard(self._pool.fetchval("SELECT COALESCE(MAX(seq), 0) FROM logs"))
            )

        return _sql.follow_logs(
            fetch_after=fetch_after,
            last_seq=last_seq,
            after=after,
            notifier=self._notifier,
            closed=lambda: self._closed,
            poll_interval=self._poll_interval,
        )

    async def _prune(self, now_ns: int) -> int:
        retention = self.retention
        cutoff = now_ns - int(retention.max_age * 1e9)
        async with self._pool.acquire() as db, db.transaction():
            await db.execute("SELECT pg_advisory_xact_lock($1)", _PRUNE_LOCK)
            deleted = _count(await db.execute("DELETE FROM spans WHERE start_ns < $1", cutoff))
            deleted += _count(await db.execute("DELETE FROM logs WHERE time_ns < $1", cutoff))
            for table, keep in (("spans", retention.max_spans), ("logs", retention.max_logs)):
                deleted += _count(
                    await db.execute(
                        f"DELETE FROM {table} WHERE seq <= "
                        f"(SELECT seq FROM {table} ORDER BY seq DESC LIMIT 1 OFFSET $1)",
                        keep,
                    )
                )
            span_bytes = await db.fetchval("SELECT COALESCE(SUM(size), 0) FROM spans")
            log_bytes = await db.fetchval("SELECT COALESCE(SUM(size), 0) FROM logs")
            targets = _sql.byte_targets(int(span_bytes), int(log_bytes), retention.max_bytes)
            if targets is not None:
                for table, budget in zip(("spans", "logs"), targets, strict=True):
                    deleted += _count(
                        await db.execute(
                            f"DELETE FROM {table} WHERE seq <= ({_boundary_by_bytes(table)})",
                            budget,
                        )
                    )
        return deleted

    async def prune(self) -> int:
        """Enforce the retention now; return how many records were deleted."""
        self._check_open()
        self._pacer.pruned()
        return await self._guard(self._prune(self._clock()))

    async def aclose(self) -> None:
        """End follows and close the connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._notifier.notify()
        await self._pool.close()
