"""The telemetry store port: where spans and log lines are kept and how they are asked for.

``fox trace``, ``fox logs``, the debugger and the UI read through
:class:`TelemetryStore`; the OTLP receiver writes through it. Backends satisfy
it structurally (SQLite by default, PostgreSQL at scale) and pass one contract
suite (``tests/contracts/telemetry_store.py``).

A store is bounded by its :class:`Retention`: records older than ``max_age``,
and the oldest records beyond ``max_spans``/``max_logs`` rows or ``max_bytes``
of payload, are deleted. Writes enforce it as they go (at most every
``prune_every`` records or ``prune_interval`` seconds), so a store left alone
cannot fill a disk; :meth:`TelemetryStore.prune` enforces it at once.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import AsyncGenerator, Sequence
from typing import Protocol

from kubefox.core.errors import InvalidError
from kubefox.telemetry.records import LogRecord, SpanRecord, Trace, check_trace_id

_DAY = 86_400.0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Retention:
    """How much a telemetry store keeps.

    Attributes:
        max_age: Seconds a record is kept, counted from its time (a span's start).
        max_spans: Spans kept at most; the oldest stored go first.
        max_logs: Log records kept at most; the oldest stored go first.
        max_bytes: Payload bytes (attributes, bodies, names) kept at most, spans and
            logs together; over it, each kind is cut by the same fraction to 90% of it.
        prune_every: Records written between two automatic prunes, at most.
        prune_interval: Seconds between two automatic prunes, at most, while writing.
    """

    max_age: float = 7 * _DAY
    max_spans: int = 1_000_000
    max_logs: int = 1_000_000
    max_bytes: int = 1 << 30
    prune_every: int = 10_000
    prune_interval: float = 60.0

    def __post_init__(self) -> None:
        for name in ("max_age", "max_spans", "max_logs", "max_bytes", "prune_every"):
            if getattr(self, name) <= 0:
                raise InvalidError(f"retention {name} must be positive", value=getattr(self, name))
        if self.prune_interval < 0:
            raise InvalidError("retention prune_interval must not be negative")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LogQuery:
    """Which log records a query or a follow wants; empty fields match everything."""

    app: str | None = None
    component: str | None = None
    ve: str | None = None
    trace_id: str | None = None
    since_ns: int | None = None

    @classmethod
    def of(
        cls,
        *,
        app: str | None = None,
        component: str | None = None,
        ve: str | None = None,
        trace_id: str | None = None,
        since: datetime.datetime | None = None,
    ) -> LogQuery:
        """Validate the public keyword arguments of :meth:`TelemetryStore.logs`."""
        if since is not None and since.tzinfo is None:
            raise InvalidError("since must be an aware datetime (with a time zone)")
        return cls(
            app=app or None,
            component=component or None,
            ve=ve or None,
            trace_id=check_trace_id(trace_id) if trace_id else None,
            since_ns=_to_ns(since) if since is not None else None,
        )

    def matches(self, record: LogRecord) -> bool:
        """Whether ``record`` passes every filter (what the backends' SQL must agree with)."""
        return (
            (self.app is None or record.app == self.app)
            and (self.component is None or record.component == self.component)
            and (self.ve is None or record.virtual_environment == self.ve)
            and (self.trace_id is None or record.trace_id == self.trace_id)
            and (self.since_ns is None or record.time_ns >= self.since_ns)
        )


def _to_ns(moment: datetime.datetime) -> int:
    delta = moment - datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def check_limit(limit: int) -> int:
    """Return ``limit``; ``InvalidError`` unless it is at least 1."""
    if limit < 1:
        raise InvalidError("limit must be at least 1", limit=limit)
    return limit


class TelemetryStore(Protocol):
    """Keeps spans and log records within its retention, and answers queries on them.

    Errors: ``NotFoundError`` (also a ``LookupError``) when no trace matches,
    ``InvalidError`` for a malformed id or argument, ``UnavailableError`` when
    the backend cannot be reached or the store is closed.
    """

    async def put_spans(self, spans: Sequence[SpanRecord]) -> None:
        """Keep ``spans``; a span already kept (same trace and span id) is kept once."""
        ...

    async def put_logs(self, records: Sequence[LogRecord]) -> None:
        """Keep ``records`` (their ``seq`` is ignored: the store gives each a new one)."""
        ...

    async def trace(self, trace_id: str) -> Trace:
        """Every kept span of ``trace_id``; ``NotFoundError`` if there is none."""
        ...

    async def trace_for_event(self, event_id: str) -> Trace:
        """The trace holding a span with ``kubefox.event.id`` = ``event_id``.

        If spans of several traces carry it, the one that started last wins.
        ``NotFoundError`` if no span carries it.
        """
        ...

    async def last_trace(self) -> Trace:
        """The trace of the latest request: the one whose root span started last.

        Only when no kept span is a root (every trace continues a remote
        parent), the trace of the span that started last. ``NotFoundError`` for
        an empty store.
        """
        ...

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
        """The newest ``limit`` records matching every given filter, oldest first.

        Records are ordered by their time, then by ``seq``; ``since`` keeps
        records at or after it.
        """
        ...

    def follow(
        self,
        *,
        app: str | None = None,
        component: str | None = None,
        ve: str | None = None,
        trace_id: str | None = None,
        after: int | None = None,
    ) -> AsyncGenerator[LogRecord, None]:
        """Yield matching records as they are stored, in ``seq`` order, until closed.

        ``after`` is a ``seq`` to continue from (the last record of a
        :meth:`logs` call, say); ``None`` starts with the next record stored.
        Records written by other processes arrive within the backend's poll
        interval. The iterator ends when the store is closed.
        """
        ...

    async def prune(self) -> int:
        """Enforce the retention now; return how many records were deleted."""
        ...

    async def aclose(self) -> None:
        """End follows and release the backend. Idempotent."""
        ...
