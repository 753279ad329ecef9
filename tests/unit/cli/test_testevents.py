"""``fox test send``: the YAML file is checked before anything is sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kubefox.cli.main import app
from kubefox.cli.testevents import TYPE_ROUTES, TestEvent, failed, parse_test_event, routes_text
from kubefox.core.errors import InvalidError

runner = CliRunner()

GOOD = """
type: io.kubefox.health
deployment: hello-world-main
virtualEnvironment: qa
method: post
path: /qa/hello
headers: {x-trace: 1}
query: {name: World}
body: hi
"""


def test_a_complete_file_is_parsed() -> None:
    """Every field is read; the method is upper-cased and scalar header values become text."""
    assert parse_test_event(GOOD) == TestEvent(
        type="io.kubefox.health",
        deployment="hello-world-main",
        virtual_environment="qa",
        method="POST",
        path="/qa/hello",
        headers={"x-trace": "1"},
        query={"name": "World"},
        body="hi",
    )


def test_optional_fields_have_defaults() -> None:
    """Only the type and the context are required."""
    event = parse_test_event("type: com.example.ping\ndeployment: d\nvirtualEnvironment: qa\n")
    assert (event.method, event.path, event.headers, event.query, event.body) == (
        "GET",
        "/",
        {},
        {},
        "",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("type: [unclosed", "not valid YAML"),
        ("- a list", "must be a mapping"),
        ("type: t\ndeployment: d\n", "missing required field(s) virtualEnvironment"),
        ("type: t\ndeployment: d\nvirtualEnvironment: v\nmethd: GET\n", "unknown field(s) methd"),
        ("type: t\ndeployment: d\nvirtualEnvironment: v\nheaders: [a]\n", "headers must be"),
        ("type: t\ndeployment: d\nvirtualEnvironment: v\npath: x\n", "path must start with /"),
        ("type: 3\ndeployment: d\nvirtualEnvironment: v\n", "type must be a string"),
    ],
)
def test_mistakes_are_named(text: str, message: str) -> None:
    """Each mistake gets a message naming the file and the field."""
    with pytest.raises(InvalidError) as raised:
        parse_test_event(text, source="ping.yaml")
    assert message in str(raised.value)
    assert "ping.yaml" in str(raised.value)


def test_send_with_a_bad_file_exits_1_with_the_reason(tmp_path: Path) -> None:
    """``fox test send`` stops before contacting anything and says what is wrong."""
    bad = tmp_path / "ping.yaml"
    bad.write_text("type: com.example.ping\ndeployment: d\n")
    result = runner.invoke(
        app,
        ["test", "send", str(bad), "--http", "http://127.0.0.1:9", "--state-dir", str(tmp_path)],
    )
    assert result.exit_code == 1
    assert "missing required field(s) virtualEnvironment" in result.output


def test_send_with_a_missing_file_exits_1(tmp_path: Path) -> None:
    """A file that cannot be read is an error, not a traceback."""
    result = runner.invoke(app, ["test", "send", str(tmp_path / "nope.yaml"), "--http", "x"])
    assert result.exit_code == 1
    assert "cannot be read" in result.output


EXAMPLE_ROUTES = (
    Path(__file__).parents[3] / "examples" / "hello-world" / "hack" / "test-events" / "routes.yaml"
)

REPORT: dict[str, Any] = {
    "appDeployment": "d",
    "virtualEnvironment": "qa",
    "status": "failed",
    "summary": {
        "routes": 4,
        "2xx": 1,
        "3xx": 0,
        "4xx": 0,
        "5xx": 1,
        "errors": 0,
        "skipped": 1,
        "notTried": 1,
    },
    "routes": [
        {
            "component": "web",
            "routeId": 0,
            "rule": "Path(`/{{.Vars.p}}/a`)",
            "resolvedRule": "Path(`/qa/a`)",
            "request": {"method": "GET", "path": "/qa/a", "query": {"q": ["1", "2"]}},
            "outcome": "answered",
            "status": 200,
            "durationMs": 1.5,
        },
        {
            "component": "web",
            "routeId": 1,
            "rule": "Path(`/b`)",
            "resolvedRule": "Path(`/b`)",
            "request": {"method": "POST", "path": "/b"},
            "outcome": "answered",
            "status": 500,
            "durationMs": 2.0,
            "body": "unexpected error\nmore",
        },
        {
            "component": "web",
            "routeId": 2,
            "rule": "Path(`/a`) && Path(`/b`)",
            "resolvedRule": "Path(`/a`) && Path(`/b`)",
            "outcome": "skipped",
            "reason": "no request can be generated: one segment cannot be both `a` and `b`",
        },
    ],
}


def test_the_example_routes_file_is_a_routes_event_for_hello_world() -> None:
    """The file shipped with hello-world parses, with its options as query parameters."""
    event = parse_test_event(EXAMPLE_ROUTES.read_text(), source=str(EXAMPLE_ROUTES))
    assert (event.type, event.deployment, event.virtual_environment) == (
        TYPE_ROUTES,
        "hello-world-main",
        "qa",
    )
    assert event.query == {"limit": "50", "timeout": "5"}


def test_a_routes_report_is_a_table_with_a_headline_and_totals() -> None:
    """One line per route: its rule, request, status, time, and why it failed or was skipped."""
    lines = routes_text(REPORT).splitlines()
    assert lines[0] == "io.kubefox.routes: d in qa: failed"
    assert lines[2].split() == ["COMPONENT", "ROUTE", "RULE", "REQUEST", "STATUS", "TIME", "NOTE"]
    assert lines[3].split() == ["web", "0", "Path(`/qa/a`)", "GET", "/qa/a?q=1&q=2", "200", "1.5ms"]
    assert lines[4].split()[3:] == ["POST", "/b", "500", "2ms", "unexpected", "error"]
    skipped = lines[5].split("   ")
    assert [cell.strip() for cell in skipped if cell.strip()][3:] == [
        "-",
        "-",
        "-",
        "skipped: no request can be generated: one segment cannot be both `a` and `b`",
    ]
    assert lines[-1] == "4 routes: 1 2xx, 0 3xx, 0 4xx, 1 5xx, 0 errors, 1 skipped, 1 not tried"


@pytest.mark.parametrize(
    ("event_type", "status", "document", "expected"),
    [
        (TYPE_ROUTES, 200, REPORT, True),
        (TYPE_ROUTES, 200, {**REPORT, "status": "passed"}, False),
        (TYPE_ROUTES, 404, None, True),
        ("io.kubefox.health", 200, {"status": "unhealthy"}, False),
        ("com.example.ping", 500, None, True),
    ],
)
def test_send_fails_on_a_non_2xx_reply_or_a_failed_routes_report(
    event_type: str, status: int, document: dict[str, Any] | None, expected: bool
) -> None:
    """Exit 1 is for CI: any non-2xx answer, and a routes report with a 5xx or an error."""
    event = TestEvent(type=event_type, deployment="d", virtual_environment="qa")
    reply: dict[str, Any] = {"status": status, "headers": {}, "body": ""}
    if document is not None:
        reply["json"] = document
    assert failed(event, reply) is expected


def test_send_help_lists_the_builtin_events_and_the_routes_options() -> None:
    """``fox test send --help`` documents the three built-in events and how to switch them on."""
    result = runner.invoke(app, ["test", "send", "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    for text in (
        "io.kubefox.health",
        "io.kubefox.echo",
        "io.kubefox.routes",
        "spec.events.builtin",
        "kubefox.xigxog.io/builtin-events",
        "limit",
        "timeout",
    ):
        assert text in result.output
