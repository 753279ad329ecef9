"""kubefox.testing without a platform: app copies, the context client, the event-loop guard."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

import kubefox.testing
from kubefox.core.errors import InvalidError
from kubefox.platform import EmbeddedPlatform
from kubefox.testing import AppPublisher, HttpClient, ResourceApplier, copy_app, find_app
from kubefox.testing._apps import published_in_place

PUBLIC = [
    "AppPublisher",
    "ContextClient",
    "EventSender",
    "HttpClient",
    "PublishResult",
    "ResourceApplier",
    "copy_app",
    "find_app",
]


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=T", "-c", "user.email=t@t.invalid", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def _app(root: Path) -> Path:
    (root / "components" / "web").mkdir(parents=True)
    (root / "app.yaml").write_text("name: shop\n")
    (root / "components" / "web" / "main.py").write_text("print('web')\n")
    return root


def _committed_files(repo: Path) -> list[str]:
    return sorted(_git(repo, "ls-files").split())


def test_find_app_is_the_nearest_directory_with_app_yaml(tmp_path: Path) -> None:
    """The app is the path itself or the closest directory above it holding app.yaml."""
    app = _app(tmp_path / "shop")

    assert find_app(app) == app.resolve()
    assert find_app(app / "components" / "web") == app.resolve()


def test_find_app_without_app_yaml_is_invalid(tmp_path: Path) -> None:
    """A path with no app.yaml in or above it is refused."""
    with pytest.raises(InvalidError, match=r"no app\.yaml in"):
        find_app(tmp_path)


def test_copy_app_outside_git_commits_everything_but_caches(tmp_path: Path) -> None:
    """A plain directory is copied whole, minus caches, into a new repository on main."""
    app = _app(tmp_path / "shop")
    (app / "components" / "web" / "__pycache__").mkdir()
    (app / "components" / "web" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"x")
    (app / ".mypy_cache").mkdir()
    (app / ".mypy_cache" / "x.json").write_text("{}")

    copy = copy_app(app, tmp_path / "copy" / "shop")

    assert _committed_files(copy) == ["app.yaml", "components/web/main.py"]
    assert _git(copy, "branch", "--show-current").strip() == "main"
    assert _git(copy, "status", "--porcelain") == ""


def test_copy_app_in_a_repository_takes_what_git_would_commit(tmp_path: Path) -> None:
    """Inside a repository: tracked and untracked files, never ignored or deleted ones."""
    repo = tmp_path / "monorepo"
    app = _app(repo / "apps" / "shop")
    (repo / ".gitignore").write_text("*.log\n")
    (app / "components" / "web" / "gone.py").write_text("")
    _git(repo, "init", "-q", "-b", "trunk")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "start")
    (app / "components" / "web" / "gone.py").unlink()
    (app / "components" / "web" / "new.py").write_text("")
    (app / "components" / "web" / "debug.log").write_text("")
    (repo / "elsewhere.txt").write_text("")

    copy = copy_app(app, tmp_path / "copy" / "shop")

    assert _committed_files(copy) == [
        "app.yaml",
        "components/web/main.py",
        "components/web/new.py",
    ]


def test_only_a_clean_work_tree_is_published_in_place(tmp_path: Path) -> None:
    """A clean repository is published where it is; a dirty one or no repository is copied."""
    app = _app(tmp_path / "shop")
    outside_git = published_in_place(app)
    _git(app, "init", "-q")
    _git(app, "add", "-A")
    _git(app, "commit", "-q", "-m", "start")
    clean = published_in_place(app)
    (app / "components" / "web" / "main.py").write_text("print('changed')\n")
    dirty = published_in_place(app)

    assert (outside_git, clean, dirty) == (False, True, False)


async def test_context_client_names_the_context_and_given_headers_win() -> None:
    """Requests through with_context carry kf-dep and kf-ve; headers passed in replace them."""
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="ok")

    async with HttpClient(
        base_url="http://httpsrv", transport=httpx.MockTransport(record)
    ) as client:
        qa = client.with_context("hello-world-main", "qa")
        await qa.get("/qa/hello", params={"x": "1"}, headers={"accept": "text/html"})
        await qa.post("/qa/hello", headers={"kf-ve": "prod"}, content=b"body")

    first, second = seen
    assert str(first.url) == "http://httpsrv/qa/hello?x=1"
    assert (first.headers["kf-dep"], first.headers["kf-ve"]) == ("hello-world-main", "qa")
    assert first.headers["accept"] == "text/html"
    assert (second.method, second.headers["kf-ve"], second.content) == ("POST", "prod", b"body")


async def _made_in_a_loop_of_its_own(tmp_path: Path) -> tuple[AppPublisher, ResourceApplier]:
    platform = cast("EmbeddedPlatform", object())  # never reached: the guard refuses first
    return AppPublisher(platform, work_dir=tmp_path), ResourceApplier(platform)


async def test_helpers_refuse_to_run_in_another_event_loop(tmp_path: Path) -> None:
    """Called from another loop than the platform's, they fail at once with the fix."""
    publisher, applier = await asyncio.to_thread(asyncio.run, _made_in_a_loop_of_its_own(tmp_path))
    calls: list[Any] = [publisher(tmp_path), applier(tmp_path)]

    for call in calls:
        with pytest.raises(RuntimeError, match=r'loop_scope="session"'):
            await call


def test_exported_names_are_pinned() -> None:
    """``kubefox.testing.__all__`` is exactly the pinned list, and every name exists."""
    assert kubefox.testing.__all__ == PUBLIC
    for name in PUBLIC:
        assert getattr(kubefox.testing, name) is not None
