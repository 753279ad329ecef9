"""The artifact port: where published component files wait for the nodes that run them.

``fox publish`` packs each component's files into one archive per content hash
and stores it under :func:`artifact_name`; the operator fetches it by that
name on whichever node starts the component (DESIGN §4), so no container
registry is needed. Artifacts are content-addressed: a name always stands for
the same bytes, so writing an existing name again is harmless and "already
there" means "nothing to upload".

:class:`MemoryArtifactStore` is the in-process backend for unit tests; the
JetStream object-store backend lives in ``kubefox.store.jetstream_objects`` so
that importing this module never pulls in nats-py.
"""

from __future__ import annotations

import re
from typing import Protocol

from kubefox.core.errors import InvalidError, NotFoundError, UnavailableError

_DNS_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
_HASH = re.compile(r"[a-z0-9]{32,64}")
# Object names both backends (and a filesystem cache) can hold as they are.
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}")


class ArtifactStore(Protocol):
    """Keeps artifacts (opaque bytes) by name.

    Errors: ``NotFoundError`` (also a ``LookupError``) for a missing artifact,
    ``InvalidError`` for a name no backend can hold, ``UnavailableError`` when
    the backend cannot be reached or the store is closed.
    """

    async def put(self, name: str, data: bytes) -> None:
        """Store ``data`` under ``name``, replacing what was there."""
        ...

    async def get(self, name: str) -> bytes:
        """Return the artifact's bytes; raise ``NotFoundError`` if there is none."""
        ...

    async def exists(self, name: str) -> bool:
        """Whether an artifact named ``name`` is stored."""
        ...

    async def aclose(self) -> None:
        """Release connections. Idempotent."""
        ...


def artifact_name(app: str, component: str, hash: str) -> str:
    """The name of a component's artifact: ``<app>.<component>.<hash>``.

    ``app`` and ``component`` must be DNS labels and ``hash`` 32 to 64 lowercase
    letters and digits (the component hash), so the name never needs escaping
    and splits back on ``.``.

    Raises:
        InvalidError: a part breaks those rules.
    """
    for what, value in (("app", app), ("component", component)):
        if not _DNS_LABEL.fullmatch(value):
            raise InvalidError(
                f'{what} name "{value}" is not a DNS label (a-z, 0-9 and "-", at most 63)',
                **{what: value},
            )
    if not _HASH.fullmatch(hash):
        raise InvalidError(
            f'component hash "{hash}" is not 32 to 64 lowercase letters and digits', hash=hash
        )
    return f"{app}.{component}.{hash}"


def check_name(name: str) -> str:
    """Return ``name`` if every backend can hold it; raise ``InvalidError`` if not.

    A name is 1 to 255 of ``A-Z a-z 0-9 . _ -`` and does not start with ``.``.
    """
    if not _NAME.fullmatch(name):
        raise InvalidError(
            'an artifact name is 1 to 255 of A-Z, a-z, 0-9, ".", "_" and "-", '
            'not starting with "."',
            name=name,
        )
    return name


class MemoryArtifactStore:
    """An :class:`ArtifactStore` held in this process (unit tests, one-off tools)."""

    def __init__(self) -> None:
        self._artifacts: dict[str, bytes] = {}
        self._closed = False

    @property
    def names(self) -> list[str]:
        """The stored names, sorted (for tests that check what was written)."""
        return sorted(self._artifacts)

    async def put(self, name: str, data: bytes) -> None:
        """Store ``data`` under ``name``, replacing what was there."""
        self._check_open()
        self._artifacts[check_name(name)] = bytes(data)

    async def get(self, name: str) -> bytes:
        """Return the artifact's bytes; raise ``NotFoundError`` if there is none."""
        self._check_open()
        try:
            return self._artifacts[check_name(name)]
        except KeyError:
            raise NotFoundError("no such artifact", name=name) from None

    async def exists(self, name: str) -> bool:
        """Whether an artifact named ``name`` is stored."""
        self._check_open()
        return check_name(name) in self._artifacts

    async def aclose(self) -> None:
        """Refuse further calls. Idempotent."""
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise UnavailableError("the artifact store is closed")
