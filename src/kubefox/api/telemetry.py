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
its telemetry store and metrics reader; :func:`telemetry_paths` and
:func:`telemetry_schemas` describe them in ``/openapi.json``.
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
    limit = _int(request, "limit", 100)
    if limit is None or not 1 <= limit <= _MAX_LIMIT:  # 0 was taken as the default before
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
    """The routes of this module (described by :func:`telemetry_paths`)."""
    return [
        Route(f"{PREFIX}/traces/{{id}}", get_trace, methods=["GET"]),
        Route(f"{PREFIX}/traces", get_traces, methods=["GET"]),
        Route(f"{PREFIX}/logs", get_logs, methods=["GET"]),
        Route("/metrics", get_metrics, methods=["GET"]),
    ]


# -- the OpenAPI description ------------------------------------------------------------------

_REF = "#/components/schemas/{name}"
_PROBLEM = "application/problem+json"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": _REF.format(name=name)}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {_PROBLEM: {"schema": _ref("Problem")}}}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_NO_TELEMETRY = _problem("The platform keeps no telemetry (telemetry is off).")


def telemetry_paths(prefix: str = PREFIX) -> dict[str, Any]:
    """The OpenAPI path items of :func:`telemetry_routes` (``prefix``: the API's, ``/api/v1``)."""
    text = {"type": "string"}
    optional = {"required": False, "in": "query"}
    return {
        f"{prefix}/traces/{{id}}": {
            "parameters": [
                {
                    "name": "id",
                    "in": "path",
                    "required": True,
                    "description": "A trace id (32 hex digits, any case) or the id of an event "
                    "in the trace (the `kubefox-event-id` of a response).",
                    "schema": text,
                }
            ],
            "get": {
                "operationId": "getTrace",
                "summary": "One trace with every span, in waterfall order",
                "responses": {
                    "200": _json("The trace.", _ref("Trace")),
                    "400": _problem("The trace id is malformed."),
                    "404": _problem("No trace has that id or holds that event."),
                    "503": _NO_TELEMETRY,
                },
            },
        },
        f"{prefix}/traces": {
            "get": {
                "operationId": "getLastTrace",
                "summary": "The trace of the latest request (`?last=1`)",
                "parameters": [
                    {
                        "name": "last",
                        **optional,
                        "description": "Must be `1` or `true`: the only query supported.",
                        "schema": {"type": "string", "enum": ["1", "true"]},
                    }
                ],
                "responses": {
                    "200": _json("The trace whose root span started last.", _ref("Trace")),
                    "400": _problem("`last` is missing: ask for a trace by id instead."),
                    "404": _problem("No trace has been recorded yet."),
                    "503": _NO_TELEMETRY,
                },
            },
        },
        f"{prefix}/logs": {
            "get": {
                "operationId": "getLogs",
                "summary": "Log records of every role and component, oldest first, or followed",
                "parameters": [
                    {"name": "app", **optional, "description": "Only this app.", "schema": text},
                    {
                        "name": "component",
                        **optional,
                        "description": "Only this component.",
                        "schema": text,
                    },
                    {
                        "name": "ve",
                        **optional,
                        "description": "Only this virtual environment.",
                        "schema": text,
                    },
                    {
                        "name": "trace",
                        **optional,
                        "description": "Only lines written inside this trace (32 hex digits).",
                        "schema": text,
                    },
                    {
                        "name": "limit",
                        **optional,
                        "description": "The newest this many (default 100).",
                        "schema": {"type": "integer", "minimum": 1, "maximum": _MAX_LIMIT},
                    },
                    {
                        "name": "follow",
                        **optional,
                        "description": "`1` or `true`: stream records as they are stored "
                        "(newline-delimited JSON) until the client leaves.",
                        "schema": {"type": "string", "enum": ["0", "1", "true", "false"]},
                    },
                    {
                        "name": "after",
                        **optional,
                        "description": "With `follow`: start after this `seq` (default: now).",
                        "schema": {"type": "integer"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The records (a JSON array), or with `follow` a stream "
                        "of them, one JSON object per line.",
                        "content": {
                            "application/json": {
                                "schema": {"type": "array", "items": _ref("LogRecord")}
                            },
                            NDJSON: {"schema": _ref("LogRecord")},
                        },
                    },
                    "400": _problem("A filter, `limit` or `after` is invalid."),
                    "503": _NO_TELEMETRY,
                },
            },
        },
        "/metrics": {
            "get": {
                "operationId": "getMetrics",
                "summary": "The platform process's metrics, Prometheus text format 0.0.4",
                "responses": {
                    "200": {
                        "description": "kubefox_hop_duration_seconds, kubefox_errors_total, "
                        "kubefox_in_flight, kubefox_component_instances.",
                        "content": {METRICS_MEDIA_TYPE: {"schema": text}},
                    },
                    "503": _problem("The platform exports no metrics (telemetry is off)."),
                },
            },
        },
    }


def telemetry_schemas() -> dict[str, Any]:
    """The component schemas :func:`telemetry_paths` refers to (``Problem`` is the API's)."""
    nullable = {"type": ["string", "null"]}
    values = {"type": "object", "additionalProperties": True}
    span = {
        "type": "object",
        "required": ["trace_id", "span_id", "name", "kind", "start_ns", "end_ns", "status"],
        "properties": {
            "trace_id": {"type": "string"},
            "span_id": {"type": "string"},
            "parent_span_id": nullable,
            "name": {"type": "string"},
            "kind": {
                "type": "string",
                "enum": ["unspecified", "internal", "server", "client", "producer", "consumer"],
            },
            "service": {"type": "string"},
            "depth": {"type": "integer"},
            "start_time": {"type": "string"},
            "start_ns": {"type": "integer"},
            "end_ns": {"type": "integer"},
            "offset_ms": {"type": "number"},
            "duration_ms": {"type": "number"},
            "status": {
                "type": "object",
                "properties": {
                    "code": {"type": "string", "enum": ["unset", "ok", "error"]},
                    "message": {"type": "string"},
                },
            },
            "event_id": nullable,
            "attributes": values,
            "resource": values,
            "events": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "time_ns": {"type": "integer"},
                        "attributes": values,
                    },
                },
            },
        },
    }
    return {
        "Span": span,
        "Trace": {
            "type": "object",
            "required": ["trace_id", "spans"],
            "properties": {
                "trace_id": {"type": "string"},
                "start_time": {"type": "string"},
                "duration_ms": {"type": "number"},
                "span_count": {"type": "integer"},
                "error": {"type": "boolean"},
                "spans": {"type": "array", "items": _ref("Span")},
            },
        },
        "LogRecord": {
            "type": "object",
            "required": ["seq", "time_ns", "body"],
            "properties": {
                "seq": {"type": "integer"},
                "time": {"type": "string"},
                "time_ns": {"type": "integer"},
                "severity": {"type": "string"},
                "severity_number": {"type": "integer"},
                "body": {"type": "string"},
                "app": nullable,
                "component": nullable,
                "ve": nullable,
                "service": nullable,
                "event_id": nullable,
                "trace_id": nullable,
                "span_id": nullable,
                "attributes": values,
                "resource": values,
            },
        },
    }
