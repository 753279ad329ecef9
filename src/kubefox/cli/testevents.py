"""``fox test send FILE.yaml``: send one test event through httpsrv and print the reply.

The file names the event and its context::

    type: io.kubefox.health            # or an app's own type, e.g. com.example.ping
    deployment: hello-world-main
    virtualEnvironment: qa
    method: GET                        # optional, GET by default
    path: /                            # optional
    headers: {x-trace: "1"}            # optional, string values
    query: {name: World}               # optional, string values
    body: "text"                       # optional, sent as UTF-8

The request goes to httpsrv (its URL from the platform status, as ``fox
replay`` finds it, or ``--http``) with ``kf-type``, ``kf-dep`` and ``kf-ve``
set. The reply is printed: status, headers and body (``-o json`` for scripts;
a JSON body is also given parsed, as ``json``). The report of the built-in
``io.kubefox.routes`` event is printed as a table, one line per route.
Exit 0 for a 2xx reply, 1 otherwise, and 1 for a routes report that failed
(a route answered 5xx or not at all).
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Annotated, Any, TypeGuard

import httpx
import typer
import yaml

from kubefox.cli.client import ApiClient
from kubefox.cli.client import http_url as httpsrv_url
from kubefox.cli.errors import reports_errors
from kubefox.cli.options import (
    DEFAULT_STATE_DIR,
    ApiOption,
    OutputFormat,
    OutputOption,
    StateDirOption,
)
from kubefox.cli.output import emit, render_table
from kubefox.core.errors import InvalidError, UnavailableError

app = typer.Typer(
    no_args_is_help=True,
    help="Send test events.\n\nExample:\n\n    fox test send ping.yaml -o json",
)

#: The built-in event whose reply is a per-route report.
TYPE_ROUTES = "io.kubefox.routes"
#: Event types httpsrv answers itself when the built-in events are on (kubefox.adapters.http).
BUILTIN_TYPES = frozenset({"io.kubefox.health", "io.kubefox.echo", TYPE_ROUTES})

_SEND_HELP = """Send the test event FILE describes through httpsrv; print the reply.

FILE is YAML: type, deployment and virtualEnvironment are required; method,
path, headers, query and body are optional. For example:

\b
    type: io.kubefox.routes
    deployment: hello-world-main
    virtualEnvironment: qa
    query: {limit: "50", timeout: "5"}

\b
Built-in events (answered by httpsrv itself once switched on, for every
virtual environment by the Platform resource's spec.events.builtin: true,
or for one by its annotation kubefox.xigxog.io/builtin-events: "true"):
  io.kubefox.health   the components of the deployment and whether each runs
  io.kubefox.echo     the request as httpsrv received it, credentials removed
  io.kubefox.routes   a generated request to every route of the deployment,
                      sent through normal routing; a report per route
                      (status, time) or why it was skipped. Query options:
                      limit (routes tried, default 50, at most 500) and
                      timeout (seconds per request, default 5)

Any other type is an app's own event, routed as usual.

Exit 1 unless the reply is 2xx, and for a routes report that failed (a route
answered 5xx or not at all)."""

_REQUIRED = ("type", "deployment", "virtualEnvironment")
_OPTIONAL = ("method", "path", "headers", "query", "body")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TestEvent:
    """One test event as a YAML file describes it."""

    __test__ = False  # not a pytest class

    type: str
    deployment: str
    virtual_environment: str
    method: str = "GET"
    path: str = "/"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    query: dict[str, str] = dataclasses.field(default_factory=dict)
    body: str = ""


def _strings(source: str, key: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str | int | float | bool) for k, v in value.items()
    ):
        raise InvalidError(f"{source}: {key} must be a mapping of names to strings")
    return {k: str(v) for k, v in value.items()}


def parse_test_event(text: str, *, source: str = "<input>") -> TestEvent:
    """The test event ``text`` (YAML) describes.

    Raises:
        InvalidError: the text is not YAML, not a mapping, lacks a required
            field, has an unknown one, or a field has the wrong type.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidError(f"{source}: must be a mapping with {', '.join(_REQUIRED)}")
    unknown = sorted(str(k) for k in data if k not in _REQUIRED + _OPTIONAL)
    if unknown:
        raise InvalidError(
            f"{source}: unknown field(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(_REQUIRED + _OPTIONAL)}"
        )
    missing = [k for k in _REQUIRED if not data.get(k)]
    if missing:
        raise InvalidError(f"{source}: missing required field(s) {', '.join(missing)}")
    for key in (*_REQUIRED, "method", "path", "body"):
        if key in data and not isinstance(data[key], str):
            raise InvalidError(f"{source}: {key} must be a string")
    path = data.get("path", "/")
    if not path.startswith("/"):
        raise InvalidError(f"{source}: path must start with /")
    return TestEvent(
        type=data["type"],
        deployment=data["deployment"],
        virtual_environment=data["virtualEnvironment"],
        method=data.get("method", "GET").upper(),
        path=path,
        headers=_strings(source, "headers", data.get("headers") or {}),
        query=_strings(source, "query", data.get("query") or {}),
        body=data.get("body", ""),
    )


