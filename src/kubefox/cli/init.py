"""``fox init``: a new hello-world app in a directory, as a git repository with a first commit.

The template is ``examples/hello-world`` of the kubefox repository, its one
source: the wheel carries a copy under ``kubefox/cli/templates/hello-world``
(hatch ``force-include``), read with :mod:`importlib.resources`; an editable
install reads the repository's directory. Existing files are never
overwritten: if any file of the template exists, nothing is written.
"""

from __future__ import annotations

import shutil
import subprocess
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath
from typing import Annotated

import typer

import kubefox
from kubefox.cli.errors import reports_errors, stderr
from kubefox.core.errors import ConflictError, InvalidError

TEMPLATE = "hello-world"
FIRST_COMMIT = "And so it begins..."

_SKIPPED_DIRS = {"__pycache__", ".git", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
_SKIPPED_SUFFIXES = (".pyc", ".pyo")
_SHOWN = 5
_FALLBACK_IDENTITY = ["-c", "user.name=KubeFox", "-c", "user.email=fox@localhost"]


def template_root() -> Traversable:
    """The template's directory: inside the installed package, else the repository's."""
    packaged = resources.files("kubefox.cli").joinpath("templates", TEMPLATE)
    if packaged.is_dir():
        return packaged
    repository = Path(kubefox.__file__).resolve().parents[2] / "examples" / TEMPLATE
    if repository.is_dir():
        return repository
    raise InvalidError(  # pragma: no cover - a broken installation
        "the hello-world template is missing from this installation; reinstall kubefox"
    )


def template_files(root: Traversable | None = None) -> dict[str, bytes]:
    """Every file of the template by relative POSIX path (caches and bytecode left out)."""
    found: dict[str, bytes] = {}

    def walk(node: Traversable, prefix: PurePosixPath) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.is_dir():
                if child.name not in _SKIPPED_DIRS:
                    walk(child, prefix / child.name)
            elif not child.name.endswith(_SKIPPED_SUFFIXES):
                found[str(prefix / child.name)] = child.read_bytes()

    walk(root or template_root(), PurePosixPath())
    return found


def _git(directory: Path, *args: str, identity: bool = False) -> subprocess.CompletedProcess[str]:
    git = shutil.which("git")
    if git is None:
        raise InvalidError("git is not installed: fox init makes the app a git repository")
    command = [git, *(_FALLBACK_IDENTITY if identity else []), "-C", str(directory), *args]
    return subprocess.run(  # noqa: S603 - git by absolute path, arguments as a list
        command, capture_output=True, text=True, check=False
    )


def init_app(directory: Path) -> list[str]:
    """Write the hello-world app into ``directory`` and commit it; return the files written.

    Raises:
        ConflictError: a file of the template exists in ``directory`` already.
        InvalidError: git is missing or fails.
    """
    files = template_files()
    directory.mkdir(parents=True, exist_ok=True)
    existing = sorted(name for name in files if (directory / name).exists())
    if existing:
        shown = ", ".join(existing[:_SHOWN]) + (" ..." if len(existing) > _SHOWN else "")
        raise ConflictError(
            message=f"{directory} already has {len(existing)} of the app's files ({shown}); "
            "fox init never overwrites: run it in an empty directory",
            paths=existing,
        )
    inside = _git(directory, "rev-parse", "--show-toplevel")
    if inside.returncode != 0:
        created = _git(directory, "init", "-q", "-b", "main")
        if created.returncode != 0:
            raise InvalidError(f"git init failed: {created.stderr.strip()}")
    for name, content in files.items():
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    commit(directory, FIRST_COMMIT, list(files))
    return list(files)


def commit(directory: Path, message: str, paths: list[str] | None = None) -> None:
    """Stage ``paths`` (default: every change) and commit them.

    A user without a git identity gets a neutral one for this commit only.

    Raises:
        InvalidError: git is missing or fails.
    """
    added = _git(directory, "add", "--", *(paths or ["."]))
    if added.returncode != 0:
        raise InvalidError(f"git add failed: {added.stderr.strip()}")
    has_identity = _git(directory, "config", "user.email").returncode == 0
    committed = _git(
        directory, "commit", "-q", "-m", message, "--", *(paths or ["."]), identity=not has_identity
    )
    if committed.returncode != 0:
        raise InvalidError(f"git commit failed: {committed.stderr.strip()}")


@reports_errors
def init(
    *,
    directory: Annotated[
        Path, typer.Argument(help="Where to create the app (default: here).", file_okay=False)
    ] = Path(),
) -> None:
    """Create the hello-world app (two components, app.yaml, hack/environments) as a git repo.

    Examples:
        mkdir kubefox-quickstart && cd kubefox-quickstart && fox init

        fox init my-app
    """
    target = directory.resolve()
    written = init_app(target)
    stderr.print(f"[green]✓[/] created the hello-world app in {target} ({len(written)} files)")
    stderr.print("  committed: " + FIRST_COMMIT)
    stderr.print("Next: fox apply -f hack/environments/ && fox publish --wait 5m")
