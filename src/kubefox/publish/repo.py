"""The app's git repository: the commit being published and the app described at it.

Publishing reads everything from a commit, never from the working tree, so
what gets published is exactly what anyone can check out again. That is only
what the user means when the working tree is clean, hence :meth:`GitRepo.dirty_paths`
and the refusal to publish uncommitted changes (upstream does the same).

Git runs as a subprocess (``git -C <root> ...``, never through a shell), not
through a library: it is the tool the user already has, with their
configuration, and it reads every repository format git writes. Every failure
becomes an ``InvalidError`` that says what to do about it.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from kubefox.core.errors import InvalidError

#: The file that marks an app's directory and names the app.
APP_FILE = "app.yaml"

_APP_FIELDS = ("name", "title", "description", "containerRegistry")
_DIRTY_SHOWN = 5
# Looking must not rewrite the index under the user's feet, and a path is a path.
_GLOBAL_OPTIONS = ("--no-optional-locks", "--literal-pathspecs")
_DNS_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
_GIT_TIMEOUT = 60.0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TreeEntry:
    """One file git tracks at a commit: its mode, type, object id and path under a tree."""

    mode: str  # "100644", "100755", "120000" (symlink), "160000" (submodule)
    type: str  # "blob" or "commit"
    oid: str
    path: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class App:
    """What ``app.yaml`` says about the app."""

    name: str
    title: str | None = None
    description: str | None = None
    container_registry: str | None = None


class GitRepo:
    """A git working tree, read through the ``git`` command."""

    def __init__(self, root: Path, *, git: str) -> None:
        self.root = root
        self._git = git

    @classmethod
    def find(cls, path: Path) -> GitRepo:
        """The repository ``path`` is in (any depth below its root).

        Raises:
            InvalidError: ``git`` is not installed, or ``path`` is in no repository.
        """
        git = shutil.which("git")
        if git is None:
            raise InvalidError("git is not installed: publishing reads the app from git")
        if not path.exists():
            raise InvalidError(f"not a git repository: {path} does not exist", path=str(path))
        start = path if path.is_dir() else path.parent
        result = _run([git, *_GLOBAL_OPTIONS, "-C", str(start), "rev-parse", "--show-toplevel"])
        if result.returncode != 0:
            reason = _tail(result.stderr)
            # Anything but the usual complaint (e.g. "dubious ownership") is worth showing.
            extra = "" if "not a git repository" in reason.lower() else f" ({reason})"
            raise InvalidError(
                f"not a git repository: {path}{extra}", path=str(path), stderr=reason
            )
        return cls(Path(result.stdout.decode().strip()), git=git)

    def run(self, *args: str, stdin: bytes | None = None) -> bytes:
        """Run ``git -C <root> <args>`` and return its stdout.

        Raises:
            InvalidError: git exits non-zero; the message ends with git's own.
        """
        result = self._run(*args, stdin=stdin)
        if result.returncode != 0:
            raise InvalidError(
                f"git {args[0]} failed: {_tail(result.stderr) or f'exit code {result.returncode}'}",
                command=["git", *args],
                stderr=_tail(result.stderr),
            )
        return result.stdout

    def head(self) -> str:
        """The full id of the commit HEAD points at.

        Raises:
            InvalidError: the repository has no commit yet.
        """
        result = self._run("rev-parse", "--verify", "--quiet", "HEAD^{commit}")
        if result.returncode != 0:
            raise InvalidError("the repository has no commit yet: commit your app first")
        return result.stdout.decode().strip()

    def commit_time(self, commit: str) -> datetime:
        """When ``commit`` was committed (committer date), in UTC."""
        # The raw commit object, not `git show`: user settings such as
        # log.showSignature cannot add lines to it.
        for line in self.run("cat-file", "commit", commit).splitlines():
            if not line:
                break  # the headers end at the first empty line
            if line.startswith(b"committer "):
                seconds = line.rsplit(b" ", 2)[1]
                return datetime.fromtimestamp(int(seconds), UTC)
        raise InvalidError(f"commit {commit} has no committer line", commit=commit)

    def branch(self) -> str | None:
        """The checked-out branch (``feature/login``), or None on a detached HEAD."""
        result = self._run("symbolic-ref", "--quiet", "--short", "HEAD")
        name = result.stdout.decode().strip()
        return name if result.returncode == 0 and name else None

    def tags_at(self, commit: str) -> list[str]:
        """The tags pointing at ``commit``, newest first."""
        out = self.run("tag", "--points-at", commit, "--sort=-creatordate")
        return [line for line in out.decode().splitlines() if line]

    def origin_url(self) -> str | None:
        """The URL of the ``origin`` remote without any credentials in it; None if none."""
        result = self._run("config", "--get", "remote.origin.url")
        url = result.stdout.decode().strip()
        return strip_credentials(url) if result.returncode == 0 and url else None

    def dirty_paths(self) -> list[str]:
        """Paths with uncommitted changes, untracked files included, ignored ones not."""
        out = self.run("status", "--porcelain=v1", "-z", "--untracked-files=all")
        paths: list[str] = []
        records = iter(out.split(b"\0"))
        for record in records:
            if not record:
                continue
            status, path = record[:2], record[3:]
            paths.append(_decode(path))
            if b"R" in status or b"C" in status:
                next(records, None)  # the original path of a rename or copy
        return paths

    def is_dirty(self) -> bool:
        """Whether anything differs from HEAD, untracked files included."""
        return bool(self.dirty_paths())

    def check_clean(self) -> None:
        """Raise ``InvalidError`` listing a few changed paths if the tree is dirty."""
        dirty = self.dirty_paths()
        if dirty:
            shown = dirty[:_DIRTY_SHOWN]
            raise InvalidError(
                "uncommitted changes present: commit or stash them before publishing",
                paths=shown,
                count=len(dirty),
            )

    def tree(self, commit: str, path: str) -> list[TreeEntry]:
        """Every file git tracks under ``path`` (relative to the root) at ``commit``.

        Entry paths are relative to ``path``. A ``path`` that is no directory
        at the commit gives an empty list.
        """
        spec = f"{commit}:{path}"
        # "<commit>:<path>^{tree}" would read "^{tree}" as part of the path: ask for the type.
        found = self._run("cat-file", "-t", spec)
        if found.returncode != 0 or found.stdout.strip() != b"tree":
            return []
        entries: list[TreeEntry] = []
        for record in self.run("ls-tree", "-r", "-z", spec).split(b"\0"):
            if not record:
                continue
            info, _, name = record.partition(b"\t")
            mode, kind, oid = info.decode().split(" ")
            entries.append(TreeEntry(mode=mode, type=kind, oid=oid, path=_decode(name)))
        return entries

    def read_blobs(self, oids: list[str]) -> dict[str, bytes]:
        """The contents of the blobs ``oids``, read in one ``git cat-file --batch``."""
        if not oids:
            return {}
        out = self.run("cat-file", "--batch", stdin="".join(f"{oid}\n" for oid in oids).encode())
        blobs: dict[str, bytes] = {}
        pos = 0
        for oid in oids:
            end = out.index(b"\n", pos)
            header = out[pos:end].decode().split(" ")
            if len(header) != 3 or header[1] != "blob":
                raise InvalidError(f"git object {oid} is not a readable blob", oid=oid)
            size = int(header[2])
            blobs[oid] = out[end + 1 : end + 1 + size]
            pos = end + 1 + size + 1  # the content is followed by a newline
        return blobs

    def read_file(self, commit: str, path: str) -> bytes | None:
        """The content of ``path`` (relative to the root) at ``commit``; None if absent."""
        result = self._run("cat-file", "blob", f"{commit}:{path}")
        return result.stdout if result.returncode == 0 else None

    def resolve(self, revision: str) -> str | None:
        """The commit ``revision`` (a tag, branch or id) names; None if it names none."""
        result = self._run("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
        return result.stdout.decode().strip() if result.returncode == 0 else None

    def is_valid_tag_name(self, name: str) -> bool:
        """Whether git accepts ``name`` as a tag name (``git check-ref-format``)."""
        if not name or name.startswith("-"):
            return False
        return self._run("check-ref-format", f"refs/tags/{name}").returncode == 0

    def _run(self, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return _run([self._git, *_GLOBAL_OPTIONS, "-C", str(self.root), *args], stdin=stdin)

    def relative(self, path: Path) -> str:
        """``path`` relative to the root, in git's notation (``""`` for the root).

        Raises:
            InvalidError: ``path`` is outside the repository.
        """
        try:
            rel = path.resolve().relative_to(self.root.resolve())
        except ValueError:
            raise InvalidError(f"{path} is outside the git repository {self.root}") from None
        return PurePosixPath(*rel.parts).as_posix() if rel.parts else ""


def find_app_dir(repo: GitRepo, start: Path) -> Path:
    """The nearest directory from ``start`` up to the repository root holding ``app.yaml``.

    Raises:
        InvalidError: there is none.
    """
    root = repo.root.resolve()
    here = start.resolve()
    if here.is_file():
        here = here.parent
    repo.relative(here)  # outside the repository is an error
    while True:
        if (here / APP_FILE).is_file():
            return here
        if here in (root, here.parent):
            break
        here = here.parent
    raise InvalidError(
        f"no {APP_FILE} found in {start} or above it up to the repository root {root}",
        path=str(start),
    )


def load_app(text: bytes, *, source: str = APP_FILE) -> App:
    """Parse the text of ``app.yaml``.

    ``name`` (a DNS label) is required; ``title``, ``description`` and
    ``containerRegistry`` are optional strings; any other key is an error.

    Raises:
        InvalidError: the YAML does not parse, or a field is missing, unknown or
            of the wrong kind.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidError(f"{source} is not valid YAML: {exc}", source=source) from exc
    if not isinstance(data, dict):
        raise InvalidError(f"{source} must be a mapping with at least a name", source=source)
    unknown = sorted(str(key) for key in data if key not in _APP_FIELDS)
    if unknown:
        raise InvalidError(
            f"{source} has unknown field(s) {', '.join(unknown)}; known: {', '.join(_APP_FIELDS)}",
            source=source,
            unknown=unknown,
        )
    fields: dict[str, Any] = {}
    for key in _APP_FIELDS:
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise InvalidError(f"{source}: {key} must be a string", source=source, field=key)
        fields[key] = value or None
    name = fields["name"]
    if name is None:
        raise InvalidError(f"{source}: name is required (the app's name, a DNS label)")
    if not _DNS_LABEL.fullmatch(name):
        raise InvalidError(
            f'{source}: name "{name}" is not a DNS label: use at most 63 lowercase letters, '
            "digits or '-', starting and ending with a letter or digit",
            source=source,
            name=name,
        )
    return App(
        name=name,
        title=fields["title"],
        description=fields["description"],
        container_registry=fields["containerRegistry"],
    )


def strip_credentials(url: str) -> str:
    """``url`` without a user's password or token (``https://tok@host/x`` → ``https://host/x``).

    scp-like addresses (``git@host:org/repo``) name a user, not a secret, and stay.
    """
    parts = urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    if parts.scheme in ("ssh", "git+ssh") and parts.password is None:
        return url
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _run(command: list[str], *, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(  # noqa: S603 - git by absolute path, arguments as a list, no shell
            command,
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            check=False,
            timeout=_GIT_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        raise InvalidError(
            f"git did not answer within {_GIT_TIMEOUT:.0f} s", command=command
        ) from exc


def _tail(stderr: bytes, lines: int = 3) -> str:
    text = stderr.decode(errors="replace").strip().splitlines()
    return " ".join(line.strip() for line in text[-lines:])


def _decode(path: bytes) -> str:
    # Paths are bytes to git; undecodable ones survive as surrogates, as os.fsdecode does.
    return path.decode("utf-8", errors="surrogateescape")
