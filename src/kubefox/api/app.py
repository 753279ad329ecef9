"""The control-plane API as a Starlette application: routes, bodies, problem documents.

Every endpoint is a thin function: read the request, call the use case
(:mod:`kubefox.api.service` and its siblings), answer JSON. Every error, ours
or the framework's (unknown path, wrong method), is answered as a problem
document (:mod:`kubefox.api.problems`); a bug is a 500 problem with no
traceback on the wire (it goes to the log).

The routes and their bodies are described in ``/openapi.json``
(:mod:`kubefox.api.openapi`); a test keeps the two in step.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

import structlog
import yaml
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kubefox.api.artifacts import ArtifactService
from kubefox.api.openapi import openapi_document
from kubefox.api.problems import PROBLEM_MEDIA_TYPE, problem_document
from kubefox.api.recordings import recording_routes
from kubefox.api.releasing import ReleaseService
from kubefox.api.service import ResourceService, model_for
from kubefox.api.settings import ApiSettings
from kubefox.api.status import Endpoints, InstanceSource, RecordSource, status_report
from kubefox.api.telemetry import telemetry_routes
from kubefox.api.waiting import wait_available
from kubefox.api.watching import NDJSON, SSE, WatchResponse, bounded, encode
from kubefox.core.errors import (
    ContentTooLargeError,
    InvalidError,
    KubeFoxError,
    error_for_code,
)
from kubefox.recording.store import MemoryRecordings, RecordingStore
from kubefox.resources import RESOURCE_KINDS, SHORT_NAMES, Resource, dump
from kubefox.resources.meta import API_VERSION
from kubefox.router import ResourceView
from kubefox.security.protocol import SecretsBackend
from kubefox.store.artifacts import ArtifactStore
from kubefox.store.protocol import ResourceStore
from kubefox.store.secrets import ResourceSecrets
from kubefox.store.typed import CLUSTER_KINDS
from kubefox.telemetry.protocol import TelemetryStore

log = structlog.get_logger(__name__)

#: Prefix of every versioned endpoint.
PREFIX = "/api/v1"
#: Response header saying what an apply did: created, configured or unchanged.
APPLY_HEADER = "kubefox-apply"

_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
_CODES_BY_STATUS = {400: 6, 404: 7, 409: 16, 413: 5, 503: 15, 504: 11}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ApiContext:
    """What the endpoints work with; built once by :func:`create_app`."""

    settings: ApiSettings
    platform: str
    namespace: str
    store: ResourceStore
    resources: ResourceService
    artifacts: ArtifactService
    releases: ReleaseService
    view: ResourceView
    registry: RecordSource | None
    scheduler: InstanceSource | None
    endpoints: Endpoints | None
    closing: asyncio.Event


def _context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.kubefox
    return context


# -- helpers ----------------------------------------------------------------------------


def _json(content: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse(content, status_code=status, headers=headers)


def _problem(error: KubeFoxError, request: Request, status: int | None = None) -> Response:
    document = problem_document(error, instance=request.url.path)
    if status is not None:
        document["status"] = status
    return JSONResponse(document, status_code=document["status"], media_type=PROBLEM_MEDIA_TYPE)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ContentTooLargeError(f"the body is larger than {limit} bytes", limit=limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ContentTooLargeError(f"the body is larger than {limit} bytes", limit=limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def _document(request: Request) -> object:
    """The request body as a JSON (or YAML) value."""
    raw = await _read_body(request, _context(request).settings.max_body_size)
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if content_type.lower() in _YAML_TYPES:
        try:
            return yaml.safe_load(raw.decode("utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise InvalidError(
                f"the body is not valid YAML: {exc}",
                problems=[{"path": "$", "message": f"not valid YAML: {exc}"}],
            ) from exc
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidError(
            f"the body is not valid JSON: {exc}",
            problems=[{"path": "$", "message": f"not valid JSON: {exc}"}],
        ) from exc


def _int_param(request: Request, name: str, default: int | None, *, minimum: int = 0) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise InvalidError(
            f'query parameter {name} must be an integer of at least {minimum}, not "{raw}"',
            errors=[{"path": f"query.{name}", "message": f"expected an integer >= {minimum}"}],
        )
    return value


def _timeout(request: Request, default: float) -> float:
    limit = _context(request).settings.max_wait
    value = _int_param(request, "timeoutSeconds", None, minimum=1)
    return min(float(value), limit) if value is not None else min(default, limit)


def _resource_list(kind: str, items: list[Resource], revision: int) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": f"{kind}List",
        "metadata": {"resourceVersion": str(revision)},
        "items": [dump(item) for item in items],
    }


# -- endpoints --------------------------------------------------------------------------


async def get_openapi(request: Request) -> Response:
    """``GET /openapi.json``."""
    return _json(openapi_document())


async def get_health(request: Request) -> Response:
    """``GET /api/v1/healthz``: the API answers and reaches the store."""
    context = _context(request)
    revision = await context.store.revision()
    return _json({"status": "ok", "platform": context.platform, "revision": revision})


async def get_status(request: Request) -> Response:
    """``GET /api/v1/status``."""
    context = _context(request)
    report = status_report(
        platform=context.platform,
        namespace=context.namespace,
        endpoints=context.endpoints,
        view=context.view,
        registry=context.registry,
        scheduler=context.scheduler,
    )
    return _json(report)


async def get_kinds(request: Request) -> Response:
    """``GET /api/v1/kinds``: every kind and the names it answers to."""
    kinds = [
        {
            "kind": kind,
            "plural": f"{kind.lower()}s",
            "shortNames": list(SHORT_NAMES[kind]),
            "namespaced": kind not in CLUSTER_KINDS,
        }
        for kind in sorted(RESOURCE_KINDS)
    ]
    return _json({"apiVersion": API_VERSION, "kinds": kinds})


async def list_resources(request: Request) -> Response:
    """``GET /api/v1/resources/{kind}``."""
    found = await _context(request).resources.list(
        request.path_params["kind"], selector=request.query_params.get("labelSelector")
    )
    return _json(_resource_list(found.kind, found.items, found.revision))


async def create_resource(request: Request) -> Response:
    """``POST /api/v1/resources/{kind}``."""
    context = _context(request)
    model_for(request.path_params["kind"])  # an unknown kind is reported before the body
    created = await context.resources.create(request.path_params["kind"], await _document(request))
    return _json(dump(created), status=201)


async def get_resource(request: Request) -> Response:
    """``GET /api/v1/resources/{kind}/{name}``."""
    params = request.path_params
    return _json(dump(await _context(request).resources.get(params["kind"], params["name"])))


async def apply_resource(request: Request) -> Response:
    """``PUT /api/v1/resources/{kind}/{name}``: create or update."""
    params = request.path_params
    model_for(params["kind"])
    resource, result = await _context(request).resources.apply(
        params["kind"], params["name"], await _document(request)
    )
    status = 201 if result == "created" else 200
    return _json(dump(resource), status=status, headers={APPLY_HEADER: str(result)})


async def delete_resource(request: Request) -> Response:
    """``DELETE /api/v1/resources/{kind}/{name}``."""
    params = request.path_params
    return _json(dump(await _context(request).resources.delete(params["kind"], params["name"])))


async def wait_appdeployment(request: Request) -> Response:
    """``POST /api/v1/appdeployments/{name}/wait``."""
    context = _context(request)
    appdep = await wait_available(
        context.view,
        context.store,
        request.path_params["name"],
        timeout=_timeout(request, 60.0),
    )
    return _json(dump(appdep))


async def watch(request: Request) -> Response:
    """``GET /api/v1/watch``: a stream of changes."""
    context = _context(request)
    raw_kinds = [k for value in request.query_params.getlist("kind") for k in value.split(",")]
    kinds = frozenset(model_for(k).__name__ for k in raw_kinds if k.strip()) or None
    last_event = request.headers.get("last-event-id", "")
    default = int(last_event) if last_event.isdigit() else 0
    from_revision = _int_param(request, "fromRevision", default) or 0
    raw_timeout = _int_param(request, "timeoutSeconds", None, minimum=1)
    sse = SSE in request.headers.get("accept", "")
    changes = bounded(
        context.resources.watch(kinds=kinds, from_revision=from_revision),
        timeout=None if raw_timeout is None else float(raw_timeout),
        closing=context.closing,
    )
    return WatchResponse(
        encode(changes, sse=sse),
        media_type=SSE if sse else NDJSON,
        headers={"cache-control": "no-store"},
    )


async def artifact(request: Request) -> Response:
    """``GET``/``HEAD``/``PUT /api/v1/artifacts/{name}``."""
    context = _context(request)
    name = request.path_params["name"]
    if request.method == "HEAD":
        found = await context.artifacts.exists(name)
        return Response(status_code=200 if found else 404)
    if request.method == "GET":
        data = await context.artifacts.get(name)
        return Response(data, media_type="application/gzip")
    data = await _read_body(request, context.settings.max_artifact_size)
    stored = await context.artifacts.put(name, data)
    return _json({"name": name, "stored": stored, "size": len(data)}, status=201 if stored else 200)


async def release(request: Request) -> Response:
    """``POST /api/v1/virtualenvironments/{name}/release``."""
    context = _context(request)
    body = await _document(request)
    ve = await context.releases.release(
        request.path_params["name"],
        body,
        wait=_int_param(request, "timeoutSeconds", None, minimum=1),
        max_wait=context.settings.max_wait,
    )
    return _json(dump(ve))


async def release_history(request: Request) -> Response:
    """``GET /api/v1/virtualenvironments/{name}/history``."""
    history = await _context(request).releases.history(request.path_params["name"])
    return _json({"virtualEnvironment": request.path_params["name"], "releases": history})


async def rollback(request: Request) -> Response:
    """``POST /api/v1/virtualenvironments/{name}/rollback``."""
    context = _context(request)
    ve = await context.releases.rollback(
        request.path_params["name"],
        wait=_int_param(request, "timeoutSeconds", None, minimum=1),
        max_wait=context.settings.max_wait,
    )
    return _json(dump(ve))


# -- errors -----------------------------------------------------------------------------


async def _on_kubefox_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, KubeFoxError)  # noqa: S101 - registered for this class only
    if type(exc) is KubeFoxError:
        log.error("api.error", path=request.url.path, error=str(exc))
    return _problem(exc, request)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for this class only
    status = exc.status_code
    cls = error_for_code(_CODES_BY_STATUS.get(status, 0))
    try:
        phrase = HTTPStatus(status).phrase.lower()
    except ValueError:
        phrase = "error"
    detail = "no such endpoint; see /openapi.json" if status == 404 else phrase
    if status == 405:
        detail = f"method {request.method} is not allowed here; see /openapi.json"
    error = cls(message=detail)
    document = problem_document(error, instance=request.url.path)
    document.update(status=status, title=phrase)
    headers = dict(exc.headers or {})
    return JSONResponse(
        document, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("api.failed", path=request.url.path, method=request.method)
    error = KubeFoxError(message="internal error: the API failed; see the platform log")
    return _problem(error, request)


# -- assembly ---------------------------------------------------------------------------


def routes() -> list[Route]:
    """Every route of the API (also what ``/openapi.json`` must describe)."""
    p = PREFIX
    return [
        Route("/openapi.json", get_openapi, methods=["GET"]),
        Route(f"{p}/healthz", get_health, methods=["GET"]),
        Route(f"{p}/status", get_status, methods=["GET"]),
        Route(f"{p}/kinds", get_kinds, methods=["GET"]),
        Route(f"{p}/watch", watch, methods=["GET"]),
        Route(f"{p}/resources/{{kind}}", list_resources, methods=["GET"]),
        Route(f"{p}/resources/{{kind}}", create_resource, methods=["POST"]),
        Route(f"{p}/resources/{{kind}}/{{name}}", get_resource, methods=["GET"]),
        Route(f"{p}/resources/{{kind}}/{{name}}", apply_resource, methods=["PUT"]),
        Route(f"{p}/resources/{{kind}}/{{name}}", delete_resource, methods=["DELETE"]),
        Route(f"{p}/appdeployments/{{name}}/wait", wait_appdeployment, methods=["POST"]),
        Route(f"{p}/artifacts/{{name}}", artifact, methods=["GET", "HEAD", "PUT"]),
        Route(f"{p}/virtualenvironments/{{name}}/release", release, methods=["POST"]),
        Route(f"{p}/virtualenvironments/{{name}}/history", release_history, methods=["GET"]),
        Route(f"{p}/virtualenvironments/{{name}}/rollback", rollback, methods=["POST"]),
        *recording_routes(p),
    ]


def create_app(
    *,
    store: ResourceStore,
    artifacts: ArtifactStore,
    view: ResourceView,
    platform: str,
    namespace: str,
    settings: ApiSettings,
    registry: RecordSource | None = None,
    scheduler: InstanceSource | None = None,
    endpoints: Endpoints | None = None,
    closing: asyncio.Event | None = None,
    telemetry: TelemetryStore | None = None,
    metrics: Callable[[], str] | None = None,
    recordings: RecordingStore | None = None,
    secrets: SecretsBackend | ResourceSecrets | None = None,
) -> Starlette:
    """The API over these stores; ``view`` must be followed (``view.run()``) by the caller.

    Args:
        store: the resource store.
        artifacts: the component artifact store.
        view: a resource view of ``namespace`` that someone runs; waits use it.
        platform: the platform's name.
        namespace: the namespace the API serves.
        settings: limits.
        registry: live instance registrations, for the status report.
        scheduler: the operator's scheduler, for the status report.
        endpoints: where the platform's parts listen, for the status report.
        closing: set it to end every open watch stream (the server does on stop).
        telemetry: the telemetry store ``/api/v1/traces`` and ``/api/v1/logs`` read.
        metrics: renders the Prometheus text ``/metrics`` answers.
        recordings: where recordings are kept; in memory if not given (no httpsrv records).
        secrets: where the secrets of Environments, VirtualEnvironments and manifests
            go; without it a resource carrying a secret value is refused.
    """
    resources = ResourceService(store, namespace=namespace, secrets=secrets)
    app = Starlette(
        routes=routes() + (telemetry_routes() if telemetry or metrics else []),
        exception_handlers={
            KubeFoxError: _on_kubefox_error,
            HTTPException: _on_http_error,
            Exception: _on_unexpected,
        },
    )
    app.state.kubefox = ApiContext(
        settings=settings,
        platform=platform,
        namespace=namespace,
        store=store,
        resources=resources,
        artifacts=ArtifactService(artifacts),
        releases=ReleaseService(resources.typed, view),
        view=view,
        registry=registry,
        scheduler=scheduler,
        endpoints=endpoints,
        closing=closing or asyncio.Event(),
    )
    app.state.kubefox_telemetry = telemetry
    app.state.kubefox_metrics = metrics
    app.state.kubefox_recordings = recordings if recordings is not None else MemoryRecordings()
    return app
