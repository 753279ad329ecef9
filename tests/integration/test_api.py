"""The control-plane API over a real JetStream store: resources, artifacts, watch, fuzzing.

The API runs in a thread with its own event loop (uvicorn on a free port) so
that synchronous clients (schemathesis, requests) can call it from the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import hypothesis
import hypothesis.errors
import pytest
import schemathesis
from hypothesis import HealthCheck
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode

from kubefox.api import ApiServer, ApiSettings, create_app
from kubefox.api.app import routes
from kubefox.publish import SourceFile, component_hash, package
from kubefox.router import ResourceView
from kubefox.store.jetstream import JetStreamStore
from kubefox.store.jetstream_objects import JetStreamArtifactStore

pytestmark = pytest.mark.integration

NAMESPACE = "kubefox-demo"
#: Examples per operation and mode: enough to reach every status, small enough for seconds.
EXAMPLES = 10
#: Resource bodies are large documents that take hypothesis ~0.3-0.6 s each to generate.
BODY_EXAMPLES = 4


@dataclasses.dataclass(frozen=True, kw_only=True)
class Served:
    """An API served from a thread: its URL, and a way to stop it."""

    url: str


HEADER_TIMEOUT = 0.5


@contextlib.contextmanager
def served_api(nats_url: str) -> Iterator[Served]:
    """The API over fresh JetStream buckets, served by uvicorn in a thread of its own."""
    started = threading.Event()
    state: dict[str, Any] = {}

    async def serve() -> None:
        suffix = uuid.uuid4().hex
        store = await JetStreamStore.connect(nats_url, bucket=f"api-{suffix}")
        artifacts = await JetStreamArtifactStore.connect(nats_url, bucket=f"art-{suffix}")
        view = ResourceView(store, namespace=NAMESPACE)
        closing = asyncio.Event()
        settings = ApiSettings(shutdown_grace=1.0, max_wait=2.0, header_timeout=HEADER_TIMEOUT)
        app = create_app(
            store=store,
            artifacts=artifacts,
            view=view,
            platform="demo",
            namespace=NAMESPACE,
            settings=settings,
            closing=closing,
        )
        server = ApiServer(settings, app, closing=closing)
        state["stop"] = asyncio.Event()
        state["loop"] = asyncio.get_running_loop()
        try:
            async with asyncio.TaskGroup() as tasks:
                follower = tasks.create_task(view.run())
                serving = tasks.create_task(server.run())
                await view.wait_ready()
                await server.started.wait()
                state["url"] = server.url
                started.set()
                await state["stop"].wait()
                server.stop()
                await serving
                follower.cancel()
        finally:
            await artifacts.aclose()
            await store.aclose()
            started.set()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(30), "the API did not start"
    assert "url" in state, "the API failed to start"
    try:
        yield Served(url=state["url"])
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(30)


@pytest.fixture(scope="module")
def api(nats_server: Any) -> Iterator[Served]:
    """One API for the module's tests (each uses its own names)."""
    with served_api(nats_server.url) as served:
        yield served


def test_api_round_trip_over_jetstream(api: Served) -> None:
    """Apply, get, list by label and delete work against the real store."""
    env = {"metadata": {"name": "rt"}, "data": {"vars": {"who": "World"}}}
    ve = {"metadata": {"name": "rt"}, "spec": {"environment": "rt"}}
    with httpx.Client(base_url=api.url) as client:
        created = client.put("/api/v1/resources/env/rt", json=env)
        client.put("/api/v1/resources/ve/rt", json=ve)
        listed = client.get(
            "/api/v1/resources/ve", params={"labelSelector": "kubefox.xigxog.io/environment=rt"}
        )
        deleted = client.delete("/api/v1/resources/ve/rt")
        missing = client.get("/api/v1/resources/ve/rt")

    assert created.status_code == 201
    assert [i["metadata"]["name"] for i in listed.json()["items"]] == ["rt"]
    assert deleted.status_code == 200
    assert missing.status_code == 404
    assert missing.json()["detail"].startswith('VirtualEnvironment "rt" not found')


