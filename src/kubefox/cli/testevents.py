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
set. The reply is printed: status, headers and body (``-o json`` for scripts).
Exit 0 for a 2xx reply, 1 otherwise.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

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
from kubefox.cli.output import emit
from kubefox.core.errors import InvalidError, UnavailableError

app = typer.Typer(
    no_args_is_help=True,
    help="Send test events.\n\nExample:\n\n    fox test send ping.yaml -o json",
)

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
    """Send ``event`` through httpsrv; the reply as ``{status, headers, body}``.

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
    return {
        "status": response.status_code,
        "headers": {k.lower(): v for k, v in response.headers.items()},
        "body": response.text,
    }


def _reply_text(reply: dict[str, Any]) -> str:
    lines = [f"status: {reply['status']}"]
    lines += [f"{name}: {value}" for name, value in reply["headers"].items()]
    return "\n".join([*lines, "", reply["body"]])


@app.command()
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
    """Send the test event FILE describes through httpsrv; print the reply (exit 1 unless 2xx)."""
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
    emit(reply, output, table=lambda: _reply_text(reply))
    if not 200 <= reply["status"] < 300:
        raise typer.Exit(1)
