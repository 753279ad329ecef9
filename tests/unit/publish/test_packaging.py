"""Artifacts: reproducible tar.gz archives, and an extraction that trusts nothing."""

from __future__ import annotations

import gzip
import io
import stat
import tarfile
from pathlib import Path

import pytest

from kubefox.core.errors import InvalidError
from kubefox.publish import SourceFile, extract, package, unpack

FILES = (
    SourceFile(path="main.py", mode=0o644, content=b"print('hi')\n"),
    SourceFile(path="lib/helpers.py", mode=0o644, content=b"X = 1\n"),
    SourceFile(path="bin/run.sh", mode=0o755, content=b"#!/bin/sh\nexec python main.py\n"),
    SourceFile(path="empty.txt", mode=0o644, content=b""),
)


def tar_gz(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    """A hand-made archive, to feed extract what package would never write."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, content in members:
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content) if info.isfile() else None)
    return buffer.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, **attrs: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in attrs.items():
        setattr(info, key, value)
    return info


def test_packaging_the_same_files_gives_the_same_bytes() -> None:
    """Order of input, time of day and the packer's user do not show in the archive."""
    first = package(FILES)
    second = package(reversed(FILES))
    assert first == second


def test_archives_are_sorted_and_carry_no_time_or_owner() -> None:
    """Entries sorted by path, mtime 0, uid/gid 0 without names, gzip header without time."""
    data = package(FILES)
    assert int.from_bytes(data[4:8], "little") == 0  # gzip MTIME
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["bin/run.sh", "empty.txt", "lib/helpers.py", "main.py"]
    for m in members:
        assert m.isfile()
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (0, 0, 0, "", "")
    assert {m.name: m.mode for m in members} == {
        "bin/run.sh": 0o755,
        "empty.txt": 0o644,
        "lib/helpers.py": 0o644,
        "main.py": 0o644,
    }


def test_an_archive_round_trips_through_extract(tmp_path: Path) -> None:
    """extract writes exactly the packed files, contents and executable bits included."""
    written = extract(package(FILES), tmp_path / "out")
    assert written == ["bin/run.sh", "empty.txt", "lib/helpers.py", "main.py"]
    for file in FILES:
        target = tmp_path / "out" / file.path
        assert target.read_bytes() == file.content
        assert stat.S_IMODE(target.stat().st_mode) == file.mode
    assert unpack(package(FILES)) == tuple(sorted(FILES, key=lambda f: f.path))


@pytest.mark.parametrize(
    "name", ["/etc/passwd", "../escape.py", "lib/../../escape.py", "./main.py", "a//b", "a\\b"]
)
def test_extract_refuses_unsafe_paths(tmp_path: Path, name: str) -> None:
    """Absolute paths, '..' and odd spellings are refused and nothing is written."""
    data = tar_gz((member("ok.py"), b"ok"), (member(name), b"evil"))
    with pytest.raises(InvalidError, match="unsafe path"):
        extract(data, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "escape.py").exists()


@pytest.mark.parametrize(
    ("kind", "what"),
    [
        (tarfile.SYMTYPE, "a symbolic link"),
        (tarfile.LNKTYPE, "a hard link"),
        (tarfile.CHRTYPE, "a device or FIFO"),
        (tarfile.FIFOTYPE, "a device or FIFO"),
    ],
)
def test_extract_refuses_links_and_special_files(tmp_path: Path, kind: bytes, what: str) -> None:
    """Only regular files (and directories) may be in an artifact."""
    data = tar_gz((member("link", kind, linkname="/etc/passwd"), b""))
    with pytest.raises(InvalidError, match=f"is {what}: only regular files"):
        extract(data, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_extract_refuses_a_path_twice(tmp_path: Path) -> None:
    """A second entry of one path could smuggle other contents in; refused."""
    data = tar_gz((member("main.py"), b"one"), (member("main.py"), b"two"))
    with pytest.raises(InvalidError, match="appears twice"):
        extract(data, tmp_path)


def test_extract_never_overwrites_or_follows_what_is_there(tmp_path: Path) -> None:
    """An existing file is not replaced; a link planted in dest is not followed."""
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "main.py").write_text("mine")
    with pytest.raises(InvalidError, match="already exists"):
        extract(package(FILES[:1]), dest)
    assert (dest / "main.py").read_text() == "mine"

    outside = tmp_path / "outside"
    outside.mkdir()
    other = tmp_path / "other"
    other.mkdir()
    (other / "lib").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidError, match="outside"):
        extract(package(FILES[1:2]), other)
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("data", [b"", b"not a tarball", gzip.compress(b"not a tar inside")])
def test_extract_refuses_what_is_not_an_artifact(tmp_path: Path, data: bytes) -> None:
    """Garbage is an InvalidError, never a crash from tarfile or gzip."""
    with pytest.raises(InvalidError, match="not a component artifact"):
        extract(data, tmp_path)


def test_directory_entries_are_accepted_but_not_needed(tmp_path: Path) -> None:
    """Archives made by other tools may list directories; they are created as needed."""
    data = tar_gz((member("lib/", tarfile.DIRTYPE, mode=0o755), b""), (member("lib/x.py"), b"x"))
    assert extract(data, tmp_path) == ["lib/x.py"]
    assert (tmp_path / "lib" / "x.py").read_bytes() == b"x"


def test_package_refuses_unsafe_paths() -> None:
    """What could never be extracted is not packed either."""
    with pytest.raises(InvalidError, match="unsafe path"):
        package([SourceFile(path="../x", mode=0o644, content=b"")])
