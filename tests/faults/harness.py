"""What the fault tests share: deploying a test app, timing requests, counting outcomes.

A plain module (never a conftest), used by the tests in this directory and by
``load_with_kills.py``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx

from kubefox.core.errors import KubeFoxError
from kubefox.operator import InstanceSpec, LocalScheduler
from kubefox.platform import EmbeddedPlatform
from kubefox.resources import VirtualEnvironment
from kubefox.store.artifacts import artifact_name
from tests.e2e.gitapps import app_repo

FAULT_APPS = Path(__file__).resolve().parent / "apps"
ROGUE = FAULT_APPS / "rogue"
STEADY = FAULT_APPS / "steady"

#: Slack on top of a deadline for a request to count as answered "by the deadline":
#: scheduling, the HTTP hop and a loaded test machine.
MARGIN = 1.5


def platform_yaml(*, timeout: float) -> str:
    """The Platform resource of the test platform with an event timeout of ``timeout`` s."""
    return f"""
apiVersion: kubefox.xigxog.io/v1alpha1
kind: Platform
metadata:
  name: demo
spec:
  events:
    timeoutSeconds: {timeout:g}
"""


async def deploy(
    platform: EmbeddedPlatform, app: Path, workdir: Path, *, event_timeout: float
) -> str:
    """Publish ``app`` from a fresh git copy, apply its environments; its deployment name."""
    repo = app_repo(app, workdir / app.name)
    await platform.apply_yaml(platform_yaml(timeout=event_timeout))
    result = await platform.publish(repo)
    await platform.apply_path(repo / "hack" / "environments")
    await platform.wait_available(result.name)
    return result.name


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """One request as a client saw it: status (0: no HTTP answer), body, seconds taken."""

    status: int
    text: str
    elapsed: float


async def timed_get(
    http: httpx.AsyncClient, path: str, *, params: dict[str, str] | None = None
) -> Outcome:
    """GET ``path``; a transport failure or client timeout is status 0, never an exception."""
    started = time.monotonic()
    try:
        response = await http.get(path, params=params)
    except httpx.HTTPError as exc:
        return Outcome(0, f"{type(exc).__name__}: {exc}", time.monotonic() - started)
    return Outcome(response.status_code, response.text, time.monotonic() - started)


def by_status(outcomes: list[Outcome]) -> dict[int, int]:
    """How many outcomes had each status, sorted by status."""
    return dict(sorted(collections.Counter(o.status for o in outcomes).items()))


async def until(
    predicate: Callable[[], Awaitable[bool]], *, within: float, every: float = 0.1
) -> None:
    """Poll ``predicate()`` until it is true; fail after ``within`` seconds.

    For what only shows from outside (a server answering again after a restart);
    anything that can be awaited is awaited instead.
    """
    deadline = time.monotonic() + within
    while True:
        if await predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {within}s")
        await asyncio.sleep(every)


def instance_pid(platform: EmbeddedPlatform, app: str, component: str) -> int:
    """The process id of the platform's running instance of ``app``/``component``."""
    (state,) = [
        s for s in platform.scheduler.instances() if (s.app, s.component) == (app, component)
    ]
    assert state.pid is not None, state
    return state.pid


def instance_hash(platform: EmbeddedPlatform, app: str, component: str) -> str:
    """The hash of the platform's instance set of ``app``/``component``."""
    (state,) = [
        s for s in platform.scheduler.instances() if (s.app, s.component) == (app, component)
    ]
    return state.hash


@contextlib.asynccontextmanager
async def second_node(platform: EmbeddedPlatform, workdir: Path) -> AsyncIterator[LocalScheduler]:
    """Another machine's process supervisor, running extra replicas of the platform's components.

    The operator runs one instance per component version; a replica started
    here joins the same NATS queue group, which is all a replica is.
    """
    scheduler = LocalScheduler(
        artifacts=platform.artifacts,
        work_dir=workdir,
        backoff_initial=0.2,
        stop_grace=2.0,
        # each replica gets its own NATS credential, as the platform's own instances do
        credentials=platform.security.components,
    )
    supervising = asyncio.create_task(scheduler.run(), name="second-node")
    try:
        yield scheduler
    finally:
        await scheduler.aclose()
        await supervising


