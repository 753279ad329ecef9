"""An app as committed: ``app.yaml``, the commit's facts and each component's files and hash.

Everything here is read from the commit HEAD points at, after checking that the
working tree holds nothing uncommitted, so a snapshot is what anyone checking
out that commit would get. Reading it is blocking work (git subprocesses);
:func:`read_snapshot` is meant for ``asyncio.to_thread``.

A component is a directory ``components/<dir>/`` of the app holding a
``main.py``; its name is the directory name cleaned into a DNS label, as
upstream does. Directories without a ``main.py`` are listed in
:attr:`Snapshot.skipped` rather than silently dropped.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from kubefox.core.errors import InvalidError
from kubefox.publish.hashing import SourceFile, component_hash, files_from_tree
from kubefox.publish.repo import APP_FILE, App, GitRepo, TreeEntry, find_app_dir, load_app
from kubefox.resources import clean_name

#: The directory of an app that holds one directory per component.
COMPONENTS_DIR = "components"
#: The file that makes a directory under ``components/`` a component.
ENTRY_POINT = "main.py"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Component:
    """One component at the commit: its name, where it lives, its files and their hash."""

    name: str
    directory: str  # relative to the repository root, POSIX
    files: tuple[SourceFile, ...] = dataclasses.field(repr=False)
    hash: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """What publishing needs to know about an app at HEAD."""

    app: App
    app_dir: Path
    commit: str
    commit_time: datetime
    branch: str | None  # the branch's last path segment; None on a detached HEAD
    tags: tuple[str, ...]  # tags pointing at the commit, newest first
    repo_url: str | None
    components: tuple[Component, ...]
    skipped: tuple[str, ...]  # component directories without a main.py


def read_snapshot(path: Path) -> Snapshot:
    """Read the app containing ``path`` as committed at HEAD.

    Raises:
        InvalidError: ``path`` is in no git repository; the repository has no
            commit; uncommitted changes are present (``details["paths"]`` lists
            a few); no ``app.yaml`` is found or it is invalid or uncommitted;
            no component is found; or a component holds a link or submodule.
    """
    repo = GitRepo.find(path)
    commit = repo.head()
    repo.check_clean()
    app_dir = find_app_dir(repo, path)
    app_rel = repo.relative(app_dir)
    app_file = _join(app_rel, APP_FILE)
    text = repo.read_file(commit, app_file)
    if text is None:
        raise InvalidError(f"{app_file} is not committed: commit it first", path=app_file)
    app = load_app(text, source=app_file)
    components, skipped = _components(repo, commit, _join(app_rel, COMPONENTS_DIR))
    if not components:
        raise InvalidError(
            f"no components found: expected {COMPONENTS_DIR}/<name>/{ENTRY_POINT} "
            f"in {app_dir} at commit {commit[:7]}",
            app_dir=str(app_dir),
        )
    branch = repo.branch()
    return Snapshot(
        app=app,
        app_dir=app_dir,
        commit=commit,
        commit_time=repo.commit_time(commit),
        # Only the last segment, as upstream: it becomes a label value, where "/" is not allowed.
        branch=branch.rsplit("/", 1)[-1] if branch else None,
        tags=tuple(repo.tags_at(commit)),
        repo_url=repo.origin_url(),
        components=components,
        skipped=skipped,
    )


def _components(
    repo: GitRepo, commit: str, directory: str
) -> tuple[tuple[Component, ...], tuple[str, ...]]:
    by_dir: dict[str, list[TreeEntry]] = defaultdict(list)
    for entry in repo.tree(commit, directory):
        top, sep, rest = entry.path.partition("/")
        if sep:  # files directly in components/ belong to no component
            by_dir[top].append(dataclasses.replace(entry, path=rest))
    components: list[Component] = []
    skipped: list[str] = []
    names: dict[str, str] = {}
    for dirname in sorted(by_dir):
        entries = by_dir[dirname]
        component_dir = _join(directory, dirname)
        if not any(entry.path == ENTRY_POINT for entry in entries):
            skipped.append(component_dir)
            continue
        name = clean_name(dirname)
        if name in names:
            raise InvalidError(
                f'{_join(directory, names[name])} and {component_dir} both make component "{name}"',
                component=name,
            )
        names[name] = dirname
        files = files_from_tree(repo, entries, directory=component_dir)
        components.append(
            Component(name=name, directory=component_dir, files=files, hash=component_hash(files))
        )
    return tuple(components), tuple(skipped)


def _join(parent: str, child: str) -> str:
    return f"{parent}/{child}" if parent else child
