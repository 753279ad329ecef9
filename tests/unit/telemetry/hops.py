"""Hop spans for telemetry tests: numbered, one trace, times that follow the number."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubefox.telemetry.records import SpanKind
from kubefox.telemetry.spans import HopSpan

TRACE = bytes(range(1, 17))
_BASE_NS = 1_700_000_000_000_000_000


def hop(
    n: int,
    *,
    parent: bytes = b"",
    trace: bytes = TRACE,
    start: int | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> HopSpan:
    """Span ``n`` (its id is ``n``), event ``ev-<n>``, plus ``attributes``."""
    return HopSpan(
        trace_id=trace,
        span_id=n.to_bytes(8, "big"),
        parent_span_id=parent,
        name=f"hop {n}",
        kind=int(SpanKind.SERVER),
        start_ns=_BASE_NS + n if start is None else start,
        end_ns=_BASE_NS + 10 * n,
        attributes={"kubefox.event.id": f"ev-{n}", **(attributes or {})},
    )
