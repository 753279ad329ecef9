"""ArtifactStore on a JetStream object store: component artifacts on every node (DESIGN §4).

The object store splits an object into 128 KiB chunks on the bucket's stream
(``OBJ_<bucket>``) and checks a SHA-256 digest when reading it back, so an
artifact of any size arrives whole or not at all. The bucket uses file storage:
an artifact must outlive a server restart as long as a deployment refers to it.

Every nats-py error is turned into ours here; nothing above this module sees
one. Like ``kubefox.store.jetstream``, this module may import ``nats``
(import-linter).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator
from typing import Any, Self

import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client
from nats.js.api import ObjectStoreConfig, StorageType
from nats.js.object_store import ObjectStore

from kubefox.core.errors import (
    ContentTooLargeError,
    InvalidError,
    KubeFoxError,
    NotFoundError,
    UnavailableError,
)
from kubefox.core.nats_options import NatsConnectOptions
from kubefox.store.artifacts import check_name
from kubefox.store.nats_client import connect_client

log = structlog.get_logger(__name__)

#: The bucket the platform keeps component artifacts in.
DEFAULT_ARTIFACT_BUCKET = "kubefox-artifacts"

_BUCKET = re.compile(r"[A-Za-z0-9_-]+")


class JetStreamArtifactStore:
    """An :class:`~kubefox.store.artifacts.ArtifactStore` in a JetStream object store.

    Build one with :meth:`connect` (opens and later closes its own connection) or
    :meth:`open` (shares a connection the caller owns).
    """

    def __init__(
        self, client: Client, objects: ObjectStore, *, bucket: str, transfer_timeout: float
    ) -> None:
        self._client = client
        self._objects = objects
        self.bucket = bucket
        self._transfer_timeout = transfer_timeout
        self._owns_client = False
        self._closed = False

    @classmethod
    async def connect(
        cls,
        url: str | NatsConnectOptions = "nats://127.0.0.1:4222",
        *,
        bucket: str = DEFAULT_ARTIFACT_BUCKET,
        connect_timeout: float = 2.0,
        request_timeout: float = 5.0,
        transfer_timeout: float = 120.0,
        name: str = "kubefox-artifacts",
    ) -> Self:
        """Connect to ``url`` and open ``bucket``; :meth:`aclose` closes the connection.

        Raises ``UnavailableError`` if no server answers within ``connect_timeout``.
        """
        client = await connect_client(
            url, name=name, connect_timeout=connect_timeout, log_prefix="artifacts"
        )
        try:
            store = await cls.open(
                client,
                bucket=bucket,
                request_timeout=request_timeout,
                transfer_timeout=transfer_timeout,
            )
        except BaseException:
            await client.close()
            raise
        store._owns_client = True
        return store

    @classmethod
    async def open(
        cls,
        client: Client,
        *,
        bucket: str = DEFAULT_ARTIFACT_BUCKET,
        request_timeout: float = 5.0,
        transfer_timeout: float = 120.0,
    ) -> Self:
        """Open (creating if needed) ``bucket`` over a connection the caller keeps owning.

        ``request_timeout`` bounds each JetStream request; ``transfer_timeout``
        bounds a whole :meth:`put` or :meth:`get`, however many chunks it takes.
        """
        if not _BUCKET.fullmatch(bucket):
            raise InvalidError("a bucket name is letters, digits, '-' and '_'", bucket=bucket)
        js = client.jetstream(timeout=request_timeout)
        with _translated("open bucket", bucket=bucket):
            try:
                objects = await js.object_store(bucket)
            except nats.js.errors.BucketNotFoundError:
                # Adding an identical stream twice is allowed, so racing
                # processes both succeed here.
                objects = await js.create_object_store(
                    bucket, ObjectStoreConfig(storage=StorageType.FILE)
                )
        return cls(client, objects, bucket=bucket, transfer_timeout=transfer_timeout)

    async def put(self, name: str, data: bytes) -> None:
        """Store ``data`` under ``name``, replacing what was there."""
        self._check_open()
        check_name(name)
        with _translated("put artifact", name=name):
            async with asyncio.timeout(self._transfer_timeout):
                await self._objects.put(name, bytes(data))

    async def get(self, name: str) -> bytes:
        """Return the artifact's bytes; raise ``NotFoundError`` if there is none."""
        self._check_open()
        check_name(name)
        with _translated("get artifact", name=name):
            try:
                async with asyncio.timeout(self._transfer_timeout):
                    result = await self._objects.get(name)
            except nats.js.errors.ObjectNotFoundError as exc:  # deleted objects too
                raise NotFoundError("no such artifact", name=name) from exc
            except nats.js.errors.DigestMismatchError as exc:
                raise KubeFoxError(
                    "artifact is corrupt: its digest does not match", name=name
                ) from exc
        return result.data or b""

    async def exists(self, name: str) -> bool:
        """Whether an artifact named ``name`` is stored."""
        self._check_open()
        check_name(name)
        with _translated("look up artifact", name=name):
            try:
                await self._objects.get_info(name)
            except nats.js.errors.ObjectNotFoundError:
                return False
        return True

    async def aclose(self) -> None:
        """Refuse further calls; close the connection if :meth:`connect` opened it."""
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            with contextlib.suppress(OSError, nats.errors.Error):
                await self._client.close()

    def _check_open(self) -> None:
        if self._closed:
            raise UnavailableError("the artifact store is closed")


@contextlib.contextmanager
def _translated(action: str, **details: Any) -> Iterator[None]:
    """Turn nats-py errors into kubefox errors; nothing above this module sees them."""
    try:
        yield
    except KubeFoxError:
        raise
    except nats.errors.MaxPayloadError as exc:
        raise ContentTooLargeError(f"{action}: larger than nats allows", **details) from exc
    except (
        nats.errors.TimeoutError,
        nats.errors.NoRespondersError,
        nats.errors.ConnectionClosedError,
        nats.errors.ConnectionDrainingError,
        nats.errors.ConnectionReconnectingError,
        nats.errors.StaleConnectionError,
        nats.errors.OutboundBufferLimitError,
        nats.js.errors.ServiceUnavailableError,
        TimeoutError,
    ) as exc:
        raise UnavailableError(f"{action}: jetstream is not answering", **details) from exc
    except nats.js.errors.APIError as exc:
        # e.g. the bucket's stream is full (discard policy "new") or was deleted.
        raise KubeFoxError(f"{action}: {exc.description or exc}", **details) from exc
    except nats.errors.Error as exc:
        raise KubeFoxError(f"{action}: {exc}", **details) from exc
