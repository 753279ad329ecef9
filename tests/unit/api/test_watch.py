"""The watch stream: changes as NDJSON or server-sent events, bounded and resumable."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.unit.api.bench import Api, running_api

QA = {"metadata": {"name": "qa"}}
PROD = {"metadata": {"name": "prod"}}


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    """Streams need the real server: httpx's ASGI transport buffers whole responses."""
    async with running_api(served=True) as running:
        yield running


async def first(response: httpx.Response, count: int) -> list[dict[str, Any]]:
    """The first ``count`` changes of an NDJSON watch response."""
    seen: list[dict[str, Any]] = []
    async for line in response.aiter_lines():
        seen.append(json.loads(line))
        if len(seen) == count:
            break
    return seen


async def test_watch_from_zero_gives_the_current_state_first(api: Api) -> None:
    """From revision 0 the existing resources come first, as PUT changes."""
    await api.client.put("/api/v1/resources/env/qa", json=QA)
    await api.client.put("/api/v1/resources/env/prod", json=PROD)

    async with api.client.stream("GET", "/api/v1/watch") as response:
        lines = await first(response, 2)

    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert [(c["type"], c["name"], c["revision"]) for c in lines] == [
        ("PUT", "qa", 1),
        ("PUT", "prod", 2),
    ]
    assert lines[0]["object"]["metadata"]["resourceVersion"] == "1"


async def test_watch_from_a_revision_streams_live_changes_and_deletes(api: Api) -> None:
    """Changes after the revision arrive as they happen, deletes included."""
    await api.client.put("/api/v1/resources/env/qa", json=QA)

    async with api.client.stream(
        "GET", "/api/v1/watch", params={"fromRevision": 1, "kind": "env"}
    ) as response:
        await api.client.put("/api/v1/resources/env/prod", json=PROD)
        await api.client.delete("/api/v1/resources/env/qa")
        seen = await first(response, 2)

    assert [(c["type"], c["name"]) for c in seen] == [("PUT", "prod"), ("DELETE", "qa")]
    assert seen[1]["object"] is None


async def test_watch_filters_by_kind(api: Api) -> None:
    """Only the kinds asked for are streamed."""
    await api.client.put("/api/v1/resources/env/qa", json=QA)
    ve = {"metadata": {"name": "qa"}, "spec": {"environment": "qa"}}
    await api.client.put("/api/v1/resources/ve/qa", json=ve)

    async with api.client.stream("GET", "/api/v1/watch", params={"kind": "ve"}) as response:
        await api.client.put("/api/v1/resources/env/prod", json=PROD)
        await api.client.put("/api/v1/resources/ve/prod", json={**ve, "metadata": {"name": "prod"}})
        seen = await first(response, 2)

    assert [(c["kind"], c["name"]) for c in seen] == [
        ("VirtualEnvironment", "qa"),
        ("VirtualEnvironment", "prod"),
    ]


async def test_watch_as_server_sent_events_resumes_from_last_event_id(api: Api) -> None:
    """SSE ids are revisions, so Last-Event-ID resumes after what was seen; timeouts end it."""
    await api.client.put("/api/v1/resources/env/qa", json=QA)
    await api.client.put("/api/v1/resources/env/prod", json=PROD)

    response = await api.client.get(
        "/api/v1/watch",
        params={"timeoutSeconds": 1},
        headers={"accept": "text/event-stream", "last-event-id": "1"},
    )

    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.startswith("id: 2\nevent: PUT\ndata: {")
    assert response.text.count("id: ") == 1


async def test_watch_ends_when_the_server_closes(api: Api) -> None:
    """Open watches end when the API stops, so shutdown never waits on them."""
    async with api.client.stream("GET", "/api/v1/watch", params={"fromRevision": 5}) as response:
        api.closing.set()
        body = [line async for line in response.aiter_lines()]

    assert body == []


async def test_watch_bad_parameters_are_invalid(api: Api) -> None:
    """A non-integer revision or an unknown kind is a 400 problem."""
    bad_revision = await api.client.get("/api/v1/watch", params={"fromRevision": "x"})
    bad_kind = await api.client.get("/api/v1/watch", params={"kind": "gadget"})

    assert bad_revision.status_code == 400
    assert bad_revision.json()["errors"][0]["path"] == "query.fromRevision"
    assert bad_kind.status_code == 400
