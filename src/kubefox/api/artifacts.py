"""Component artifacts over HTTP: upload and look up, so publishing needs no NATS client.

An artifact is named ``<app>.<component>.<hash>`` and the hash names its
contents (:mod:`kubefox.publish.hashing`). The API does not take a client's
word for it: an upload whose files do not hash to the name is refused, so no
client can make the operator run other code under a published hash. Since a
name stands for exactly one set of files, uploading an existing name again
changes nothing and is answered as such.
"""

from __future__ import annotations

import asyncio

from kubefox.core.errors import InvalidError
from kubefox.publish import component_hash, unpack
from kubefox.store.artifacts import ArtifactStore, artifact_name


def check_artifact_name(name: str) -> tuple[str, str, str]:
    """``(app, component, hash)`` from ``<app>.<component>.<hash>``.

    Raises:
        InvalidError: the name does not have that shape.
    """
    parts = name.split(".")
    if len(parts) != 3:
        raise InvalidError(
            f'artifact name "{name}" is not <app>.<component>.<hash>',
            errors=[{"path": "name", "message": "expected <app>.<component>.<hash>"}],
        )
    app, component, hash_ = parts
    artifact_name(app, component, hash_)  # raises InvalidError naming the bad part
    return app, component, hash_


def _verify(name: str, hash_: str, data: bytes) -> None:
    files = unpack(data)
    if not files:
        raise InvalidError(f'artifact "{name}" holds no file')
    actual = component_hash(files)
    if actual != hash_:
        raise InvalidError(
            f'artifact "{name}" holds files whose hash is {actual}, not the {hash_} its name says',
            name=name,
            actual=actual,
        )


class ArtifactService:
    """Checked uploads into, and reads from, the platform's artifact store."""

    def __init__(self, artifacts: ArtifactStore) -> None:
        self.artifacts = artifacts

    async def exists(self, name: str) -> bool:
        """Whether an artifact of that name is stored."""
        check_artifact_name(name)
        return await self.artifacts.exists(name)

    async def get(self, name: str) -> bytes:
        """The artifact's bytes; ``NotFoundError`` if there is none."""
        check_artifact_name(name)
        return await self.artifacts.get(name)

    async def put(self, name: str, data: bytes) -> bool:
        """Store ``data`` under ``name`` after checking it; return whether it is new.

        Raises:
            InvalidError: the name is malformed, the data is no artifact, or
                its files do not hash to the name's hash.
        """
        _, _, hash_ = check_artifact_name(name)
        await asyncio.to_thread(_verify, name, hash_, data)
        if await self.artifacts.exists(name):
            return False
        await self.artifacts.put(name, data)
        return True
