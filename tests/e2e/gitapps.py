"""Copy an example app into a fresh git repository, as a user's checkout would be."""

from __future__ import annotations

import subprocess
from pathlib import Path

from kubefox.testing import copy_app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TEST_APPS = Path(__file__).resolve().parent / "apps"

_GIT_IDENTITY = ["-c", "user.name=KubeFox Test", "-c", "user.email=test@kubefox.invalid"]


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` with a throwaway identity; return its output."""
    done = subprocess.run(
        ["git", *_GIT_IDENTITY, "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def app_repo(source: Path, dest: Path) -> Path:
    """A git repository at ``dest`` holding a copy of the app at ``source``, committed on main."""
    return copy_app(source, dest)


def commit_all(repo: Path, message: str) -> None:
    """Stage and commit everything in ``repo``."""
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
