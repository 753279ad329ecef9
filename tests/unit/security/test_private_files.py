"""write_atomic: all or nothing, with the mode from the first byte."""

from __future__ import annotations

import stat
from pathlib import Path
from unittest import mock

import pytest

from kubefox.security.private_files import ensure_private_dir, write_atomic


def test_a_new_file_is_private_and_complete(tmp_path: Path) -> None:
    """0600 by default; no temporary file left behind."""
    write_atomic(tmp_path / "key", b"secret")

    assert (tmp_path / "key").read_bytes() == b"secret"
    assert stat.S_IMODE((tmp_path / "key").stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["key"]


def test_replacing_keeps_the_old_file_until_the_new_one_is_written(tmp_path: Path) -> None:
    """A failure mid-write leaves the previous contents and no temporary file."""
    target = tmp_path / "key"
    write_atomic(target, b"old")

    with (
        mock.patch("os.fsync", side_effect=OSError("disk full")),
        pytest.raises(OSError, match="disk full"),
    ):
        write_atomic(target, b"new")

    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["key"]


def test_public_files_and_private_directories(tmp_path: Path) -> None:
    """mode= is honoured; ensure_private_dir makes 0700 directories."""
    directory = ensure_private_dir(tmp_path / "a" / "b")
    write_atomic(directory / "ca.crt", b"cert", mode=0o644)

    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / "ca.crt").stat().st_mode) == 0o644