def replica_spec(platform: EmbeddedPlatform, app: str, component: str) -> InstanceSpec:
    """What the operator would run for ``app``/``component``, for :func:`second_node`."""
    component_hash = instance_hash(platform, app, component)
    settings = platform.settings
    return InstanceSpec(
        app=app,
        component=component,
        hash=component_hash,
        artifact=artifact_name(app, component, component_hash),
        env={
            "KUBEFOX_KIT_PLATFORM": settings.name,
            "KUBEFOX_KIT_APP": app,
            "KUBEFOX_KIT_NAME": component,
            "KUBEFOX_KIT_HASH": component_hash,
            "KUBEFOX_KIT_NATS_URL": platform.nats.url,
            "KUBEFOX_KIT_INSTANCES_BUCKET": settings.instances_bucket,
            "KUBEFOX_KIT_LOG_FORMAT": "json",
        },
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Sent:
    """A request of a load run: when it was sent (seconds from the start) and how it ended."""

    at: float
    outcome: Outcome


async def run_load(
    http: httpx.AsyncClient,
    path: str,
    *,
    params: dict[str, str],
    clients: int,
    seconds: float,
) -> list[Sent]:
    """``clients`` loops each sending GET ``path`` back to back for ``seconds``; every request."""
    started = time.monotonic()
    sent: list[Sent] = []

    async def client() -> None:
        while (at := time.monotonic() - started) < seconds:
            sent.append(Sent(at, await timed_get(http, path, params=params)))

    async with asyncio.TaskGroup() as tasks:
        for _ in range(clients):
            tasks.create_task(client())
    return sent


def task_named(name: str) -> asyncio.Task[object]:
    """The one task of this event loop called ``name`` (the platform names its roles' tasks)."""
    (task,) = [t for t in asyncio.all_tasks() if t.get_name() == name]
    return task


@dataclasses.dataclass(slots=True)
class Writes:
    """What a :func:`keep_writing` loop did: names acknowledged, and errors by type."""

    acknowledged: list[str] = dataclasses.field(default_factory=list)
    failed: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    slowest: float = 0.0


async def keep_writing(
    platform: EmbeddedPlatform,
    writes: Writes,
    stop: asyncio.Event,
    *,
    prefix: str,
    pause: float = 0.0,
) -> None:
    """Create VirtualEnvironments ``<prefix>-0``, ``-1``... one after the other until ``stop``.

    A create that returns was acknowledged by JetStream (synced to disk); one that
    raises may or may not have been stored, and only its error type is kept.
    ``pause`` seconds separate two writes (the writer shares the platform's loop).
    """
    index = 0
    while not stop.is_set():
        name = f"{prefix}-{index}"
        index += 1
        resource = VirtualEnvironment.model_validate(
            {"metadata": {"name": name}, "spec": {"environment": "steady"}}
        )
        started = time.monotonic()
        try:
            await platform.resources.create(resource)
        except KubeFoxError as exc:
            writes.failed[type(exc).__name__] += 1
            # The store is down: try again shortly rather than spin.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.2):
                    await stop.wait()
        else:
            writes.acknowledged.append(name)
        writes.slowest = max(writes.slowest, time.monotonic() - started)
        if pause:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await stop.wait()


async def stored_names(platform: EmbeddedPlatform, prefix: str) -> set[str]:
    """Names of the VirtualEnvironments the store holds that start with ``<prefix>-``."""
    found = await platform.resources.find(VirtualEnvironment)
    return {ve.metadata.name for ve in found if ve.metadata.name.startswith(f"{prefix}-")}
