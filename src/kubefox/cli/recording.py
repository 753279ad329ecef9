"""``fox record`` and ``fox replay``: capture a virtual environment's traffic, send it again, diff.

``fox record start|stop|list|show`` call the recording endpoints of the API;
``fox replay`` reads a recording's exchanges from the API, sends each through
httpsrv with ``kf-dep``/``kf-ve`` naming the target, and prints what changed
(:mod:`kubefox.recording.replay` and :mod:`kubefox.recording.compare` do the
work). ``fox replay`` exits 1 when any request differs, 0 when none does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

import httpx
import typer

from kubefox.cli.client import ApiClient, path
from kubefox.cli.client import http_url as httpsrv_url
from kubefox.cli.errors import reports_errors, stderr
from kubefox.cli.options import (
    DEFAULT_STATE_DIR,
    ApiOption,
    OutputFormat,
    OutputOption,
    StateDirOption,
    duration_option,
)
from kubefox.cli.output import emit, render_table
from kubefox.recording.compare import ignore_rules
from kubefox.recording.records import RecordedResponse, exchange_from_builtins
from kubefox.recording.replay import ReplayRequest, ReplayResult, replay

app = typer.Typer(
    no_args_is_help=True,
    help="Record the requests a virtual environment serves, to replay them later.\n\n"
    "Examples:\n\n"
    "    fox record start --virtual-env qa --max-requests 100\n\n"
    "    fox record list\n\n"
    "    fox record stop qa-20250101-120000-ab12\n\n"
    "    fox replay qa-20250101-120000-ab12 --deployment hello-world-main -e qa --diff",
)

_SIZE = re.compile(r"(\d+)\s*(b|kb|kib|mb|mib|gb|gib)?", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 10**6, "mib": 1024**2, "gb": 10**9, "gib": 1024**3}


def _size(text: str | None) -> int | None:
    if text is None:
        return None
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise typer.BadParameter(f'"{text}" is not a size: use bytes or units such as 64KiB, 16MiB')
    return int(match[1]) * _UNITS[(match[2] or "b").lower()]


def _recordings_table(items: list[Mapping[str, Any]]) -> str:
    if not items:
        return "no recordings"
    return render_table(
        ["ID", "VIRTUAL-ENV", "DEPLOYMENT", "STATE", "REQUESTS", "MAX", "STARTED", "STOPPED"],
        [
            [
                r.get("id"),
                r.get("virtualEnvironment"),
                r.get("appDeployment") or "",
                r.get("state"),
                r.get("requests", 0),
                r.get("maxRequests"),
                r.get("startTime") or "",
                r.get("stopTime") or "",
            ]
            for r in items
        ],
    )


@app.command()
@reports_errors
def start(
    *,
    virtual_env: Annotated[
        str, typer.Option("--virtual-env", "-e", help="The VirtualEnvironment to record.")
    ],
    deployment: Annotated[
        str | None,
        typer.Option("--deployment", "-d", help="Only requests this AppDeployment serves."),
    ] = None,
    max_requests: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many requests (default 1000).")
    ] = None,
    max_bytes: Annotated[
        str | None, typer.Option(help="Stop after this much stored (16MiB by default).")
    ] = None,
    wait: Annotated[
        str, typer.Option(help="Wait this long for httpsrv to start recording.")
    ] = "10s",
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    api: ApiOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Start recording a virtual environment's requests and answers; print the recording's id."""
    body: dict[str, Any] = {"virtualEnvironment": virtual_env}
    if deployment:
        body["appDeployment"] = deployment
    if max_requests is not None:
        body["maxRequests"] = max_requests
    size = _size(max_bytes)
    if size is not None:
        body["maxBytes"] = size
    seconds = duration_option(wait) or 10.0
    with ApiClient.connect(api=api, state_dir=state_dir) as client:
        recording = client.request(
            "POST",
            path("recordings"),
            json_body=body,
            params={"timeoutSeconds": max(0, round(seconds))},
            timeout=seconds + 30,
        ).json()
    if not recording.get("observedBy"):
        stderr.print("[yellow]warning:[/] no httpsrv has started recording yet")
    elif output is OutputFormat.TABLE:
        stderr.print(f"[green]✓[/] recording {virtual_env}")
    emit(recording, output, table=lambda: str(recording["id"]))


