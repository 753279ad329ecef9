"""Hop spans for telemetry tests: numbered, one trace, times that follow the number."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubefox.telemetry._chunks import ChunkRow, HopChunkWriter
from kubefox.telemetry.records import SpanKind
from kubefox.telemetry.spans import HopSpan, shared_attributes, span_kinds

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


#: The attributes the call span of :func:`compact_chunk` reads back with.
COMPACT_CALL_ATTRIBUTES = {
    "kubefox.app": "hello-world",
    "kubefox.route.id": 0,
    "kubefox.event.id": "ev-2",
    "kubefox.event.parent_id": "ev-1",
    "http.response.status_code": 503,
}


def compact_chunk() -> ChunkRow:
    """What a component posts for a handler span and its failed call, both compact.

    The handler (span 1, event ``ev-1``) is a child of a remote span; the call
    (span 2, event ``ev-2``) is the handler's child and answered 503.
    """
    writer = HopChunkWriter({"service.name": "hello-world-frontend-0123456"}, "kubefox.component")
    shared = shared_attributes.share({"kubefox.app": "hello-world", "kubefox.route.id": 0}).index
    handler = span_kinds.index("Path(`/hello`)", int(SpanKind.SERVER), shared)
    call = span_kinds.index("Send REQUEST to backend", int(SpanKind.CLIENT), shared)
    one, two = (1).to_bytes(8, "big"), (2).to_bytes(8, "big")
    row = writer.chunk_of(
        [],
        [
            *(handler, "ev-1", "ev-0", TRACE, one, b"\x09" * 8, _BASE_NS + 10, _BASE_NS + 40, 200),
            *(call, "ev-2", "ev-1", TRACE, two, one, _BASE_NS + 20, _BASE_NS + 30, 503),
        ],
    )
    if row is None:
        raise AssertionError("two compact spans make a chunk")
    return row
