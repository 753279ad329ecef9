"""Put an app on a running platform for a test: publish it from a path, apply resource files.

Publishing reads a git commit (``fox publish`` refuses uncommitted changes),
while a test wants to run what is on disk, edits included. So an app in a
clean git work tree is published where it is, exactly as ``fox publish``
would; anything else (a dirty tree, no repository at all) is first copied
into a fresh repository with one commit on ``main``. The copy takes the files
git would commit (tracked or untracked, never ignored) when the app is in a
repository, and every file but caches otherwise.

Both helpers return only once httpsrv and the brokers route with what they
wrote, so the next request of the test sees it. Like the platform, they
belong to the event loop they were made in (pytest-asyncio's session loop):
a call from another loop would hang on the platform's connections, so it
fails at once instead, saying how to fix the test.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import subprocess
from pathlib import Path

from kubefox.core.errors import InvalidError
from kubefox.platform import EmbeddedPlatform
from kubefox.publish import GitRepo, PublishResult
from kubefox.resources import Resource

#: The file that marks an app's directory.
APP_FILE = "app.yaml"

# A throwaway identity, and none of the user's signing or hooks: the copy is ours.
_GIT_OPTIONS = (
    "-c",
    "user.name=KubeFox Test",
    "-c",
    "user.email=test@kubefox.invalid",
    "-c",
    "commit.gpgsign=false",
    "-c",
    f"core.hooksPath={os.devnull}",
)
_CACHES = shutil.ignore_patterns(
    ".git", "__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".venv"
)


def find_app(path: Path) -> Path:
    """The directory holding ``app.yaml``: ``path`` itself or the nearest one above it.

    Raises:
        InvalidError: there is none.
    """
    start = path.resolve()
    for directory in (start, *start.parents):
        if (directory / APP_FILE).is_file():
            return directory
    raise InvalidError(f"no {APP_FILE} in {path} or above it", path=str(path))


def published_in_place(app: Path) -> bool:
    """Whether ``app`` is in a git work tree with nothing uncommitted, so publishing can read it."""
    try:
        return not GitRepo.find(app).is_dirty()
    except InvalidError:  # not in a repository (or no git at all: copying will say so)
        return False


def copy_app(app: Path, dest: Path) -> Path:
    """A new git repository at ``dest`` holding what is on disk of ``app``, committed on ``main``.

    Raises:
        InvalidError: git is not installed or fails.
    """
    git = shutil.which("git")
    if git is None:
        raise InvalidError("git is not installed: publishing reads the app from git")
    files = _files_git_would_commit(app)
    if files is None:
        shutil.copytree(app, dest, ignore=_CACHES)
    else:
        for relative in files:
            source = app / relative
            if source.is_file():  # a tracked file may be deleted on disk
                (dest / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, dest / relative)
    dest.mkdir(parents=True, exist_ok=True)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "test"]):
        done = subprocess.run(  # noqa: S603 - git by absolute path, arguments as a list, no shell
            [git, *_GIT_OPTIONS, "-C", str(dest), *args], capture_output=True, check=False
        )
        if done.returncode != 0:
            stderr = done.stderr.decode(errors="replace").strip()
            raise InvalidError(f"git {args[0]} failed in {dest}: {stderr}", path=str(dest))
    return dest


def _files_git_would_commit(app: Path) -> list[str] | None:
    """Paths under ``app`` (relative to it) that git tracks or would add; None outside git."""
    try:
        repo = GitRepo.find(app)
    except InvalidError:
        return None
    prefix = repo.relative(app)
    listed = repo.run(
        "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", prefix or "."
    )
    cut = len(prefix) + 1 if prefix else 0
    return sorted({path[cut:] for path in listed.decode().split("\0") if path})


def check_loop(loop: asyncio.AbstractEventLoop, what: str) -> None:
    """Raise ``RuntimeError`` unless running in ``loop``, the platform's event loop."""
    if asyncio.get_running_loop() is not loop:
        raise RuntimeError(
            f"{what} was called from another event loop than the platform's: an async "
            "fixture using kubefox fixtures must run in the session loop too; declare it "
            '@pytest_asyncio.fixture(loop_scope="session")'
        )


class AppPublisher:
    """Publishes apps to a platform and waits until they serve; the ``kubefox_publish`` fixture.

    Make it in the platform's event loop, and call it there.

    Args:
        platform: A started platform.
        work_dir: Where copies of apps are made.
    """

    def __init__(self, platform: EmbeddedPlatform, *, work_dir: Path) -> None:
        self._loop = asyncio.get_running_loop()
        self._platform = platform
        self._work_dir = work_dir
        self._copies = itertools.count(1)

    async def __call__(
        self,
        path: str | os.PathLike[str],
        *,
        version: str | None = None,
        copy: bool | None = None,
        wait: bool = True,
        within: float = 60.0,
    ) -> PublishResult:
        """Publish the app at ``path`` (its directory or any directory below it).

        Args:
            path: The app; published in place from a clean git work tree,
                else from a committed copy of what is on disk.
            version: Makes the AppDeployment ``<app>-<version>`` and immutable.
            copy: Always publish a copy (so the AppDeployment is
                ``<app>-main`` whatever the branch), or never (a dirty tree is
                then refused, as ``fox publish`` does); by default, only when needed.
            wait: Return only once every component runs and has registered.
            within: Seconds to wait for that.

        Returns:
            What publishing did; ``result.name`` is the AppDeployment to name
            in ``kf-dep``.

        Raises:
            InvalidError: no app at ``path``, or publishing refused it.
            TimeoutError: the deployment was not available within ``within``.
            RuntimeError: called from another event loop than the platform's.
        """
        check_loop(self._loop, "kubefox_publish")
        app = await asyncio.to_thread(self._publishable, Path(path), copy=copy)
        result = await self._platform.publish(app, version=version)
        if wait:
            await self._platform.wait_available(result.name, within=within)
        await routed(self._platform)
        return result

    def _publishable(self, path: Path, *, copy: bool | None) -> Path:
        app = find_app(path)
        if copy is False or (copy is None and published_in_place(app)):
            return app
        dest = self._work_dir / f"{next(self._copies)}" / app.name
        return copy_app(app, dest)


class ResourceApplier:
    """Applies resource files to a platform; the ``kubefox_apply`` fixture.

    Make it in the platform's event loop, and call it there.

    Args:
        platform: A started platform.
    """

    def __init__(self, platform: EmbeddedPlatform) -> None:
        self._loop = asyncio.get_running_loop()
        self._platform = platform

    async def __call__(self, *paths: str | os.PathLike[str]) -> list[Resource]:
        """Apply (create or update) every resource of each YAML file or directory, in order.

        A directory contributes its ``*.yaml`` and ``*.yml`` files in name order.

        Returns:
            The resources as stored.

        Raises:
            InvalidError: a file does not hold valid resources.
            RuntimeError: called from another event loop than the platform's.
        """
        check_loop(self._loop, "kubefox_apply")
        applied: list[Resource] = []
        for path in paths:
            applied.extend(await self._platform.apply_path(Path(path)))
        await routed(self._platform)
        return applied


async def routed(platform: EmbeddedPlatform) -> None:
    """Return once the router of httpsrv and the brokers has seen every write made so far."""
    await platform.view.wait_for_revision(await platform.store.revision())
