"""The embedded platform: nats-server, the resource store and (as they land) the roles.

``fox up`` and the tests start the same object, so what a developer runs on a
laptop is what the tests exercise. Start-up order matters: the server, then
the store, then every role that reads the store; shutdown is the reverse.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import structlog

from kubefox.platform.settings import PlatformSettings
from kubefox.store.jetstream import JetStreamStore
from kubefox.store.natsd import EmbeddedNatsServer

log = structlog.get_logger(__name__)

#: File in the state directory recording where each part listens.
ENDPOINTS_FILE = "endpoints.json"


class EmbeddedPlatform:
    """Every part of one platform on this machine, started and stopped together."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        self.state_dir = Path(settings.state_dir)
        self.nats = EmbeddedNatsServer(self.state_dir / "nats", port=settings.nats_port)
        self._store: JetStreamStore | None = None
        self._stopped = asyncio.Event()

    @property
    def store(self) -> JetStreamStore:
        """The resource store; only valid between :meth:`start` and :meth:`stop`."""
        if self._store is None:
            raise RuntimeError("the platform is not started")
        return self._store

    def endpoints(self) -> dict[str, Any]:
        """Where each part listens, as recorded in the state directory."""
        return {
            "platform": self.settings.name,
            "nats": self.nats.url,
            "store": {"bucket": self.settings.bucket},
        }

    async def start(self) -> None:
        """Start the server and the store; record the endpoints in the state directory."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        await self.nats.start()
        try:
            self._store = await JetStreamStore.connect(self.nats.url, bucket=self.settings.bucket)
        except BaseException:
            await self.nats.stop(self.settings.shutdown_grace)
            raise
        (self.state_dir / ENDPOINTS_FILE).write_text(json.dumps(self.endpoints(), indent=2))
        log.info("platform.started", **self.endpoints())

    async def stop(self) -> None:
        """Stop everything that :meth:`start` started, in reverse order. Idempotent."""
        if self._store is not None:
            store, self._store = self._store, None
            await store.aclose()
        await self.nats.stop(self.settings.shutdown_grace)
        with contextlib.suppress(FileNotFoundError):
            (self.state_dir / ENDPOINTS_FILE).unlink()
        self._stopped.set()
        log.info("platform.stopped")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
