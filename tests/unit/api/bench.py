"""The API over in-memory stores, for unit tests (a plain module, never a conftest)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx

from kubefox.api import ApiServer, ApiSettings, create_app
from kubefox.router import ResourceView
from kubefox.store import MemoryStore
from kubefox.store.artifacts import MemoryArtifactStore
from kubefox.store.typed import TypedStore

NAMESPACE = "kubefox-demo"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Api:
    """A running API: its HTTP client and the stores behind it."""

    client: httpx.AsyncClient
    store: MemoryStore
    typed: TypedStore
    artifacts: MemoryArtifactStore
    view: ResourceView
    closing: asyncio.Event


@contextlib.asynccontextmanager
async def running_api(*, served: bool = False, **settings: Any) -> AsyncIterator[Api]:
    """The API over a fresh MemoryStore, called in process or (``served``) over uvicorn.

    In process (httpx's ASGI transport) is fast but buffers whole responses;
    streams need the real server.
    """
    store = MemoryStore()
    artifacts = MemoryArtifactStore()
    view = ResourceView(store, namespace=NAMESPACE)
    closing = asyncio.Event()
    api_settings = ApiSettings.model_validate({"shutdown_grace": 1.0, **settings})
    app = create_app(
        store=store,
        artifacts=artifacts,
        view=view,
        platform="demo",
        namespace=NAMESPACE,
        settings=api_settings,
        endpoints=lambda: {"nats": "nats://127.0.0.1:1", "http": "http://127.0.0.1:2"},
        closing=closing,
    )
    server = ApiServer(api_settings, app, closing=closing)
    async with asyncio.TaskGroup() as tasks:
        follower = tasks.create_task(view.run())
        serving = tasks.create_task(server.run()) if served else None
        await view.wait_ready()
        if served:
            await server.started.wait()
            client = httpx.AsyncClient(base_url=server.url, timeout=10.0)
        else:
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            client = httpx.AsyncClient(transport=transport, base_url="http://api.test")
        try:
            async with client:
                yield Api(
                    client=client,
                    store=store,
                    typed=TypedStore(store, namespace=NAMESPACE),
                    artifacts=artifacts,
                    view=view,
                    closing=closing,
                )
        finally:
            server.stop()
            if serving is not None:
                await serving
            follower.cancel()
            await store.aclose()
