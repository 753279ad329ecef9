"""Component hashes: stable, sensitive to names, contents and modes, blind to the worktree."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from kubefox.core.errors import InvalidError
from kubefox.publish import GitRepo, SourceFile, component_files, component_hash, read_snapshot
from tests.unit.publish.gitrepos import AppRepo, hello_world_repo

FRONTEND_DIR = "components/frontend"


def hashes(root: Path) -> dict[str, str]:
    return {c.name: c.hash for c in read_snapshot(root).components}


def test_a_hash_is_32_lowercase_hex_characters(tmp_path: Path) -> None:
    """The hash fits upstream's ^[a-z0-9]{32}$ pattern."""
    hello_world_repo(tmp_path)
    for value in hashes(tmp_path).values():
        assert re.fullmatch(r"[0-9a-f]{32}", value)


def test_the_hash_is_the_documented_digest() -> None:
    """SHA-256 over '<mode> <size> <path>\\0<content>' per file, sorted by path, cut to 32."""
    files = [
        SourceFile(path="main.py", mode=0o644, content=b"print()\n"),
        SourceFile(path="bin/run", mode=0o755, content=b"#!/bin/sh\n"),
    ]
    expected = hashlib.sha256(
        b"100755 10 bin/run\0#!/bin/sh\n" + b"100644 8 main.py\0print()\n"
    ).hexdigest()[:32]
    assert component_hash(files) == expected


def test_the_same_files_hash_the_same_in_another_repository(tmp_path: Path) -> None:
    """Commit ids, times and authors do not matter, only the component's files."""
    hello_world_repo(tmp_path / "one")
    other = hello_world_repo(tmp_path / "two")
    other.write("README.md", "different history\n")
    other.commit("more")
    assert hashes(tmp_path / "one") == hashes(tmp_path / "two")


def test_changing_a_file_changes_only_that_components_hash(tmp_path: Path) -> None:
    """Editing the frontend leaves the backend's hash (and its running instances) alone."""
    repo = hello_world_repo(tmp_path)
    before = hashes(tmp_path)
    repo.write(f"{FRONTEND_DIR}/main.py", "print('Hey')\n")
    repo.commit()
    after = hashes(tmp_path)
    assert after["frontend"] != before["frontend"]
    assert after["backend"] == before["backend"]


def test_renaming_a_file_changes_the_hash(tmp_path: Path) -> None:
    """Same contents under another name is another component (upstream ignores names)."""
    repo = hello_world_repo(tmp_path)
    repo.write(f"{FRONTEND_DIR}/helpers.py", "X = 1\n")
    repo.commit()
    before = hashes(tmp_path)["frontend"]
    repo.git("mv", f"{FRONTEND_DIR}/helpers.py", f"{FRONTEND_DIR}/util.py")
    repo.commit()
    assert hashes(tmp_path)["frontend"] != before


def test_the_executable_bit_changes_the_hash(tmp_path: Path) -> None:
    """A file that becomes executable packs differently, so it hashes differently."""
    repo = hello_world_repo(tmp_path)
    repo.write(f"{FRONTEND_DIR}/run.sh", "#!/bin/sh\n")
    repo.commit()
    before = hashes(tmp_path)["frontend"]
    repo.git("update-index", "--chmod=+x", f"{FRONTEND_DIR}/run.sh")
    repo.git("commit", "-q", "-m", "chmod")
    (tmp_path / FRONTEND_DIR / "run.sh").chmod(0o755)
    assert hashes(tmp_path)["frontend"] != before


def test_files_outside_the_component_do_not_count(tmp_path: Path) -> None:
    """app.yaml, other components and the rest of the repository are not hashed."""
    repo = hello_world_repo(tmp_path)
    before = hashes(tmp_path)
    repo.write("app.yaml", "name: hello-world\ntitle: Renamed\n")
    repo.write("docs/index.md", "docs\n")
    repo.commit()
    assert hashes(tmp_path) == before


def test_untracked_and_ignored_files_never_count(tmp_path: Path) -> None:
    """Only what git tracks at the commit is hashed; caches in the worktree are not."""
    repo = hello_world_repo(tmp_path)
    commit = repo.head()
    git = GitRepo.find(tmp_path)
    before = component_files(git, commit, FRONTEND_DIR)
    repo.write(f"{FRONTEND_DIR}/__pycache__/main.cpython-311.pyc", b"\x00\x01")
    repo.write(f"{FRONTEND_DIR}/scratch.py", "untracked\n")
    after = component_files(git, commit, FRONTEND_DIR)
    assert after == before
    assert [f.path for f in after] == ["main.py"]
    assert component_hash(after) == component_hash(before)


def test_the_hash_reads_the_commit_not_the_worktree(tmp_path: Path) -> None:
    """An uncommitted edit of a tracked file does not change the hash of the commit."""
    repo = hello_world_repo(tmp_path)
    git = GitRepo.find(tmp_path)
    before = component_hash(component_files(git, repo.head(), FRONTEND_DIR))
    repo.write(f"{FRONTEND_DIR}/main.py", "edited\n")
    assert component_hash(component_files(git, repo.head(), FRONTEND_DIR)) == before


def test_file_order_given_does_not_matter() -> None:
    """Files are sorted before hashing."""
    a = SourceFile(path="a.py", mode=0o644, content=b"a")
    b = SourceFile(path="b/c.py", mode=0o644, content=b"b")
    assert component_hash([a, b]) == component_hash([b, a])


def test_moving_bytes_between_name_and_content_changes_the_hash() -> None:
    """The encoding is unambiguous: sizes separate one file from the next."""
    one = [SourceFile(path="a", mode=0o644, content=b"bc")]
    two = [SourceFile(path="ab", mode=0o644, content=b"c")]
    assert component_hash(one) != component_hash(two)


@pytest.mark.parametrize("kind", ["symlink", "submodule"])
def test_links_and_submodules_are_refused(tmp_path: Path, kind: str) -> None:
    """An artifact holds regular files only; the error names the offending path."""
    root = tmp_path / "app"
    repo = hello_world_repo(root)
    if kind == "symlink":
        (root / FRONTEND_DIR / "link.py").symlink_to("main.py")
        repo.git("add", FRONTEND_DIR)
    else:
        sub = AppRepo.init(tmp_path / "library")
        sub.write("x.txt", "x")
        oid = sub.commit()
        repo.git("update-index", "--add", "--cacheinfo", f"160000,{oid},{FRONTEND_DIR}/vendor")
    repo.git("commit", "-q", "-m", kind)
    git = GitRepo.find(root)
    what = "a symbolic link" if kind == "symlink" else "a submodule"
    with pytest.raises(InvalidError, match=f"is {what}: a component may hold regular files only"):
        component_files(git, repo.head(), FRONTEND_DIR)
