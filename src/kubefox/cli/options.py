"""Options shared by the ``fox`` commands, and the parsing of their values.

Where the platform is: ``--api URL`` if given, else the ``endpoints.json``
that a running platform writes in its state directory (``--state-dir``, or
``KUBEFOX_PLATFORM_STATE_DIR``, the variable ``fox up`` reads too, or the
per-user default below). The default is per user, not per working directory,
so ``fox up`` in one directory and ``fox publish`` in an app's directory find
the same platform.
"""

from __future__ import annotations

import enum
import re
from pathlib import Path
from typing import Annotated

import typer

from kubefox.core.errors import InvalidError

#: Where a platform keeps its state when nothing else is said.
DEFAULT_STATE_DIR = Path.home() / ".local" / "state" / "kubefox"

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class OutputFormat(enum.StrEnum):
    """How a command prints what it has to say."""

    TABLE = "table"  # for people: tables and sentences
    JSON = "json"  # for scripts: one JSON document on stdout
    YAML = "yaml"


StateDirOption = Annotated[
    Path,
    typer.Option(
        "--state-dir",
        envvar="KUBEFOX_PLATFORM_STATE_DIR",
        help="The platform's state directory (where it writes endpoints.json and its logs).",
        show_default=False,
        file_okay=False,
        resolve_path=True,
    ),
]

ApiOption = Annotated[
    str | None,
    typer.Option(
        "--api",
        envvar="KUBEFOX_API_URL",
        help="The platform API's URL; found in the state directory when not given.",
        show_default=False,
    ),
]

OutputOption = Annotated[
    OutputFormat,
    typer.Option(
        "--output",
        "-o",
        help="table (readable), json or yaml (for scripts).",
        case_sensitive=False,
    ),
]


def parse_duration(text: str) -> float:
    """Seconds in ``text``: ``90``, ``30s``, ``5m``, ``1h30m``, ``500ms``.

    Raises:
        InvalidError: ``text`` is no positive duration.
    """
    value = text.strip().lower()
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
        position = 0
        for match in _DURATION.finditer(value):
            if match.start() != position:
                break
            seconds += float(match[1]) * _UNIT_SECONDS[match[2]]
            position = match.end()
        if position != len(value) or not value:
            seconds = -1.0
    if seconds <= 0:
        raise InvalidError(
            f'"{text}" is not a duration: use seconds or units such as 30s, 5m, 1h30m',
            duration=text,
        )
    return seconds


def duration_option(value: str | None) -> float | None:
    """Typer callback turning a duration option into seconds (usage error if bad)."""
    if value is None:
        return None
    try:
        return parse_duration(value)
    except InvalidError as exc:
        raise typer.BadParameter(str(exc.cause)) from exc