def send_event(http: httpx.Client, event: TestEvent) -> dict[str, Any]:
    """Send ``event`` through httpsrv; the reply as ``{status, headers, body[, json]}``.

    ``json`` is the body parsed, when the reply says it is JSON and it is.

    Raises:
        UnavailableError: httpsrv cannot be reached.
    """
    params = {
        **event.query,
        "kf-type": event.type,
        "kf-dep": event.deployment,
        "kf-ve": event.virtual_environment,
    }
    try:
        response = http.request(
            event.method,
            event.path,
            params=params,
            headers=event.headers,
            content=event.body.encode() if event.body else None,
        )
    except httpx.HTTPError as exc:
        raise UnavailableError(f"httpsrv cannot be reached: {exc}") from exc
    reply: dict[str, Any] = {
        "status": response.status_code,
        "headers": {k.lower(): v for k, v in response.headers.items()},
        "body": response.text,
    }
    if response.headers.get("content-type", "").startswith("application/json"):
        with contextlib.suppress(ValueError):
            reply["json"] = response.json()
    return reply


def _reply_text(reply: dict[str, Any], *, event_type: str = "") -> str:
    lines = [f"status: {reply['status']}"]
    lines += [f"{name}: {value}" for name, value in reply["headers"].items()]
    report = reply.get("json")
    if event_type == TYPE_ROUTES and _is_routes_report(report):
        return "\n".join([*lines, "", routes_text(report)])
    return "\n".join([*lines, "", reply["body"]])


def _is_routes_report(document: Any) -> TypeGuard[dict[str, Any]]:
    return (
        isinstance(document, dict)
        and isinstance(document.get("routes"), list)
        and isinstance(document.get("summary"), dict)
    )


def _note(route: dict[str, Any]) -> str:
    if route.get("outcome") == "skipped":
        return f"skipped: {route.get('reason', '')}"
    if route.get("outcome") == "error":
        return f"error: {route.get('error', '')}"
    body = str(route.get("body", ""))
    return body.splitlines()[0] if body else ""


def _request_text(route: dict[str, Any]) -> str:
    request = route.get("request")
    if not isinstance(request, dict):
        return "-"
    text = f"{request.get('method', '')} {request.get('path', '')}"
    query = request.get("query")
    if isinstance(query, dict) and query:
        text += "?" + "&".join(f"{k}={v}" for k, values in query.items() for v in values)
    return text


def routes_text(report: dict[str, Any]) -> str:
    """A routes report for people: a headline, one line per route, then the totals."""
    rows = [
        (
            route.get("component", ""),
            route.get("routeId", ""),
            route.get("resolvedRule", route.get("rule", "")),
            _request_text(route),
            route.get("status", "-"),
            f"{route['durationMs']:g}ms" if "durationMs" in route else "-",
            _note(route),
        )
        for route in report["routes"]
    ]
    summary = report["summary"]
    totals = ", ".join(
        f"{summary.get(key, 0)} {label}"
        for key, label in (
            ("2xx", "2xx"),
            ("3xx", "3xx"),
            ("4xx", "4xx"),
            ("5xx", "5xx"),
            ("errors", "errors"),
            ("skipped", "skipped"),
            ("notTried", "not tried"),
        )
    )
    headline = (
        f"{TYPE_ROUTES}: {report.get('appDeployment', '')} in "
        f"{report.get('virtualEnvironment', '')}: {report.get('status', '')}"
    )
    table = render_table(("COMPONENT", "ROUTE", "RULE", "REQUEST", "STATUS", "TIME", "NOTE"), rows)
    return "\n".join([headline, "", table, "", f"{summary.get('routes', 0)} routes: {totals}"])


def failed(event: TestEvent, reply: dict[str, Any]) -> bool:
    """Whether ``fox test send`` exits 1: not a 2xx, or a routes report that failed."""
    if not 200 <= reply["status"] < 300:
        return True
    report = reply.get("json")
    return (
        event.type == TYPE_ROUTES and _is_routes_report(report) and report.get("status") == "failed"
    )


@app.command(help=_SEND_HELP)
@reports_errors
def send(
    *,
    file: Annotated[Path, typer.Argument(help="The YAML file describing the event.")],
    http_url: Annotated[
        str | None,
        typer.Option("--http", help="httpsrv's URL; the platform status names it otherwise."),
    ] = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    api: ApiOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Send the test event FILE describes through httpsrv; print the reply."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidError(f"{file}: cannot be read: {exc.strerror or exc}") from exc
    event = parse_test_event(text, source=str(file))
    base = http_url
    if base is None:
        with ApiClient.connect(api=api, state_dir=state_dir) as client:
            base = httpsrv_url(client)
    with httpx.Client(base_url=base, timeout=60.0) as http:
        reply = send_event(http, event)
    emit(reply, output, table=lambda: _reply_text(reply, event_type=event.type))
    if event.type in BUILTIN_TYPES and reply["status"] == 404:
        typer.echo(builtins_off_hint(event), err=True)
    if failed(event, reply):
        raise typer.Exit(1)


def builtins_off_hint(event: TestEvent) -> str:
    """What to do when a built-in event was routed like any other (they were off)."""
    return (
        f"{event.type} is a built-in event: httpsrv answers it only when the built-in events "
        f"are on for virtual environment {event.virtual_environment!r}. Switch them on for it "
        'with the annotation kubefox.xigxog.io/builtin-events: "true" on its VirtualEnvironment '
        "(fox apply), or for every virtual environment with spec.events.builtin: true on the "
        "Platform resource."
    )