@app.command()
@reports_errors
def stop(
    *,
    recording: Annotated[str, typer.Argument(help="The recording's id.")],
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    api: ApiOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Stop a recording; what it recorded is kept."""
    with ApiClient.connect(api=api, state_dir=state_dir) as client:
        stopped = client.request("POST", path("recordings", recording, "stop")).json()
    emit(stopped, output, table=lambda: _recordings_table([stopped]))


@app.command("list")
@reports_errors
def list_(
    *,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    api: ApiOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """List the recordings, oldest first."""
    with ApiClient.connect(api=api, state_dir=state_dir) as client:
        found = client.get(path("recordings"))
    emit(found, output, table=lambda: _recordings_table(found["items"]))


@app.command()
@reports_errors
def show(
    *,
    recording: Annotated[str, typer.Argument(help="The recording's id.")],
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    api: ApiOption = None,
    output: OutputOption = OutputFormat.JSON,
) -> None:
    """Print a recording's exchanges (JSON, bodies in base64)."""
    with ApiClient.connect(api=api, state_dir=state_dir) as client:
        found = client.get(path("recordings", recording, "exchanges"))
    emit(found, output)


# -- replay -------------------------------------------------------------------------------


def _sender(http: httpx.Client) -> Any:
    def send(request: ReplayRequest) -> RecordedResponse:
        built = http.build_request(
            request.method, request.target, headers=request.headers, content=request.body
        )
        try:
            response = http.send(built, stream=True)
            try:
                # Raw bytes: a compressed answer was recorded compressed.
                body = b"".join(response.iter_raw())
            finally:
                response.close()
        except httpx.HTTPError as exc:
            raise OSError(f"{type(exc).__name__}: {exc}") from exc
        return RecordedResponse(
            status=response.status_code,
            headers=[(k.lower(), v) for k, v in response.headers.multi_items()],
            body=body,
        )

    return send


def _result_json(result: ReplayResult) -> dict[str, Any]:
    request = result.exchange.request
    return {
        "index": result.index,
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "recordedStatus": result.exchange.response.status,
        "replayedStatus": result.replayed.status if result.replayed is not None else None,
        "differs": result.differs,
        "error": result.error,
        "differences": [
            {"field": d.field, "recorded": d.recorded, "replayed": d.replayed, "diff": d.diff}
            for d in result.differences
        ],
    }


def _print_result(result: ReplayResult, *, diff: bool) -> None:
    request = result.exchange.request
    target = request.path + (f"?{request.query}" if request.query else "")
    replayed = result.replayed.status if result.replayed is not None else "-"
    verdict = "differs" if result.differs else "same"
    fields = ", ".join(d.field for d in result.differences)
    line = f"[{result.index}] {request.method} {target}  {result.exchange.response.status} → "
    line += f"{replayed}  {verdict}" + (f": {fields}" if fields else "")
    typer.echo(line + (f" ({result.error})" if result.error else ""))
    if not diff:
        return
    for difference in result.differences:
        if difference.diff:
            typer.echo(difference.diff.rstrip("\n"))
        else:
            typer.echo(f"  {difference.field}: {difference.recorded!r} → {difference.replayed!r}")


@reports_errors
def replay_command(
    *,
    recording: Annotated[str, typer.Argument(help="The recording's id.")],
    deployment: Annotated[
        str, typer.Option("--deployment", "-d", help="The AppDeployment to replay against.")
    ],
    virtual_env: Annotated[
        str, typer.Option("--virtual-env", "-e", help="The VirtualEnvironment to replay in.")
    ],
    diff: Annotated[bool, typer.Option("--diff", help="Print a unified diff of bodies.")] = False,
    ignore: Annotated[
        list[str] | None,
        typer.Option(
            "--ignore",
            "-i",
            help="A field that may differ: status, body, a header name, or a JSON path "
            "into the body ($.items[*].id). Repeatable.",
        ),
    ] = None,
    builtin_ignores: Annotated[
        bool,
        typer.Option(
            "--builtin-ignores/--no-builtin-ignores",
            help="Ignore Date, Kubefox-Event-Id, the context headers, dates and ids in bodies.",
        ),
    ] = True,
    http_url: Annotated[
        str | None,
        typer.Option("--http", help="httpsrv's URL; the platform status names it otherwise."),
    ] = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    api: ApiOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Send a recording's requests again to a deployment; print what changed (exit 1 if any)."""
    try:
        rules = ignore_rules(ignore or (), builtin=builtin_ignores)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--ignore") from exc
    with ApiClient.connect(api=api, state_dir=state_dir) as client:
        found = client.get(path("recordings", recording, "exchanges"))
        base = http_url or httpsrv_url(client)
    exchanges = [exchange_from_builtins(item) for item in found["exchanges"]]
    with httpx.Client(base_url=base, timeout=60.0) as http:
        results = replay(
            exchanges,
            send=_sender(http),
            deployment=deployment,
            virtual_env=virtual_env,
            rules=rules,
        )
    differing = sum(result.differs for result in results)
    if output is OutputFormat.TABLE:
        for result in results:
            _print_result(result, diff=diff)
        stderr.print(
            f"{differing} of {len(results)} requests differ"
            if differing
            else f"[green]✓[/] {len(results)} requests, no difference"
        )
    else:
        emit(
            {
                "recording": recording,
                "deployment": deployment,
                "virtualEnvironment": virtual_env,
                "requests": len(results),
                "differing": differing,
                "results": [_result_json(result) for result in results],
            },
            output,
        )
    if not results:
        stderr.print(f"[yellow]warning:[/] recording {recording} holds no requests")
    if differing:
        raise typer.Exit(1)
