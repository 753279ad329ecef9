"""``fox test send``: the YAML file is checked before anything is sent."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kubefox.cli.main import app
from kubefox.cli.testevents import TestEvent, parse_test_event
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
