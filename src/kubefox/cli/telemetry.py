"""``fox trace`` and ``fox logs``: what happened to a request, through the platform's API.

``fox trace ID`` takes a trace id (32 hex digits) or an event id (the
``Kubefox-Event-Id`` every answer carries) and draws the trace as a waterfall
with errors highlighted; ``fox trace --last`` draws the latest request.
``fox logs`` prints log lines of every role and component, filtered by app,
component, virtual environment or trace, and ``--follow`` keeps printing new
ones until Ctrl-C.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from kubefox.cli import STARTED_AT
from kubefox.cli.client import PREFIX, ApiClient, path, verifying
from kubefox.cli.errors import reports_errors
from kubefox.cli.options import (
    DEFAULT_STATE_DIR,
    ApiOption,
    OutputFormat,
    OutputOption,
    StateDirOption,
)
from kubefox.core.errors import InvalidError, NotFoundError

#: Spans reach the store in batches, at most about a second after they end (every
#: role and component exports each half second; components post theirs over HTTP):
#: a trace younger than this may still grow, and the latest one may not be in yet.
SETTLE_SECONDS = 1.2
#: Under load roles export every two seconds (``SpanBatcher``'s busy delay): a trace
#: not found yet, or one missing spans, is looked for again until this much has passed.
BUSY_SETTLE_SECONDS = 3.0


def _trace_from_json(document: dict[str, Any]) -> Any:
    """The :class:`~kubefox.telemetry.Trace` of an API answer (for the renderer)."""
    from kubefox.telemetry.records import SpanEvent, SpanKind, SpanRecord, StatusCode, Trace

    spans = [
        SpanRecord(
            trace_id=span["trace_id"],
            span_id=span["span_id"],
            parent_span_id=span.get("parent_span_id") or "",
            name=span["name"],
            kind=SpanKind[span["kind"].upper()],
            start_ns=span["start_ns"],
            end_ns=span["end_ns"],
            status_code=StatusCode[span["status"]["code"].upper()],
            status_message=span["status"].get("message", ""),
            attributes=span.get("attributes", {}),
            resource=span.get("resource", {}),
            events=tuple(
                SpanEvent(name=e["name"], time_ns=e["time_ns"], attributes=e.get("attributes", {}))
                for e in span.get("events", [])
            ),
        )
        for span in document["spans"]
    ]
    return Trace.of(document["trace_id"], spans)


@reports_errors
def trace(
    *,
    ident: Annotated[
        str | None,
        typer.Argument(
            metavar="EVENT_ID|TRACE_ID",
            help="A trace id (32 hex digits) or the id of an event in the trace.",
            show_default=False,
        ),
    ] = None,
    last: Annotated[bool, typer.Option("--last", help="The latest request's trace.")] = False,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    api: ApiOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Show a request's path through the platform as a waterfall of spans.

    Examples:
        fox trace --last

        fox trace 2f1c0a4e-...   (the Kubefox-Event-Id of an answer)
    """
    if (ident is None) == (not last):
        raise InvalidError("give an event or trace id, or --last (not both)")
    with ApiClient.connect(api=api, state_dir=state_dir) as client:
        if last:
            document = _settled(
                lambda: client.get(f"{PREFIX}/traces", params={"last": "1"}), latest=True
            )
        else:
            document = _settled(lambda: client.get(path("traces", str(ident))), latest=False)
    if output is not OutputFormat.TABLE:
        from kubefox.cli.output import emit

        emit(document, output)
        return
    from rich.console import Console

    from kubefox.telemetry.render import render_trace

    Console().print(render_trace(_trace_from_json(document)))


