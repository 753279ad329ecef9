"""The recording endpoints: start, stop, list, read and delete recordings of a virtual environment.

``POST /api/v1/recordings`` writes the recording httpsrv watches and waits
(``timeoutSeconds``, default 5) until an httpsrv instance says it records it,
so requests sent after the answer are captured; ``observedBy`` names those
instances (empty if none answered in time: the recording still exists).
The routes and their OpenAPI description live together here;
:mod:`kubefox.api.app` and :mod:`kubefox.api.openapi` include them.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kubefox.core.errors import ContentTooLargeError, InvalidError, NotFoundError
from kubefox.recording.records import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_REQUESTS,
    Recording,
    RecordingState,
    check_recording_id,
    new_recording_id,
    now_iso,
    to_builtins,
)
from kubefox.recording.store import MAX_READ, RecordingStore
from kubefox.resources import VirtualEnvironment

if TYPE_CHECKING:
    from kubefox.router import ResourceView

#: Largest body a recording request may have.
MAX_BODY = 16 * 1024
#: Most requests and bytes one recording may ask for.
MAX_REQUESTS = 100_000
MAX_BYTES = 256 * 1024 * 1024
_DEFAULT_WAIT = 5.0
_MAX_WAIT = 30.0
_FIELDS = {"virtualEnvironment", "appDeployment", "maxRequests", "maxBytes"}


def _store(request: Request) -> RecordingStore:
    store: RecordingStore = request.app.state.kubefox_recordings
    return store


def _view(request: Request) -> ResourceView:
    view: ResourceView = request.app.state.kubefox.view
    return view


def _id(request: Request) -> str:
    raw = request.path_params["id"]
    try:
        return check_recording_id(raw)
    except InvalidError:
        # An id that could not have been issued names nothing.
        raise NotFoundError(f"recording {raw[:100]} not found", id=raw[:100]) from None


async def _body(request: Request) -> dict[str, Any]:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise ContentTooLargeError(f"the body is larger than {MAX_BODY} bytes", limit=MAX_BODY)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidError(
            f"the body is not valid JSON: {exc}",
            problems=[{"path": "$", "message": f"not valid JSON: {exc}"}],
        ) from exc
    if not isinstance(body, dict):
        raise InvalidError(
            "bad recording request: expected an object",
            problems=[{"path": "$", "message": "expected an object"}],
        )
    return body


def _bounded(body: dict[str, Any], name: str, default: int, maximum: int) -> int | str:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        return f"must be an integer from 1 to {maximum}"
    return value


def _recording(body: dict[str, Any]) -> Recording:
    problems: list[dict[str, str]] = []
    ve = body.get("virtualEnvironment")
    if not isinstance(ve, str) or not ve:
        problems.append({"path": "$.virtualEnvironment", "message": "must be a VE name"})
    deployment = body.get("appDeployment", "")
    if not isinstance(deployment, str):
        problems.append({"path": "$.appDeployment", "message": "must be an AppDeployment name"})
    limits: dict[str, int] = {}
    for name, default, maximum in (
        ("maxRequests", DEFAULT_MAX_REQUESTS, MAX_REQUESTS),
        ("maxBytes", DEFAULT_MAX_BYTES, MAX_BYTES),
    ):
        value = _bounded(body, name, default, maximum)
        if isinstance(value, str):
            problems.append({"path": f"$.{name}", "message": value})
        else:
            limits[name] = value
    problems += [
        {"path": f"$.{key}", "message": f'unknown field "{key}"'} for key in body.keys() - _FIELDS
    ]
    if problems:
        raise InvalidError(f"bad recording request: {problems[0]['message']}", problems=problems)
    assert isinstance(ve, str)  # noqa: S101 - checked above
    assert isinstance(deployment, str)  # noqa: S101 - checked above
    return Recording(
        id=new_recording_id(ve),
        virtual_environment=ve,
        app_deployment=deployment,
        max_requests=limits["maxRequests"],
        max_bytes=limits["maxBytes"],
        start_time=now_iso(),
    )


def _wait(request: Request) -> float:
    raw = request.query_params.get("timeoutSeconds", "")
    if not raw:
        return _DEFAULT_WAIT
    if not raw.isdigit():
        raise InvalidError(
            f'query parameter timeoutSeconds must be an integer of at least 0, not "{raw[:50]}"',
            errors=[{"path": "query.timeoutSeconds", "message": "expected an integer >= 0"}],
        )
    return min(float(raw), _MAX_WAIT)


async def start_recording(request: Request) -> Response:
    """``POST /api/v1/recordings``."""
    recording = _recording(await _body(request))
    if _view(request).get(VirtualEnvironment, recording.virtual_environment) is None:
        raise NotFoundError(
            f"VirtualEnvironment {recording.virtual_environment} not found",
            kind="VirtualEnvironment",
            name=recording.virtual_environment,
        )
    store = _store(request)
    created = await store.create(recording)
    observers = await store.observers(created.id, wait=_wait(request))
    return JSONResponse({**to_builtins(created), "observedBy": observers}, status_code=201)


async def list_recordings(request: Request) -> Response:
    """``GET /api/v1/recordings``."""
    found = await _store(request).all()
    return JSONResponse({"items": [to_builtins(r) for r in found]})


async def get_recording(request: Request) -> Response:
    """``GET /api/v1/recordings/{id}``."""
    return JSONResponse(to_builtins(await _store(request).get(_id(request))))


async def stop_recording(request: Request) -> Response:
    """``POST /api/v1/recordings/{id}/stop``."""
    stopped = await _store(request).stop(_id(request), RecordingState.STOPPED)
    return JSONResponse(to_builtins(stopped))


async def delete_recording(request: Request) -> Response:
    """``DELETE /api/v1/recordings/{id}``."""
    recording_id = _id(request)
    found = await _store(request).get(recording_id)
    await _store(request).delete(recording_id)
    return JSONResponse(to_builtins(found))


async def recording_exchanges(request: Request) -> Response:
    """``GET /api/v1/recordings/{id}/exchanges``."""
    recording_id = _id(request)
    exchanges = await _store(request).exchanges(recording_id, limit=MAX_READ)
    return JSONResponse(
        {"recording": recording_id, "exchanges": [to_builtins(e) for e in exchanges]}
    )


def recording_routes(prefix: str) -> list[Route]:
    """The recording routes under ``prefix`` (``/api/v1``)."""
    p = f"{prefix}/recordings"
    return [
        Route(p, list_recordings, methods=["GET"]),
        Route(p, start_recording, methods=["POST"]),
        Route(f"{p}/{{id}}", get_recording, methods=["GET"]),
        Route(f"{p}/{{id}}", delete_recording, methods=["DELETE"]),
        Route(f"{p}/{{id}}/stop", stop_recording, methods=["POST"]),
        Route(f"{p}/{{id}}/exchanges", recording_exchanges, methods=["GET"]),
    ]


# -- OpenAPI ------------------------------------------------------------------------------

_REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": _REF.format(model=name)}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": _ref("Problem")}},
    }


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ID_PARAMETER = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "The recording's id, as `POST /api/v1/recordings` answered it.",
    "schema": {"type": "string"},
}
_MISSING = _problem("No such recording.")
_UNAVAILABLE = _problem("The recordings cannot be reached.")


def recording_paths(prefix: str) -> dict[str, Any]:
    """The OpenAPI path items of :func:`recording_routes`."""
    p = f"{prefix}/recordings"
    return {
        p: {
            "get": {
                "operationId": "listRecordings",
                "summary": "Every recording, oldest first",
                "responses": {
                    "200": _json(
                        "The recordings.",
                        {
                            "type": "object",
                            "properties": {"items": {"type": "array", "items": _ref("Recording")}},
                        },
                    ),
                    "503": _UNAVAILABLE,
                },
            },
            "post": {
                "operationId": "startRecording",
                "summary": "Record the requests of a virtual environment (or one deployment in it)",
                "parameters": [
                    {
                        "name": "timeoutSeconds",
                        "in": "query",
                        "required": False,
                        "description": "How long to wait for an httpsrv to start recording "
                        f"(default {_DEFAULT_WAIT:g}, at most {_MAX_WAIT:g}).",
                        "schema": {"type": "integer", "minimum": 0},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("RecordingRequest")}},
                },
                "responses": {
                    "201": _json("The recording, and who records it.", _ref("Recording")),
                    "400": _problem("The request is invalid."),
                    "404": _problem("No such VirtualEnvironment."),
                    "413": _problem("The body is too large."),
                    "503": _UNAVAILABLE,
                },
            },
        },
        f"{p}/{{id}}": {
            "parameters": [_ID_PARAMETER],
            "get": {
                "operationId": "getRecording",
                "summary": "One recording and how many exchanges it holds",
                "responses": {
                    "200": _json("The recording.", _ref("Recording")),
                    "404": _MISSING,
                    "503": _UNAVAILABLE,
                },
            },
            "delete": {
                "operationId": "deleteRecording",
                "summary": "Delete a recording and its exchanges",
                "responses": {
                    "200": _json("The recording as it was.", _ref("Recording")),
                    "404": _MISSING,
                    "503": _UNAVAILABLE,
                },
            },
        },
        f"{p}/{{id}}/stop": {
            "parameters": [_ID_PARAMETER],
            "post": {
                "operationId": "stopRecording",
                "summary": "Stop recording (an ended recording is answered unchanged)",
                "responses": {
                    "200": _json("The recording.", _ref("Recording")),
                    "404": _MISSING,
                    "503": _UNAVAILABLE,
                },
            },
        },
        f"{p}/{{id}}/exchanges": {
            "parameters": [_ID_PARAMETER],
            "get": {
                "operationId": "recordingExchanges",
                "summary": f"The recorded exchanges in arrival order (at most {MAX_READ})",
                "responses": {
                    "200": _json(
                        "The exchanges.",
                        {
                            "type": "object",
                            "properties": {
                                "recording": {"type": "string"},
                                "exchanges": {"type": "array", "items": _ref("Exchange")},
                            },
                        },
                    ),
                    "404": _MISSING,
                    "503": _UNAVAILABLE,
                },
            },
        },
    }


def _message(description: str) -> dict[str, Any]:
    headers = {
        "type": "array",
        "description": "[name, value] pairs, names in lower case; credentials removed.",
        "items": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2},
    }
    return {
        "type": "object",
        "description": description,
        "properties": {
            "headers": headers,
            "body": {"type": "string", "contentEncoding": "base64"},
        },
    }


def recording_schemas() -> dict[str, Any]:
    """The OpenAPI schemas :func:`recording_paths` refers to."""
    request = _message("The request as sent.")
    request["properties"] |= {
        "method": {"type": "string"},
        "path": {"type": "string"},
        "query": {"type": "string", "description": "The raw query string."},
    }
    response = _message("The answer as received.")
    response["properties"]["status"] = {"type": "integer"}
    return {
        "RecordingRequest": {
            "type": "object",
            "required": ["virtualEnvironment"],
            "additionalProperties": False,
            "properties": {
                "virtualEnvironment": {"type": "string", "minLength": 1},
                "appDeployment": {
                    "type": "string",
                    "description": "Only requests served by this AppDeployment (a release).",
                },
                "maxRequests": {"type": "integer", "minimum": 1, "maximum": MAX_REQUESTS},
                "maxBytes": {"type": "integer", "minimum": 1, "maximum": MAX_BYTES},
            },
        },
        "Recording": {
            "type": "object",
            "required": ["id", "virtualEnvironment", "state"],
            "properties": {
                "id": {"type": "string"},
                "virtualEnvironment": {"type": "string"},
                "appDeployment": {"type": "string"},
                "maxRequests": {"type": "integer"},
                "maxBytes": {"type": "integer"},
                "state": {"type": "string", "enum": [s.value for s in RecordingState]},
                "startTime": {"type": "string"},
                "stopTime": {"type": "string"},
                "requests": {"type": "integer", "description": "Exchanges stored."},
                "observedBy": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "httpsrv instances recording it (when started).",
                },
            },
        },
        "Exchange": {
            "type": "object",
            "properties": {
                "recording": {"type": "string"},
                "eventId": {"type": "string"},
                "time": {"type": "string"},
                "platform": {"type": "string"},
                "virtualEnvironment": {"type": "string"},
                "appDeployment": {"type": "string"},
                "releaseManifest": {"type": "string"},
                "request": request,
                "response": response,
                "redacted": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "Names of the headers removed before storing.",
                },
                "truncated": {"type": "boolean"},
            },
        },
    }
