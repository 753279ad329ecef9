"""Temporary git repositories holding small apps, for the publishing tests.

Git runs with the user's global and system configuration switched off and a
fixed identity passed in the environment, so tests neither read nor touch the
developer's settings (signing, hooks, default branch ...).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

APP = "hello-world"

#: Environment that keeps git away from the developer's configuration.
ISOLATED_GIT = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.com",
}

FRONTEND: dict[str, Any] = {
    "type": "KubeFox",
    "routes": [
        {
            "id": 0,
            "rule": "Path(`/{{.Vars.subPath}}/hello`)",
            "envVarSchema": {"subPath": {"type": "String", "required": True}},
        }
    ],
    "defaultHandler": False,
    "dependencies": {"backend": {"type": "KubeFox"}},
}

BACKEND: dict[str, Any] = {
    "type": "KubeFox",
    "defaultHandler": True,
    "envVarSchema": {"who": {"type": "String", "required": True}},
}

_MAIN = """\
import json
import sys

GREETING = {greeting!r}
DEFINITION = json.loads({definition!r})

if "--export" in sys.argv:
    print(json.dumps(DEFINITION))
    sys.exit(0)
print(GREETING)
"""


def isolate_git(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every git the test (or the code under test) runs ignore the user's config."""
    for name, value in ISOLATED_GIT.items():
        monkeypatch.setenv(name, value)
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)


def main_py(definition: dict[str, Any], *, greeting: str = "Hello") -> str:
    """A component's main.py that prints ``definition`` for ``--export``, without the Kit."""
    return _MAIN.format(greeting=greeting, definition=json.dumps(definition))


class AppRepo:
    """A git working tree in a temporary directory, driven by the ``git`` command."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def init(cls, root: Path) -> AppRepo:
        """An empty repository on branch ``main``."""
        root.mkdir(parents=True, exist_ok=True)
        repo = cls(root)
        repo.git("init", "-q", "-b", "main")
        return repo

    def git(self, *args: str) -> str:
        """Run git in the repository and return its stdout; fail the test on an error."""
        result = subprocess.run(
            ["git", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", *args],
            cwd=self.root,
            env={**os.environ, **ISOLATED_GIT},
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(f"git {' '.join(args)} failed: {result.stderr}")
        return result.stdout

    def write(self, path: str, content: str | bytes, *, executable: bool = False) -> Path:
        """Write ``content`` to ``path`` (relative to the root), creating directories."""
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode()
        target.write_bytes(content)
        target.chmod(0o755 if executable else 0o644)
        return target

    def commit(self, message: str = "change") -> str:
        """Stage everything and commit; return the new commit id."""
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.head()

    def head(self) -> str:
        """The commit id HEAD points at."""
        return self.git("rev-parse", "HEAD").strip()

    def write_app(
        self,
        *,
        app_dir: str = "",
        name: str = APP,
        title: str | None = "Hello World",
        description: str | None = "A simple app",
        components: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """Write ``app.yaml`` and one ``components/<name>/main.py`` per component."""
        prefix = f"{app_dir}/" if app_dir else ""
        lines = [f"name: {name}"]
        if title is not None:
            lines.append(f"title: {title}")
        if description is not None:
            lines.append(f"description: {description}")
        self.write(f"{prefix}app.yaml", "\n".join(lines) + "\n")
        chosen = {"frontend": FRONTEND, "backend": BACKEND} if components is None else components
        for component, definition in chosen.items():
            self.write(f"{prefix}components/{component}/main.py", main_py(definition))


def hello_world_repo(root: Path) -> AppRepo:
    """A repository with the hello-world app (frontend and backend) committed on main."""
    repo = AppRepo.init(root)
    repo.write_app()
    repo.write(".gitignore", "__pycache__/\n*.log\n")
    repo.commit("hello world")
    return repo
