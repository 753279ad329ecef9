"""What a component declares, learnt by running it with ``--export``.

A component's routes, default handler, env vars and dependencies live in its
code (the Kit calls that build it), so the only faithful way to learn them is
to run it: ``python main.py --export`` prints upstream's ComponentDefinition as
JSON and exits 0. Upstream runs the built image with ``-export``; we run the
committed files, extracted to a temporary directory, so the definition matches
the hash exactly and nothing in the working tree (an untracked helper module, a
stale ``__pycache__``) can leak into it.

The export runs with this interpreter (``sys.executable``), whose environment
has ``kubefox`` installed, under a deadline, with stderr captured so a failure
can be shown to the user.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kubefox.core.errors import InvalidError
from kubefox.publish.hashing import SourceFile
from kubefox.publish.packaging import extract, package
from kubefox.resources import ComponentDefinition

#: How long ``main.py --export`` may take.
EXPORT_TIMEOUT = 30.0

_STDERR_LINES = 10


async def export_definition(
    component: str,
    files: Iterable[SourceFile],
    *,
    hash: str,
    timeout: float = EXPORT_TIMEOUT,  # noqa: ASYNC109 - a policy the error message names
) -> ComponentDefinition:
    """Run ``main.py --export`` over ``files`` and return the definition, with ``hash``.

    Raises:
        InvalidError: the export fails, times out, or prints no valid
            ComponentDefinition; the message names ``component`` and shows the
            last lines of its stderr.
    """
    with tempfile.TemporaryDirectory(prefix=f"kubefox-export-{component}-") as tmp:
        workdir = Path(tmp)
        await asyncio.to_thread(extract, package(files), workdir)
        stdout = await _run_export(component, workdir, limit=timeout)
    return parse_definition(component, stdout, hash=hash)


def parse_definition(
    component: str,
    stdout: bytes,
    *,
    hash: str,
) -> ComponentDefinition:
    """The ComponentDefinition printed on ``stdout``, with ``hash`` set.

    The definition is the whole output or, when the component printed
    something else first, its last non-empty line.

    Raises:
        InvalidError: no JSON object, or one that is not a valid definition.
    """
    document = _json_object(stdout)
    if document is None:
        raise InvalidError(
            f'component "{component}": main.py --export did not print a JSON object',
            component=component,
            stdout=_tail(stdout),
        )
    document["hash"] = hash
    try:
        return ComponentDefinition.model_validate(document)
    except ValidationError as exc:
        problems = [
            {"path": ".".join(str(step) for step in error["loc"]), "message": error["msg"]}
            for error in exc.errors(include_url=False)
        ]
        lines = "; ".join(f"{p['path']}: {p['message']}" for p in problems)
        raise InvalidError(
            f'component "{component}": main.py --export printed an invalid definition: {lines}',
            component=component,
            problems=problems,
        ) from exc


async def _run_export(component: str, workdir: Path, *, limit: float) -> bytes:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "main.py",
        "--export",
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(limit):
            stdout, stderr = await process.communicate()
    except TimeoutError:
        raise InvalidError(
            f'component "{component}": main.py --export did not finish within {limit:g} s',
            component=component,
        ) from None
    finally:
        if process.returncode is None:  # timed out or cancelled: leave no process behind
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    if process.returncode != 0:
        tail = _tail(stderr)
        raise InvalidError(
            f'component "{component}": main.py --export failed with exit code '
            f"{process.returncode}" + (f":\n{tail}" if tail else ""),
            component=component,
            exit_code=process.returncode,
            stderr=tail,
        )
    return stdout


def _json_object(stdout: bytes) -> dict[str, Any] | None:
    text = stdout.decode(errors="replace").strip()
    lines = [line for line in text.splitlines() if line.strip()]
    for candidate in (text, lines[-1] if lines else ""):
        try:
            document = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(document, dict):
            return document
    return None


def _tail(output: bytes) -> str:
    lines = output.decode(errors="replace").rstrip().splitlines()
    return "\n".join(lines[-_STDERR_LINES:])
