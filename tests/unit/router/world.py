"""The hello-world platform the router and broker tests route in (a plain module, not a conftest).

Upstream's hello-world (§9.1): ``frontend`` has the route
``Path(`/{{.Vars.subPath}}/hello`)`` and depends on ``backend``; ``backend``
has only a default handler and requires the var ``who``. Environment ``qa``
holds ``who=World`` and ``subPath=qa``; VirtualEnvironment ``qa`` layers
nothing on top.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from kubefox.core.events import TYPE_HTTP, TYPE_KUBEFOX, Category, Component, Event, EventContext
from kubefox.resources import AppDeployment, Environment, VirtualEnvironment, parse_resource
from kubefox.router import ResourceView, Router
from kubefox.store import MemoryStore
from kubefox.store.typed import TypedStore

PLATFORM = "demo"
NAMESPACE = "kubefox-demo"
APP = "hello-world"
DEPLOYMENT = "hello-world-main"
VE = "qa"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
FRONTEND_HASH = "9c1b7b9b3f0e4e0e8a8a1d2c3b4a5f60"
BACKEND_HASH = "3fbfcb274c2116d4d82271da41074135"
HASHES = {"frontend": FRONTEND_HASH, "backend": BACKEND_HASH}
#: Ten seconds, in the event's nanoseconds.
TTL = 10_000_000_000

_COMPONENTS: dict[str, Any] = {
    "backend": {
        "type": "KubeFox",
        "defaultHandler": True,
        "envVarSchema": {"who": {"required": True}},
        "hash": BACKEND_HASH,
    },
    "frontend": {
        "type": "KubeFox",
        "dependencies": {"backend": {"type": "KubeFox"}},
        "routes": [
            {
                "id": 0,
                "rule": "Path(`/{{.Vars.subPath}}/hello`)",
                "envVarSchema": {"subPath": {"required": True}},
            }
        ],
        "hash": FRONTEND_HASH,
    },
}


def components() -> dict[str, Any]:
    """A fresh copy of hello-world's component definitions, to edit for a variant."""
    return copy.deepcopy(_COMPONENTS)


def app_deployment(
    name: str = DEPLOYMENT, *, definitions: dict[str, Any] | None = None
) -> AppDeployment:
    """The hello-world AppDeployment, or one with other component ``definitions``."""
    resource = parse_resource(
        {
            "apiVersion": "kubefox.xigxog.io/v1alpha1",
            "kind": "AppDeployment",
            "metadata": {"name": name},
            "spec": {
                "appName": APP,
                "commit": COMMIT,
                "commitTime": "2024-02-01T16:24:21Z",
                "branch": "main",
                "components": definitions if definitions is not None else components(),
            },
        }
    )
    assert isinstance(resource, AppDeployment)
    return resource


def environment(name: str = VE, **variables: Any) -> Environment:
    """An Environment with ``variables`` (hello-world's qa vars by default)."""
    resource = parse_resource(
        {
            "apiVersion": "kubefox.xigxog.io/v1alpha1",
            "kind": "Environment",
            "metadata": {"name": name},
            "spec": {"releasePolicy": {"type": "Testing"}},
            "data": {"vars": variables if variables else {"who": "World", "subPath": "qa"}},
        }
    )
    assert isinstance(resource, Environment)
    return resource


def virtual_environment(
    name: str = VE, *, environment: str = VE, **variables: Any
) -> VirtualEnvironment:
    """A VirtualEnvironment on ``environment``, overriding ``variables``."""
    document: dict[str, Any] = {
        "apiVersion": "kubefox.xigxog.io/v1alpha1",
        "kind": "VirtualEnvironment",
        "metadata": {"name": name},
        "spec": {"environment": environment},
    }
    if variables:
        document["data"] = {"vars": variables}
    resource = parse_resource(document)
    assert isinstance(resource, VirtualEnvironment)
    return resource


async def apply_hello_world(typed: TypedStore) -> None:
    """Write hello-world's AppDeployment, Environment qa and VirtualEnvironment qa."""
    await typed.apply(app_deployment())
    await typed.apply(environment())
    await typed.apply(virtual_environment())


def instance(name: str, *, id: str = "i1", hash: str | None = None) -> Component:
    """One running instance of hello-world component ``name``."""
    return Component(
        type="KubeFox",
        app=APP,
        name=name,
        hash=HASHES.get(name, "c" * 32) if hash is None else hash,
        id=id,
    )


def context(
    *, deployment: str = DEPLOYMENT, ve: str = VE, platform: str = PLATFORM
) -> EventContext:
    """The event context naming ``deployment`` in ``ve``."""
    return EventContext(platform=platform, virtual_environment=ve, app_deployment=deployment)


def request(
    source: Component,
    target: str | Component,
    *,
    ttl: int = TTL,
    event_context: EventContext | None = None,
    category: Category = Category.REQUEST,
    values: dict[str, Any] | None = None,
) -> Event:
    """A component-to-component request from ``source`` to ``target`` (a name: name-only)."""
    return Event(
        type=TYPE_KUBEFOX,
        category=category,
        ttl=ttl,
        context=context() if event_context is None else event_context,
        source=source,
        target=Component(type="KubeFox", name=target) if isinstance(target, str) else target,
        values=values or {},
    )


def genesis(path: str, *, deployment: str = DEPLOYMENT, ve: str = VE) -> Event:
    """An HTTP request entering the platform with ``kf-dep``/``kf-ve`` (empty: not given)."""
    return Event(
        type=TYPE_HTTP,
        category=Category.REQUEST,
        ttl=TTL,
        context=EventContext(platform=PLATFORM, virtual_environment=ve, app_deployment=deployment),
        source=Component(type="HTTPAdapter", name="httpsrv", hash="0" * 32, id="srv1"),
        values={"method": "GET", "path": path, "host": "localhost"},
    )


@dataclasses.dataclass
class Platform:
    """A store with hello-world in it, and a router reading it through a live view."""

    store: MemoryStore
    typed: TypedStore
    view: ResourceView
    router: Router

    async def settle(self) -> None:
        """Return once the view has every change written so far."""
        await self.view.wait_for_revision(await self.store.revision())


@contextlib.asynccontextmanager
async def running_platform(platform: str = PLATFORM) -> AsyncIterator[Platform]:
    """hello-world in a MemoryStore, followed by a view, for the ``with`` block."""
    store = MemoryStore()
    typed = TypedStore(store, namespace=NAMESPACE)
    await apply_hello_world(typed)
    view = ResourceView(store, namespace=NAMESPACE)
    following = asyncio.create_task(view.run())
    try:
        await view.wait_ready()
        yield Platform(store, typed, view, Router(view, platform=platform))
    finally:
        await store.aclose()  # ends the watch, so the view's run returns
        await following
