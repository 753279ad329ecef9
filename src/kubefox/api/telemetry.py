"""Telemetry endpoints of the API: traces, logs (also followed) and the Prometheus metrics.

* ``GET /api/v1/traces/{id}``: a trace id (32 hex digits) or an event id;
  the trace as :func:`kubefox.telemetry.render.trace_json`, 404 if none.
* ``GET /api/v1/traces?last=1``: the trace of the latest request.
* ``GET /api/v1/logs?app=&component=&ve=&trace=&limit=&after=&follow=1``:
  log records, oldest first (a JSON array), or with ``follow=1`` the matching
  records stored after ``after`` as newline-delimited JSON until the client
  leaves or the server stops.
* ``GET /metrics``: the platform process's metrics in Prometheus' text format.

They exist only when the platform hands :func:`kubefox.api.app.create_app`
its telemetry store and metrics reader.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kubefox.api.watching import NDJSON, WatchResponse, bounded
from kubefox.core.errors import InvalidError, UnavailableError
from kubefox.telemetry.protocol import TelemetryStore
from kubefox.telemetry.render import log_json, trace_json

PREFIX = "/api/v1"
#: Media type of the Prometheus text exposition format.
METRICS_MEDIA_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_TRACE_ID = re.compile(r"[0-9a-fA-F]{32}")
_MAX_LIMIT = 10_000


def _store(request: Request) -> TelemetryStore:
    store: TelemetryStore | None = request.app.state.kubefox_telemetry
    if store is None:
        raise UnavailableError("the platform keeps no telemetry")
    return store


def _int(request: Request, name: str, default: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidError(f"{name} must be an integer", value=raw) from None


async def get_trace(request: Request) -> Response:
    """One trace, by trace id or by the id of an event in it."""
    store = _store(request)
    ident = request.path_params["id"]
    if _TRACE_ID.fullmatch(ident):
        trace = await store.trace(ident.lower())
    else:
        trace = await store.trace_for_event(ident)
    return JSONResponse(trace_json(trace))


async def get_traces(request: Request) -> Response:
    """``?last=1``: the trace of the latest request (the only query supported yet)."""
    store = _store(request)
    if request.query_params.get("last") not in ("1", "true"):
        raise InvalidError("ask for a trace by id, or for the latest with ?last=1")
    return JSONResponse(trace_json(await store.last_trace()))


async def get_logs(request: Request) -> Response:
    """Log records matching the filters; ``follow=1`` streams them as they arrive."""
    store = _store(request)
    q = request.query_params
    filters: dict[str, Any] = {
        "app": q.get("app") or None,
        "component": q.get("component") or None,
        "ve": q.get("ve") or None,
        "trace_id": (q.get("trace") or "").lower() or None,
    }
    limit = _int(request, "limit", 100) or 100
    if not 1 <= limit <= _MAX_LIMIT:
        raise InvalidError(f"limit must be between 1 and {_MAX_LIMIT}", value=limit)
    if q.get("follow") in ("1", "true"):
        after = _int(request, "after", None)
        closing = request.app.state.kubefox.closing

        async def records() -> AsyncIterator[dict[str, Any]]:
            async for record in store.follow(**filters, after=after):
                yield log_json(record)

        async def lines() -> AsyncIterator[bytes]:
            async for record in bounded(records(), timeout=None, closing=closing):
                yield json.dumps(record).encode() + b"\n"

        return WatchResponse(lines(), media_type=NDJSON)
    found = await store.logs(**filters, limit=limit)
    return JSONResponse([log_json(record) for record in found])


async def get_metrics(request: Request) -> Response:
    """Every metric of the platform process, Prometheus text format."""
    render: Callable[[], str] | None = request.app.state.kubefox_metrics
    if render is None:
        raise UnavailableError("the platform exports no metrics")
    return Response(render(), media_type=METRICS_MEDIA_TYPE)


def telemetry_routes() -> list[Route]:
    """The routes of this module (not in ``/openapi.json`` yet)."""
    return [
        Route(f"{PREFIX}/traces/{{id}}", get_trace, methods=["GET"]),
        Route(f"{PREFIX}/traces", get_traces, methods=["GET"]),
        Route(f"{PREFIX}/logs", get_logs, methods=["GET"]),
        Route("/metrics", get_metrics, methods=["GET"]),
    ]
