"""A component's identity: the hash of the files git tracks in its directory at a commit.

The hash decides everything downstream: the artifact's name, whether it must be
uploaded again, and which running instances two AppDeployments share
(DESIGN §5). So it covers exactly what would run and nothing else:

* the files git tracks under ``components/<name>/`` *at the commit being
  published*, never the working tree: untracked and ignored files (caches,
  virtualenvs, ``.DS_Store``) never count;
* each file's path relative to the component directory, its executable bit and
  its content. Upstream hashes contents only, so renaming a module did not
  change the hash and an old build kept running: a bug we do not copy.

Definition: SHA-256 over the files sorted by the UTF-8 bytes of their relative
paths, each fed as the header ``<mode> <size> <path>`` and a NUL byte, then the
content (``mode`` is ``100644`` or ``100755``, ``size`` the content length in
decimal); the hex digest cut to 32 characters, so upstream's ``^[a-z0-9]{32}$``
still holds. The size in the header keeps the encoding unambiguous. Symbolic
links and submodules are refused: an artifact holds regular files only.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable

from kubefox.core.errors import InvalidError
from kubefox.publish.repo import GitRepo, TreeEntry

#: Length of a component hash, in hex digits.
HASH_LENGTH = 32

_MODES = {"100644": 0o644, "100755": 0o755}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SourceFile:
    """One file of a component, as committed: path relative to the component dir."""

    path: str
    mode: int  # 0o644 or 0o755
    content: bytes = dataclasses.field(repr=False)


def component_files(repo: GitRepo, commit: str, directory: str) -> tuple[SourceFile, ...]:
    """The files git tracks under ``directory`` (relative to the root) at ``commit``.

    Sorted by path; empty if ``directory`` is not a directory at the commit.

    Raises:
        InvalidError: the directory holds a symbolic link or a submodule.
    """
    return files_from_tree(repo, repo.tree(commit, directory), directory=directory)


def files_from_tree(
    repo: GitRepo, entries: Iterable[TreeEntry], *, directory: str
) -> tuple[SourceFile, ...]:
    """Read the blobs of ``entries`` (paths relative to ``directory``) in one go."""
    entries = sorted(entries, key=lambda entry: _path_key(entry.path))
    for entry in entries:
        if entry.type != "blob" or entry.mode not in _MODES:
            what = "a submodule" if entry.type == "commit" else "a symbolic link"
            if entry.type == "blob" and entry.mode != "120000":
                what = f"a file of unsupported mode {entry.mode}"
            raise InvalidError(
                f"{directory}/{entry.path} is {what}: a component may hold regular files only",
                path=f"{directory}/{entry.path}",
            )
    blobs = repo.read_blobs(sorted({entry.oid for entry in entries}))
    return tuple(
        SourceFile(path=entry.path, mode=_MODES[entry.mode], content=blobs[entry.oid])
        for entry in entries
    )


def component_hash(files: Iterable[SourceFile]) -> str:
    """The component hash of ``files`` (see the module docstring for the definition)."""
    digest = hashlib.sha256()
    for file in sorted(files, key=lambda f: _path_key(f.path)):
        mode = "100755" if file.mode & 0o111 else "100644"
        path = _path_key(file.path)
        digest.update(f"{mode} {len(file.content)} ".encode() + path + b"\0")
        digest.update(file.content)
    return digest.hexdigest()[:HASH_LENGTH]


def _path_key(path: str) -> bytes:
    return path.encode("utf-8", errors="surrogateescape")
