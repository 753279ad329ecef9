"""The built-in ``io.kubefox.routes`` event: a generated request to every route of a context.

For the event's deployment and virtual environment, every route of every
component is resolved with the context's data, a request that matches it is
generated (:func:`kubefox.core.route_requests.sample_requests`), checked to
reach *that* route (the context's matcher, priorities included, must pick it)
and sent through httpsrv's own ASGI application, exactly as a client's request
would go: translated, routed, forwarded to a live instance, answered. The
reply is a JSON report, per route and in total.

Bounds: at most ``limit`` routes are tried (query parameter, default
:data:`DEFAULT_LIMIT`, at most :data:`MAX_LIMIT`; the rest are counted as not
tried), one at a time, each within ``timeout`` seconds (default
:data:`DEFAULT_TIMEOUT`), and all of them within the event's own time to live:
routes left when it runs out are reported as skipped.

Each generated request runs in its own task, so its log context and span do
not leak into the event that launched it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import Awaitable, Callable, Collection, Coroutine, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import structlog

from kubefox.adapters.http.translate import STRIPPED_PARAMS, request_event
from kubefox.core.errors import InvalidError, KubeFoxError, RouteInvalidError
from kubefox.core.events import VAL_HOST, Event
from kubefox.core.matcher import compile_route
from kubefox.core.route_requests import SampleRequest, UnsatisfiableRuleError, sample_requests
from kubefox.core.routes import resolve
from kubefox.router import ResolvedContext, Router

#: The routes event's type.
TYPE_ROUTES = "io.kubefox.routes"
#: Routes tried when the request does not say (``?limit=N``).
DEFAULT_LIMIT = 50
#: Most routes one event may try.
MAX_LIMIT = 500
#: Seconds each generated request may take when the request does not say (``?timeout=S``).
DEFAULT_TIMEOUT = 5.0
#: Characters of a non-2xx answer's body kept in the report.
BODY_EXCERPT = 200
#: Different requests generated per route, for when the first goes to another route.
_CANDIDATES = 4
# Below this many seconds left, a request is not worth starting.
_MIN_SECONDS = 0.05
# Headers that never reach the matcher: httpsrv takes them for the context, or as the host.
_RESERVED_HEADERS = frozenset({*STRIPPED_PARAMS, "host"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
#: An ASGI application: httpsrv's own, so generated requests take the normal path.
Asgi = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Coroutine[Any, Any, None],
]

log = structlog.get_logger(__name__)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RoutesOptions:
    """How many routes to try and how long each request may take."""

    limit: int = DEFAULT_LIMIT
    timeout: float = DEFAULT_TIMEOUT


def routes_options(scope: Scope, *, budget: float) -> RoutesOptions:
    """The options the request's query gives (``limit``, ``timeout``), checked.

    Raises:
        InvalidError: ``limit`` is not a whole number from 1 to :data:`MAX_LIMIT`,
            or ``timeout`` is not a number of seconds above 0 and at most ``budget``.
    """
    raw: bytes = scope.get("query_string", b"")
    given = dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))
    limit, timeout = DEFAULT_LIMIT, min(DEFAULT_TIMEOUT, budget)
    if "limit" in given:
        text = given["limit"]
        if not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_LIMIT):
            raise InvalidError(
                f"{TYPE_ROUTES}: limit must be a whole number from 1 to {MAX_LIMIT}, not {text!r}"
            )
        limit = int(text)
    if "timeout" in given:
        text = given["timeout"]
        try:
            timeout = float(text)
        except ValueError:
            timeout = math.nan
        if not 0 < timeout <= budget:  # also refuses nan
            raise InvalidError(
                f"{TYPE_ROUTES}: timeout must be a number of seconds above 0 and at most "
                f"{budget:g} (the event's time to live), not {text!r}"
            )
    return RoutesOptions(limit=limit, timeout=timeout)


async def routes_report(
    router: Router,
    event: Event,
    scope: Scope,
    *,
    app: Asgi,
    deadline: float,
    budget: float,
    builtin_types: Collection[str],
) -> dict[str, Any]:
    """Send a generated request to every route of the event's context; the report.

    Args:
        router: resolves the context and routes, as for any request.
        event: the routes event (its context names deployment and VE).
        scope: the ASGI scope of the request that carried it (host, server,
            query options).
        app: httpsrv's ASGI application the generated requests go through.
        deadline: the event loop time by which the report must be done.
        budget: the event's time to live in seconds (bounds ``timeout``).
        builtin_types: the types httpsrv answers itself: never generated, so
            that a generated request cannot start another report.

    Raises:
        InvalidError: the options in the query are wrong.
        NotFoundError: the deployment or virtual environment does not exist.
    """
    options = routes_options(scope, budget=budget)
    context = event.context
    resolved = router.context(context.app_deployment, context.virtual_environment)
    planned = [
        (name, route)
        for name, definition in sorted(resolved.deployment.spec.components.items())
        for route in definition.routes
    ]
    loop = asyncio.get_running_loop()
    results: list[dict[str, Any]] = []
    for name, route in planned[: options.limit]:
        entry: dict[str, Any] = {"component": name, "routeId": route.id, "rule": route.rule}
        results.append(entry)
        sample = _plan(
            resolved,
            event,
            scope,
            target=(name, route.id),
            rule=route.rule,
            builtin_types=builtin_types,
            entry=entry,
        )
        if sample is None:
            continue
        remaining = deadline - loop.time()
        if remaining < _MIN_SECONDS:
            _skip(entry, f"the event's {budget:g}s were spent before this route's turn")
            continue
        entry["request"] = sample.to_json()
        await _send(
            app, _context_scope(scope, sample, event), min(options.timeout, remaining), entry
        )
    return {
        "appDeployment": context.app_deployment,
        "virtualEnvironment": context.virtual_environment,
        "app": resolved.app,
        "status": _verdict(results),
        "summary": _summary(results, total=len(planned)),
        "problems": [problem.message for problem in resolved.problems],
        "routes": results,
    }


def _skip(entry: dict[str, Any], reason: str) -> None:
    entry["outcome"] = "skipped"
    entry["reason"] = reason


def _plan(
    resolved: ResolvedContext,
    event: Event,
    scope: Scope,
    *,
    target: tuple[str, int],
    rule: str,
    builtin_types: Collection[str],
    entry: dict[str, Any],
) -> SampleRequest | None:
    """The request to send to one route, or ``None`` with the entry marked skipped."""
    try:
        resolved_rule = resolve(rule, resolved.data.vars)
        entry["resolvedRule"] = resolved_rule
        candidates = sample_requests(
            resolved_rule,
            count=_CANDIDATES,
            host=_host(event),
            reserved_headers=_RESERVED_HEADERS,
            reserved_query=STRIPPED_PARAMS,
            reserved_types=builtin_types,
        )
    except RouteInvalidError as exc:
        _skip(entry, f"the rule cannot be resolved in this context: {exc.cause}")
        return None
    except UnsatisfiableRuleError as exc:
        _skip(entry, f"no request can be generated: {exc}")
        return None
    route = compile_route(resolved_rule, target=None)
    taken_by: list[str] = []
    for candidate in candidates:
        try:
            routed = request_event(
                _context_scope(scope, candidate, event),
                b"",
                platform="",
                source=event.source,
                ttl=1,
            )
        except InvalidError:
            continue  # not expressible as HTTP (cannot happen for generated text; be safe)
        if route.matches(routed) is None:
            continue
        match = resolved.matcher.match(routed)
        if match is None or match.route.target == target:
            return candidate
        other, other_id = match.route.target
        taken_by.append(f"route {other_id} of {other} (`{match.route.rule}`)")
    if taken_by:
        _skip(entry, f"every generated request goes to {taken_by[0]}, which ranks higher")
    else:
        _skip(entry, "no generated request matches the rule once sent over HTTP")
    return None


def sample_scope(
    outer: Scope, sample: SampleRequest, *, app_deployment: str, virtual_environment: str
) -> Scope:
    """The ASGI scope of ``sample`` sent with ``kf-dep``/``kf-ve``, as a client would send it.

    Server, client and scheme come from ``outer``, the scope of the request
    that carried the routes event.
    """
    headers: list[tuple[bytes, bytes]] = [(b"host", sample.host.encode())] if sample.host else []
    headers += [
        (b"kf-dep", app_deployment.encode()),
        (b"kf-ve", virtual_environment.encode()),
    ]
    if sample.type:
        headers.append((b"kf-type", sample.type.encode()))
    headers += [(name.lower().encode(), value.encode()) for name, value in sample.headers]
    return {
        "type": "http",
        "asgi": outer.get("asgi", {"version": "3.0"}),
        "http_version": outer.get("http_version", "1.1"),
        "method": sample.method,
        "scheme": outer.get("scheme", "http"),
        "path": sample.path,
        "raw_path": quote(sample.path, safe="/:@!$&'()*+,;=~").encode("ascii"),
        "query_string": urlencode(list(sample.query)).encode("ascii"),
        "root_path": "",
        "headers": headers,
        "server": outer.get("server"),
        "client": outer.get("client"),
    }


def _host(event: Event) -> str:
    """The host the routes event was sent to: generated requests go there too."""
    host = event.values.get(VAL_HOST)
    return host if isinstance(host, str) else ""


def _context_scope(outer: Scope, sample: SampleRequest, event: Event) -> Scope:
    context = event.context
    return sample_scope(
        outer,
        sample,
        app_deployment=context.app_deployment,
        virtual_environment=context.virtual_environment,
    )


async def _send(app: Asgi, scope: Scope, timeout: float, entry: dict[str, Any]) -> None:  # noqa: ASYNC109 - a deadline per request, not per call
    """Send one generated request through ``app``; record the answer (or why none) in ``entry``."""
    status = 0
    chunks: list[bytes] = []
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout), asyncio.TaskGroup() as group:
            group.create_task(app(scope, receive, send))
    except TimeoutError:
        entry["outcome"] = "error"
        entry["error"] = f"no answer within {timeout:g}s"
    except Exception as exc:  # noqa: BLE001 - one generated request's boundary: report, go on
        log.warning("routes_event.request_failed", path=scope["path"], error=repr(exc))
        entry["outcome"] = "error"
        entry["error"] = str(exc) if isinstance(exc, KubeFoxError) else "unexpected error"
    else:
        entry["outcome"] = "answered"
        entry["status"] = status
        if not 200 <= status < 300:
            entry["body"] = b"".join(chunks)[: BODY_EXCERPT * 4].decode(errors="replace")[
                :BODY_EXCERPT
            ]
    entry["durationMs"] = round((time.perf_counter() - started) * 1000, 2)


def _summary(results: list[dict[str, Any]], *, total: int) -> dict[str, int]:
    summary = {"routes": total, "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0, "errors": 0}
    summary["skipped"] = sum(r["outcome"] == "skipped" for r in results)
    summary["notTried"] = total - len(results)
    for result in results:
        if result["outcome"] == "error":
            summary["errors"] += 1
        elif result["outcome"] == "answered":
            summary[f"{min(max(result['status'] // 100, 2), 5)}xx"] += 1
    return summary


def _verdict(results: list[dict[str, Any]]) -> str:
    """``failed`` when a route answered 5xx or not at all; ``passed`` otherwise."""
    failed = any(
        r["outcome"] == "error" or (r["outcome"] == "answered" and r["status"] >= 500)
        for r in results
    )
    return "failed" if failed else "passed"
