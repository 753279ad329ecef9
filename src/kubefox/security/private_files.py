"""Files that hold keys and secrets: written atomically, readable by their owner only.

A crash in the middle of a write must never leave a half-written key or a
secrets file that no longer decrypts, so every write goes to a temporary file
in the same directory (created ``0600`` by :func:`tempfile.mkstemp`), is
flushed to disk, then renamed over the target. A reader sees the old file or
the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

#: Mode of every file that holds a private key, a seed or secrets.
PRIVATE = 0o600
#: Mode of certificates, CA bundles and other public material.
PUBLIC = 0o644
#: Mode of directories that hold private files.
PRIVATE_DIR = 0o700


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if missing; a new directory gets mode ``0700``."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    return path


def write_atomic(path: Path, data: bytes, *, mode: int = PRIVATE) -> None:
    """Replace ``path`` with ``data`` atomically; the file has ``mode`` from its first byte.

    The parent directory must exist. The directory entry is synced too, so the
    rename survives a power cut.
    """
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(temporary).replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            Path(temporary).unlink()
        raise
    _sync_directory(path.parent)


def _sync_directory(directory: Path) -> None:
    # Not every platform lets a directory be opened for fsync; the rename is
    # still atomic there, only its durability is left to the file system.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
