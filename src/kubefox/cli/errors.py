"""How ``fox`` ends: exit codes scripts can trust, and errors people can act on.

=====  ===========================================================
code   meaning
=====  ===========================================================
0      done
1      the request was refused or failed (invalid input, a failed step)
2      usage error (unknown option, bad value), printed by the parser
3      the platform is not running or cannot be reached
4      something named does not exist
5      conflict: exists already, immutable, protected, already running
6      a wait ran out of time
130    interrupted (Ctrl-C)
=====  ===========================================================

Every command body runs under :func:`reports_errors`, so a ``KubeFoxError``
becomes a red ``error:`` line (plus one line per cause, with its JSON path)
and its exit code, never a traceback.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from kubefox.core.errors import (
    ConflictError,
    DeadlineExceededError,
    KubeFoxError,
    NotFoundError,
    PortUnavailableError,
    UnavailableError,
)

P = ParamSpec("P")
T = TypeVar("T")

#: Where people read: progress, errors and hints go to stderr, data to stdout.
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


class ExitCode(enum.IntEnum):
    """The exit codes of ``fox`` (see the module docstring)."""

    OK = 0
    ERROR = 1
    USAGE = 2
    UNAVAILABLE = 3
    NOT_FOUND = 4
    CONFLICT = 5
    TIMEOUT = 6
    INTERRUPTED = 130


def exit_code_for(error: KubeFoxError) -> ExitCode:
    """The exit code that reports ``error``."""
    if isinstance(error, UnavailableError | ConnectionError):
        return ExitCode.UNAVAILABLE
    if isinstance(error, NotFoundError):
        return ExitCode.NOT_FOUND
    if isinstance(error, ConflictError | PortUnavailableError):
        return ExitCode.CONFLICT
    if isinstance(error, DeadlineExceededError):
        return ExitCode.TIMEOUT
    return ExitCode.ERROR


def cause_lines(details: Mapping[str, Any]) -> list[str]:
    """One line per cause an error carries: ``<where>: <path>: <message>``."""
    lines: list[str] = []
    for key in ("errors", "problems"):
        records = details.get(key)
        if not isinstance(records, list):
            continue
        for record in records:
            if not isinstance(record, Mapping) or "message" not in record:
                continue
            where = [str(record[k]) for k in ("source", "resource") if record.get(k)]
            if "document" in record:
                where.append(f"document {record['document']}")
            path = record.get("path")
            text = f"{path}: {record['message']}" if path else str(record["message"])
            lines.append(f"{', '.join(where)}: {text}" if where else text)
        if lines:
            break
    return lines


def report(error: KubeFoxError) -> ExitCode:
    """Print ``error`` for a person and return its exit code."""
    from kubefox.api.problems import error_text  # only on the error path: it is not light

    text = error_text(error)
    lines = cause_lines(error.details)
    # The loader already lists its problems in the message; don't print them twice.
    if lines and all(line.split(": ")[-1] in text for line in lines):
        lines = []
    stderr.print(f"[red]error:[/] {escape(text)}")
    for line in lines:
        stderr.print(f"  {escape(line)}")
    paths = error.details.get("paths")
    if isinstance(paths, list) and paths:
        for path in paths:
            stderr.print(f"  {escape(str(path))}")
    return exit_code_for(error)


def fail(message: str, code: ExitCode = ExitCode.ERROR) -> typer.Exit:
    """Print ``message`` as an error; return the ``typer.Exit`` to raise."""
    stderr.print(f"[red]error:[/] {escape(message)}")
    return typer.Exit(int(code))


def reports_errors(command: Callable[P, T]) -> Callable[P, T]:
    """Run ``command`` so that kubefox errors and Ctrl-C end it cleanly with their exit code."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return command(*args, **kwargs)
        except KubeFoxError as exc:
            raise typer.Exit(int(report(exc))) from None
        except KeyboardInterrupt:
            stderr.print("interrupted")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None

    return run
