"""The hello-world resources of upstream §9.1 for httpsrv tests (a plain module, never a conftest).

Used by the unit tests (over a ``MemoryStore``) and the integration tests (over
JetStream), so both route the same app through the same resources.
"""

from __future__ import annotations

from typing import Any

from kubefox.core.events import Component, ComponentType
from kubefox.resources import (
    Environment,
    Platform,
    Resource,
    VirtualEnvironment,
    load_yaml,
    parse_resource,
)
from kubefox.store.typed import TypedStore
from tests.unit.resources.helpers import (
    BACKEND_HASH,
    FRONTEND_HASH,
    UPSTREAM,
    hello_world_document,
)

NAMESPACE = "kubefox-demo"
APP = "hello-world"
DEPLOYMENT = "hello-world-main"
GREETING = "👋 Hello World!"
#: A VirtualEnvironment whose Environment lacks ``subPath``: every request is a 400.
BROKEN_VE = "broken"

FRONTEND = Component(type=ComponentType.KUBEFOX, app=APP, name="frontend", hash=FRONTEND_HASH)
BACKEND = Component(type=ComponentType.KUBEFOX, app=APP, name="backend", hash=BACKEND_HASH)


def platform_resource(name: str, **events: Any) -> Platform:
    """The Platform resource ``name``, with ``spec.events`` fields (``maxSize=...``) if given."""
    spec: dict[str, Any] = {"events": events} if events else {}
    resource = parse_resource(
        {
            "apiVersion": "kubefox.xigxog.io/v1alpha1",
            "kind": "Platform",
            "metadata": {"name": name},
            "spec": spec,
        }
    )
    assert isinstance(resource, Platform)
    return resource


def hello_world_resources() -> list[Resource]:
    """The AppDeployment, Environments qa and prod with their VEs, and the broken pair."""
    resources: list[Resource] = [parse_resource(hello_world_document())]
    for name in ("qa", "prod"):
        resources += load_yaml((UPSTREAM / "hello-world" / f"{name}.yaml").read_text())
    resources.append(
        Environment.model_validate(
            {"metadata": {"name": BROKEN_VE}, "data": {"vars": {"who": "Nobody"}}}
        )
    )
    resources.append(
        VirtualEnvironment.model_validate(
            {"metadata": {"name": BROKEN_VE}, "spec": {"environment": BROKEN_VE}}
        )
    )
    return resources


async def write_hello_world(store: TypedStore, *, platform: Platform | None = None) -> int:
    """Write the hello-world resources (and ``platform``); the store revision afterwards."""
    resources = hello_world_resources()
    if platform is not None:
        resources.append(platform)
    for resource in resources:
        await store.create(resource)
    return await store.store.revision()
