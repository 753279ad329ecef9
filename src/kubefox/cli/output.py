"""Printing what ``fox`` has to say: data on stdout as a table, JSON or YAML.

Tables are plain text in kubectl's style (upper-case headers, columns two
spaces apart, no borders), whatever the terminal, so they can be read by
people and cut by ``awk`` alike. The columns of each kind are upstream's
printer columns (§1.1), read from the JSON the API answers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import typer
import yaml

from kubefox.cli.options import OutputFormat

Row = Sequence[object]


def emit(data: Any, output: OutputFormat, *, table: Callable[[], str] | None = None) -> None:
    """Print ``data`` as JSON or YAML, or ``table()`` for people."""
    if output is OutputFormat.JSON or (output is OutputFormat.TABLE and table is None):
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
    elif output is OutputFormat.YAML:
        typer.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip("\n"))
    else:
        assert table is not None  # noqa: S101 - the first branch takes table=None
        text = table()
        if text:
            typer.echo(text)


def render_table(headers: Sequence[str], rows: Sequence[Row]) -> str:
    """Columns padded to their widest cell, separated by three spaces."""
    cells = [[str(h) for h in headers], *[["" if c is None else str(c) for c in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def age(timestamp: object, *, now: datetime | None = None) -> str:
    """``42s``, ``7m``, ``3h``, ``12d`` since ``timestamp`` (ISO 8601); ``<unknown>`` if none."""
    if not isinstance(timestamp, str):
        return "<unknown>"
    try:
        then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "<unknown>"
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    seconds = max(0, int(((now or datetime.now(UTC)) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _get(obj: Mapping[str, Any], *path: str) -> Any:
    value: Any = obj
    for step in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(step)
    return value


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    for condition in _get(obj, "status", "conditions") or []:
        if isinstance(condition, Mapping) and condition.get("type") == kind:
            return condition
    return {}


def _columns() -> dict[str, tuple[tuple[str, Callable[[Mapping[str, Any]], object]], ...]]:
    def name(o: Mapping[str, Any]) -> object:
        return _get(o, "metadata", "name")

    def created(o: Mapping[str, Any]) -> object:
        return age(_get(o, "metadata", "creationTimestamp"))

    def cond(kind: str, part: str) -> Callable[[Mapping[str, Any]], object]:
        return lambda o: _condition(o, kind).get(part, "")

    return {
        "AppDeployment": (
            ("NAME", name),
            ("APP", lambda o: _get(o, "spec", "appName")),
            ("VERSION", lambda o: _get(o, "spec", "version") or ""),
            ("AVAILABLE", cond("Available", "status")),
            ("REASON", cond("Available", "reason")),
            ("PROGRESSING", cond("Progressing", "status")),
            ("AGE", created),
        ),
        "Environment": (
            ("NAME", name),
            ("POLICY", lambda o: _get(o, "spec", "releasePolicy", "type") or "Stable"),
            ("AGE", created),
        ),
        "HTTPAdapter": (
            ("NAME", name),
            ("URL", lambda o: _get(o, "spec", "url")),
            ("INSECURE", lambda o: str(bool(_get(o, "spec", "insecureSkipVerify"))).lower()),
            ("AGE", created),
        ),
        "Platform": (
            ("NAME", name),
            ("AVAILABLE", cond("Available", "status")),
            ("EVENT TIMEOUT", lambda o: _get(o, "spec", "events", "timeoutSeconds") or 30),
            ("EVENT MAX", lambda o: _get(o, "spec", "events", "maxSize") or 5242880),
            ("LOG LEVEL", lambda o: _get(o, "spec", "telemetry", "logs", "level") or "info"),
            ("AGE", created),
        ),
        "ReleaseManifest": (
            ("NAME", name),
            ("RELEASE ID", lambda o: _get(o, "spec", "releaseId")),
            ("ENVIRONMENT", lambda o: _get(o, "spec", "environment", "metadata", "name")),
            (
                "VIRTUALENVIRONMENT",
                lambda o: _get(o, "spec", "virtualEnvironment", "metadata", "name"),
            ),
            ("AGE", created),
        ),
        "VirtualEnvironment": (
            ("NAME", name),
            ("ENVIRONMENT", lambda o: _get(o, "spec", "environment")),
            ("MANIFEST", lambda o: _get(o, "status", "activeRelease", "releaseManifest") or ""),
            ("AVAILABLE", cond("ActiveReleaseAvailable", "status")),
            ("REASON", cond("ActiveReleaseAvailable", "reason")),
            ("PENDING", cond("ReleasePending", "status")),
            ("PENDING REASON", cond("ReleasePending", "reason")),
            ("AGE", created),
        ),
    }


COLUMNS = _columns()


def resource_table(kind: str, items: Sequence[Mapping[str, Any]]) -> str:
    """The ``get`` table (kubectl's style) of ``items``, all of ``kind``."""
    columns = COLUMNS.get(kind, (("NAME", lambda o: _get(o, "metadata", "name")),))
    return render_table(
        [header for header, _ in columns], [[cell(item) for _, cell in columns] for item in items]
    )