def _settled(fetch: Callable[[], dict[str, Any]], *, latest: bool) -> dict[str, Any]:
    """The trace ``fetch`` returns once its spans are all stored.

    ``curl ... && fox trace --last`` runs a moment after the request ended, when
    some of its spans may still be on their way: a trace not found yet, or one
    whose newest span ended less than :data:`SETTLE_SECONDS` ago, is fetched
    again once that time has passed. One not found, or one with spans whose
    parent is not in it yet (under load a role exports every two seconds),
    is fetched again until :data:`BUSY_SETTLE_SECONDS` have passed. For the
    ``latest`` trace, the one found may be an older request's while the
    newest is not stored yet: it is fetched again unless
    :data:`SETTLE_SECONDS` have passed since ``fox`` started (so after any
    request the shell ran before it).
    """
    deadline = time.monotonic() + BUSY_SETTLE_SECONDS
    document = _found(fetch, deadline)
    newest = max((int(span["end_ns"]) for span in document.get("spans", [])), default=0)
    now = time.time()
    wait = SETTLE_SECONDS - (now - newest / 1e9)
    if latest:
        wait = max(wait, STARTED_AT + SETTLE_SECONDS - now)
    if wait > 0:
        time.sleep(wait)
        document = fetch()
    if _orphans(document) > 1 and time.monotonic() < deadline:
        from kubefox.cli.errors import stderr

        with stderr.status("waiting for the rest of the trace's spans"):
            while _orphans(document) > 1 and time.monotonic() < deadline:
                time.sleep(SETTLE_SECONDS / 2)
                document = fetch()
    return document


def _orphans(document: dict[str, Any]) -> int:
    """Spans of the trace whose parent is not in it: more than one (its root) are missing."""
    spans = document.get("spans", [])
    known = {span.get("span_id") for span in spans}
    return sum(1 for span in spans if span.get("parent_span_id") not in known)


def _found(fetch: Callable[[], dict[str, Any]], deadline: float) -> dict[str, Any]:
    """What ``fetch`` returns, fetched again while it is not found until ``deadline``."""
    while True:
        try:
            return fetch()
        except NotFoundError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(min(SETTLE_SECONDS / 2, max(0.0, deadline - time.monotonic())))


@reports_errors
def logs(
    *,
    app_name: Annotated[str | None, typer.Option("--app", help="Only this app's lines.")] = None,
    component: Annotated[
        str | None, typer.Option("--component", help="Only this component's lines.")
    ] = None,
    ve: Annotated[
        str | None, typer.Option("--ve", help="Only lines of this virtual environment.")
    ] = None,
    trace_id: Annotated[
        str | None, typer.Option("--trace", help="Only lines written in this trace.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Lines to show at most.")] = 100,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until Ctrl-C.")
    ] = False,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    api: ApiOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Print log lines of the platform and its components (newest last).

    Examples:
        fox logs --app hello-world --component backend

        fox logs --trace 4bf92f3577b34da6a3ce929d0e0e4736

        fox logs --ve qa --follow
    """
    params: dict[str, Any] = {
        "app": app_name,
        "component": component,
        "ve": ve,
        "trace": trace_id,
        "limit": limit,
    }
    with ApiClient.connect(api=api, state_dir=state_dir) as client:
        records: list[dict[str, Any]] = client.get(f"{PREFIX}/logs", params=params)
        base_url, ca_file = client.base_url, client.ca_file
    for record in records:
        _print_record(record, output)
    if follow:
        after = records[-1]["seq"] if records else None
        _follow(base_url, {**params, "follow": "1", "after": after}, output, ca_file=ca_file)


def _follow(
    base_url: str, params: dict[str, Any], output: OutputFormat, *, ca_file: Path | None
) -> None:
    """Print records as the platform stores them, until Ctrl-C or the platform stops."""
    import httpx

    query = {name: value for name, value in params.items() if value is not None}
    try:
        with (
            httpx.Client(
                base_url=base_url,
                timeout=httpx.Timeout(10.0, read=None),
                verify=verifying(ca_file),  # the platform's CA, as the client above
            ) as http,
            http.stream("GET", f"{PREFIX}/logs", params=query) as response,
        ):
            for line in response.iter_lines():
                if line.strip():
                    _print_record(json.loads(line), output)
    except KeyboardInterrupt:
        return
    except httpx.TransportError:
        return  # the platform stopped


def _print_record(record: dict[str, Any], output: OutputFormat) -> None:
    if output is not OutputFormat.TABLE:
        typer.echo(json.dumps(record, ensure_ascii=False))
        return
    from rich.console import Console

    from kubefox.telemetry.records import LogRecord
    from kubefox.telemetry.render import render_log

    Console(highlight=False).print(
        render_log(
            LogRecord(
                time_ns=record["time_ns"],
                severity_number=record.get("severity_number", 0),
                severity_text=record.get("severity") or "",
                body=record.get("body", ""),
                attributes=record.get("attributes", {}),
                resource=record.get("resource", {}),
                trace_id=record.get("trace_id") or "",
                span_id=record.get("span_id") or "",
                seq=record.get("seq", 0),
            )
        )
    )
