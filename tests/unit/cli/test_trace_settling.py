"""fox trace waits for a trace's spans that are still on their way (pure logic, no platform)."""

from __future__ import annotations

from typing import Any

import pytest

from kubefox.cli import telemetry


def _span(span_id: str, parent: str | None, end_ns: int = 0) -> dict[str, Any]:
    return {"span_id": span_id, "parent_span_id": parent, "end_ns": end_ns}


def test_a_trace_missing_spans_is_fetched_again_until_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Spans whose parents are not in the trace yet (a role exports late): fetched again."""
    monkeypatch.setattr("kubefox.cli.telemetry.time.sleep", lambda _: None)
    partial = {"spans": [_span("a", None), _span("d", "c")]}  # c is still in a component
    whole = {"spans": [_span("a", None), _span("b", "a"), _span("c", "b"), _span("d", "c")]}
    answers = [partial, partial, whole]

    document = telemetry._settled(lambda: answers.pop(0), latest=False)

    assert document is whole
    assert answers == []


def test_a_whole_trace_under_a_remote_parent_is_not_waited_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The root's parent is the caller's (outside the trace): one orphan is a whole trace."""
    monkeypatch.setattr("kubefox.cli.telemetry.time.sleep", lambda _: None)
    whole = {"spans": [_span("a", "caller"), _span("b", "a")]}
    fetched = []

    def fetch() -> dict[str, Any]:
        fetched.append(1)
        return whole

    assert telemetry._settled(fetch, latest=False) is whole
    assert len(fetched) == 1