def test_api_artifacts_are_stored_in_the_object_store(api: Served) -> None:
    """An artifact uploaded over HTTP is in JetStream and reads back."""
    files = (SourceFile(path="main.py", mode=0o755, content=b"print(1)\n"),)
    name = f"app.comp.{component_hash(files)}"
    with httpx.Client(base_url=api.url) as client:
        stored = client.put(f"/api/v1/artifacts/{name}", content=package(files))
        exists = client.head(f"/api/v1/artifacts/{name}")
        got = client.get(f"/api/v1/artifacts/{name}")

    assert stored.status_code == 201
    assert exists.status_code == 200
    assert got.content == package(files)


def test_api_watch_streams_changes_from_jetstream(api: Served) -> None:
    """The NDJSON watch follows the KV bucket."""
    with httpx.Client(base_url=api.url, timeout=10) as client:
        start = client.get("/api/v1/healthz").json()["revision"]
        with client.stream("GET", "/api/v1/watch", params={"fromRevision": start}) as stream:
            client.put("/api/v1/resources/env/watched", json={"metadata": {"name": "watched"}})
            first = json.loads(next(stream.iter_lines()))

    assert (first["type"], first["kind"], first["name"]) == ("PUT", "Environment", "watched")


def test_release_endpoints_report_missing_things(api: Served) -> None:
    """Release, history and rollback answer problems for what does not exist."""
    with httpx.Client(base_url=api.url) as client:
        no_ve = client.post("/api/v1/virtualenvironments/nope/release", json={"ref": "v1"})
        bad = client.post("/api/v1/virtualenvironments/nope/release", json={"wrong": 1})
        history = client.get("/api/v1/virtualenvironments/nope/history")
        rollback = client.post("/api/v1/virtualenvironments/nope/rollback")

    assert no_ve.status_code == 404
    assert bad.status_code == 400
    assert {e["path"] for e in bad.json()["errors"]} == {"$.ref", "$.wrong"}
    assert (history.status_code, rollback.status_code) == (404, 404)


def test_openapi_describes_every_route(api: Served) -> None:
    """Every route the application serves is in /openapi.json, with every method."""
    document = httpx.get(f"{api.url}/openapi.json").json()

    for route in routes():
        described = document["paths"][route.path]
        for method in route.methods or ():
            if method == "HEAD" and "head" not in described:
                assert "get" in described  # Starlette answers HEAD for every GET
                continue
            assert method.lower() in described, (route.path, method)


def test_api_survives_schemathesis_without_a_server_error(api: Served) -> None:
    """Generated requests (valid and invalid) from the OpenAPI document never get a 5xx."""
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        if operation.path == "/api/v1/watch":
            continue  # an endless stream; tested above with bounds
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @hypothesis.settings(
                max_examples=BODY_EXAMPLES if "{kind}" in operation.path else EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
                phases=[hypothesis.Phase.generate],
            )
            @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
            def call(case: schemathesis.Case[Any]) -> None:
                response = case.call(base_url=api.url, timeout=10)
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path}: {response.text[:300]}")

            try:
                call()
            except hypothesis.errors.Unsatisfiable:
                # nothing to make invalid in an operation without parameters or body
                assert mode is GenerationMode.NEGATIVE

    assert operations >= 14
    assert failures == []


async def test_a_client_that_never_finishes_its_headers_gets_408(api: Served) -> None:
    """A slow client cannot hold an API connection: 408 at the header deadline."""
    host, port = api.url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    started = time.monotonic()
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never the blank line
    await writer.drain()

    answer = await asyncio.wait_for(reader.read(), timeout=HEADER_TIMEOUT + 5)
    elapsed = time.monotonic() - started
    writer.close()

    assert answer.startswith(b"HTTP/1.1 408")
    assert elapsed < HEADER_TIMEOUT + 2
