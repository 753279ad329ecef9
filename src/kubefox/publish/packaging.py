"""A component's files as one artifact: a reproducible tar.gz, and its safe extraction.

The archive is a function of the files alone: entries sorted by path, regular
files only (no directory entries), modification time 0, owner and group 0 with
empty names, mode 0644 or 0755, PAX format, and a gzip header without a file
name or time. Packing the same files twice gives the same bytes, so an
artifact's digest can be compared across machines and publishes.

Artifacts come back from a store that other processes can write to, so
:func:`extract` trusts nothing in them: absolute paths, ``..``, links, devices
and duplicates are refused before anything is written, and nothing is written
outside the destination or over an existing file.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import zlib
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from kubefox.core.errors import InvalidError
from kubefox.publish.hashing import SourceFile

#: Media type of an artifact, for stores and tools that label their objects.
MEDIA_TYPE = "application/gzip"

_COMPRESS_LEVEL = 9


def package(files: Iterable[SourceFile]) -> bytes:
    """The tar.gz of ``files`` (see the module docstring for what makes it reproducible).

    Raises:
        InvalidError: a path is not a plain relative path, or appears twice.
    """
    ordered = sorted(files, key=lambda f: f.path.encode("utf-8", errors="surrogateescape"))
    seen: set[str] = set()
    buffer = io.BytesIO()
    # gzip would otherwise record the current time (and tarfile the file name).
    with (
        gzip.GzipFile(
            filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=_COMPRESS_LEVEL
        ) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for file in ordered:
            name = _safe_name(file.path)
            if name in seen:
                raise InvalidError(f"{name} appears twice in a component", path=name)
            seen.add(name)
            info = tarfile.TarInfo(name)
            info.size = len(file.content)
            info.mode = 0o755 if file.mode & 0o111 else 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.type = tarfile.REGTYPE
            tar.addfile(info, io.BytesIO(file.content))
    return buffer.getvalue()


def unpack(data: bytes) -> tuple[SourceFile, ...]:
    """The files in an artifact, sorted by path, after the checks :func:`extract` makes.

    Raises:
        InvalidError: the data is no tar.gz, or an entry is unsafe.
    """
    files: list[SourceFile] = []
    seen: set[str] = set()
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar:
                name = _checked_member(member, seen)
                if member.isdir():
                    continue
                stream = tar.extractfile(member)
                if stream is None:  # pragma: no cover - regular files always have data
                    raise InvalidError(f"artifact entry {name} has no data", path=name)
                mode = 0o755 if member.mode & 0o111 else 0o644
                files.append(SourceFile(path=name, mode=mode, content=stream.read()))
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise InvalidError(f"not a component artifact (a tar.gz): {exc}") from exc
    return tuple(sorted(files, key=lambda f: f.path.encode("utf-8", errors="surrogateescape")))


def extract(data: bytes, dest: Path) -> list[str]:
    """Write the files of an artifact under ``dest`` (created if needed); return their paths.

    Every entry is checked before the first file is written.

    Raises:
        InvalidError: the data is no tar.gz; an entry is absolute, contains
            ``..``, is a link, device or FIFO, or appears twice; or a file
            already exists or would land outside ``dest``.
    """
    files = unpack(data)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    for file in files:
        target = root.joinpath(*PurePosixPath(file.path).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        # A directory that already existed in dest may be a link leading elsewhere.
        if not target.parent.resolve().is_relative_to(root):
            raise InvalidError(f"{file.path} would be written outside {dest}", path=file.path)
        try:
            # O_EXCL + O_NOFOLLOW: never write over, or through, something already there.
            fd = os.open(
                target,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                file.mode,
            )
        except FileExistsError:
            raise InvalidError(f"{file.path} already exists in {dest}", path=file.path) from None
        with os.fdopen(fd, "wb") as out:
            out.write(file.content)
        os.chmod(target, file.mode)  # the umask may have cleared bits
    return [file.path for file in files]


def _checked_member(member: tarfile.TarInfo, seen: set[str]) -> str:
    if not (member.isfile() or member.isdir()):
        kind = (
            "a symbolic link"
            if member.issym()
            else ("a hard link" if member.islnk() else "a device or FIFO")
        )
        raise InvalidError(
            f"artifact entry {member.name} is {kind}: only regular files are allowed",
            path=member.name,
        )
    name = _safe_name(member.name.rstrip("/") if member.isdir() else member.name)
    if member.isfile():
        if name in seen:
            raise InvalidError(f"artifact entry {name} appears twice", path=name)
        seen.add(name)
    return name


def _safe_name(path: str) -> str:
    """``path`` if it is a plain relative POSIX path; ``InvalidError`` if not."""
    pure = PurePosixPath(path)
    if (
        not path
        or pure.is_absolute()
        or "\\" in path
        or "\0" in path
        or any(part in ("..", ".", "") for part in path.split("/"))
    ):
        raise InvalidError(f"unsafe path in a component artifact: {path!r}", path=path)
    return pure.as_posix()
