"""Built-in test events: requests httpsrv answers itself, before routing, when switched on.

A request whose event type (``kf-type``/``kubefox-event-type``) is one of
:data:`BUILTIN_TYPES`, with ``kf-dep`` and ``kf-ve`` given, is answered here
when the built-in events are on for its virtual environment: for the whole
platform (``spec.events.builtin`` of the Platform resource) or for that
virtual environment alone (annotation :data:`ANNOTATION` set to ``"true"``).
When they are off the event is routed as usual (and usually finds no route).

* ``io.kubefox.health``: the context's health document: deployment, virtual
  environment, the context's problems, and per component its hash and
  whether a live instance is registered (``null`` when httpsrv cannot know).
* ``io.kubefox.echo``: the request as httpsrv received it: method, path,
  query, headers without credentials, and the body's length.
* ``io.kubefox.routes``: a generated request to every route of the context,
  each sent through httpsrv's normal path, and a report of the answers
  (:mod:`kubefox.adapters.http.routes_event`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from kubefox.adapters.http.routes_event import TYPE_ROUTES, Asgi, routes_report
from kubefox.adapters.http.translate import HttpResponse
from kubefox.core.events import TYPE_HEALTH, Event
from kubefox.resources import Platform, VirtualEnvironment
from kubefox.router import Router

#: The echo event's type.
TYPE_ECHO = "io.kubefox.echo"
#: Event types httpsrv answers itself when the built-in events are on.
BUILTIN_TYPES = frozenset({TYPE_HEALTH, TYPE_ECHO, TYPE_ROUTES})
#: The VirtualEnvironment annotation switching the built-in events on for it alone.
ANNOTATION = "kubefox.xigxog.io/builtin-events"

#: Headers never echoed: credentials and cookies.
_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token"}
)
_JSON = (b"content-type", b"application/json")

#: ``(app, component, hash)`` of every live component instance.
LiveInstances = Callable[[], Iterable[tuple[str, str, str]]]


def enabled(router: Router, platform: str, virtual_environment: str) -> bool:
    """Whether the built-in events are on for ``virtual_environment``."""
    resource = router.view.get(Platform, platform)
    if resource is not None and resource.spec.events.builtin:
        return True
    ve = router.view.get(VirtualEnvironment, virtual_environment)
    return ve is not None and ve.metadata.annotations.get(ANNOTATION, "").lower() == "true"


def wants_builtin(router: Router, platform: str, event: Event) -> bool:
    """Whether httpsrv answers ``event`` itself rather than routing it."""
    context = event.context
    return (
        event.type in BUILTIN_TYPES
        and bool(context.app_deployment and context.virtual_environment)
        and enabled(router, platform, context.virtual_environment)
    )


async def answer(
    router: Router,
    event: Event,
    scope: MutableMapping[str, Any],
    body: bytes,
    live: LiveInstances | None,
    *,
    app: Asgi,
    deadline: float,
    budget: float,
) -> HttpResponse:
    """The built-in answer to ``event`` (one of :data:`BUILTIN_TYPES`).

    ``app`` (httpsrv's own ASGI application), ``deadline`` (event loop time)
    and ``budget`` (the event's time to live, seconds) serve the routes event,
    whose generated requests go through ``app`` before ``deadline``.

    Raises:
        NotFoundError: the deployment or virtual environment does not exist.
        InvalidError: the routes event's options are wrong.
    """
    context = event.context
    if event.type == TYPE_HEALTH:
        document = health(router, context.app_deployment, context.virtual_environment, live)
    elif event.type == TYPE_ROUTES:
        document = await routes_report(
            router,
            event,
            scope,
            app=app,
            deadline=deadline,
            budget=budget,
            builtin_types=BUILTIN_TYPES,
        )
    else:
        document = echo(scope, body)
    content = json.dumps(document).encode()
    return HttpResponse(200, [_JSON, (b"content-length", str(len(content)).encode())], content)


def health(
    router: Router, deployment: str, virtual_environment: str, live: LiveInstances | None
) -> dict[str, Any]:
    """The health document of one deployment in one virtual environment."""
    resolved = router.context(deployment, virtual_environment)
    running = None if live is None else set(live())
    app = resolved.app
    components = {
        name: {
            "hash": definition.hash,
            "live": None if running is None else (app, name, definition.hash) in running,
        }
        for name, definition in sorted(resolved.deployment.spec.components.items())
    }
    healthy = not resolved.problems and all(c["live"] is not False for c in components.values())
    return {
        "status": "healthy" if healthy else "unhealthy",
        "appDeployment": deployment,
        "virtualEnvironment": virtual_environment,
        "app": app,
        "components": components,
        "problems": [problem.message for problem in resolved.problems],
    }


def echo(scope: MutableMapping[str, Any], body: bytes) -> dict[str, Any]:
    """The request as received: method, path, query, headers minus credentials, body length."""
    headers: dict[str, list[str]] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").lower()
        if name not in _SECRET_HEADERS:
            headers.setdefault(name, []).append(raw_value.decode("latin-1"))
    query: dict[str, list[str]] = {}
    raw_query: bytes = scope.get("query_string", b"")
    for key, value in parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True):
        query.setdefault(key, []).append(value)
    return {
        "method": scope.get("method", ""),
        "path": scope.get("path", ""),
        "query": query,
        "headers": headers,
        "bodyLength": len(body),
    }
