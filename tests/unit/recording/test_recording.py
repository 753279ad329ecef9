"""Recording's library: redaction, comparison with ignore rules, the recorder, replay requests."""

from __future__ import annotations

import asyncio

import pytest

from kubefox.core.events import EventContext
from kubefox.recording import (
    MemoryRecordings,
    RecordedResponse,
    Recorder,
    Recording,
    RecordingState,
    capture,
    compare,
    ignore_rules,
    replay_request,
)
from kubefox.recording.compare import parse_json_path

CONTEXT = EventContext(platform="demo", virtual_environment="qa", app_deployment="hello-v1")
SCOPE = {
    "method": "GET",
    "path": "/qa/hello",
    "raw_path": b"/qa/hello",
    "query_string": b"a=1&kf-ve=qa&kf-dep=hello-v1",
    "headers": [
        (b"host", b"example.test"),
        (b"authorization", b"Bearer secret"),
        (b"cookie", b"session=secret"),
        (b"accept", b"text/plain"),
    ],
}


def response(status: int = 200, body: bytes = b"hi", /, **headers: str) -> RecordedResponse:
    return RecordedResponse(status=status, headers=list(headers.items()), body=body)


def test_capture_drops_credentials_and_names_them() -> None:
    """Authorization, Cookie and Set-Cookie never reach the exchange; their names do."""
    exchange = capture(
        recording="r",
        event_id="e",
        scope=SCOPE,
        body=b"",
        status=200,
        response_headers=[(b"set-cookie", b"id=secret"), (b"content-type", b"text/plain")],
        response_body=b"ok",
        context=CONTEXT,
    )

    assert "secret" not in repr(exchange)
    assert exchange.redacted == ["authorization", "cookie", "set-cookie"]
    assert exchange.request.headers == [("host", "example.test"), ("accept", "text/plain")]
    assert exchange.app_deployment == "hello-v1"


def test_builtin_rules_ignore_dates_ids_and_context_headers() -> None:
    """Date, Kubefox-Event-Id and timestamps or UUIDs in a JSON body do not count."""
    old = response(
        200,
        b'{"at": "2024-01-01T10:00:00Z", "id": "0f8fad5b-d9cb-469f-a165-70867728950e"}',
        date="Mon, 01 Jan 2024 10:00:00 GMT",
        **{"kubefox-event-id": "1"},
    )
    new = response(
        200,
        b'{"id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",  "at": "2025-05-05T11:00:00.5+02:00"}',
        date="Tue, 02 Jan 2024 10:00:00 GMT",
        **{"kubefox-event-id": "2"},
    )

    assert compare(old, new, ignore_rules()) == []
    assert {d.field for d in compare(old, new, ignore_rules(builtin=False))} == {
        "body",
        "header:date",
        "header:kubefox-event-id",
    }


def test_json_paths_and_headers_can_be_ignored() -> None:
    """--ignore takes JSON paths (with [*]) and header names; the rest still counts."""
    old = response(200, b'{"items": [{"n": 1, "v": "a"}], "x": 1}', **{"x-trace": "1"})
    new = response(200, b'{"items": [{"n": 2, "v": "a"}], "x": 2}', **{"x-trace": "2"})

    differences = compare(old, new, ignore_rules(["$.items[*].n", "X-Trace"]))

    assert [d.field for d in differences] == ["body"]
    assert '-  "x": 1' in differences[0].diff
    assert '+  "x": 2' in differences[0].diff
    assert parse_json_path("$.a[0]['b c'][*]") == ("a", 0, "b c", "*")
    with pytest.raises(ValueError, match="JSON path"):
        parse_json_path("$.a[")


def test_status_and_text_body_differences_are_reported() -> None:
    """A changed status and a changed text body are two differences, with a unified diff."""
    differences = compare(response(200, b"Hello"), response(404, b"Hey"), ignore_rules())

    assert [(d.field, d.recorded, d.replayed) for d in differences] == [
        ("status", "200", "404"),
        ("body", "Hello", "Hey"),
    ]
    assert "-Hello" in differences[1].diff


def test_replay_request_targets_the_given_context() -> None:
    """The client's kf-* parameters are replaced by the replay's deployment and VE."""
    exchange = capture(
        recording="r",
        event_id="e",
        scope=SCOPE,
        body=b"",
        status=200,
        response_headers=[],
        response_body=b"",
        context=CONTEXT,
    )

    request = replay_request(exchange, deployment="hello-main", virtual_env="qa")

    assert request.target == "/qa/hello?a=1&kf-dep=hello-main&kf-ve=qa"


async def test_recorder_captures_only_recorded_ves_and_completes_at_its_bound() -> None:
    """Requests of the recorded VE are stored up to max requests; then the recording completes."""
    store = MemoryRecordings()
    recorder = Recorder(store, observer="h1")
    async with asyncio.TaskGroup() as tasks:
        running = tasks.create_task(recorder.run())
        await store.create(Recording(id="qa-1", virtual_environment="qa", max_requests=2))
        assert await store.observers("qa-1", wait=5) == ["h1"]
        other = EventContext(platform="demo", virtual_environment="prod", app_deployment="x")
        for context in (CONTEXT, other, CONTEXT, CONTEXT):
            if context.virtual_environment in recorder.active:
                recorder.capture(
                    scope=SCOPE,
                    body=b"",
                    status=200,
                    headers=[],
                    response_body=b"hi",
                    context=context,
                    event_id="e",
                )
        async with asyncio.timeout(5):
            async for recordings in store.follow():
                if recordings[0].state is RecordingState.COMPLETE:
                    break
        recorder.stop()
        await running

    found = await store.get("qa-1")
    assert (found.requests, found.state) == (2, RecordingState.COMPLETE)
    assert {e.virtual_environment for e in await store.exchanges("qa-1")} == {"qa"}
