"""Command parsing that needs no platform: usage errors, release sub-commands, init, help."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kubefox.cli.init import template_files
from kubefox.cli.main import app

runner = CliRunner()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """A state directory where no platform runs."""
    return tmp_path / "state"


def test_every_command_has_help_with_examples() -> None:
    """--help works for every command and shows examples."""
    for command in ("up", "down", "status", "init", "publish", "apply", "get", "delete"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0, command
        assert "Example" in result.output, command
    result = runner.invoke(app, ["release", "--help"])
    assert "fox release v1 --virtual-env qa" in result.output


def test_commands_without_platform_say_to_run_fox_up(state_dir: Path) -> None:
    """Every platform command fails with exit 3 and the same hint when nothing runs."""
    for args in (
        ["get", "ve"],
        ["status"],
        ["delete", "ve", "qa"],
        ["release", "v1", "-e", "qa"],
        ["release", "history", "qa"],
        ["release", "rollback", "qa"],
    ):
        result = runner.invoke(app, [*args, "--state-dir", str(state_dir)])
        assert result.exit_code == 3, args
        assert "start it with `fox up`" in result.stderr, args
        assert "Traceback" not in result.output


def test_api_option_that_does_not_answer_is_unavailable(state_dir: Path) -> None:
    """--api pointing at nothing is the same clear "not running" error."""
    result = runner.invoke(app, ["get", "env", "--api", "http://127.0.0.1:9"])

    assert result.exit_code == 3
    assert "cannot reach the platform API at http://127.0.0.1:9" in result.stderr


def test_release_without_virtual_env_is_a_usage_error(state_dir: Path) -> None:
    """fox release REF needs --virtual-env."""
    result = runner.invoke(app, ["release", "v1", "--state-dir", str(state_dir)])

    assert result.exit_code == 2
    assert "--virtual-env" in result.output


def test_unknown_output_format_is_a_usage_error(state_dir: Path) -> None:
    """-o xml is refused by the parser, before anything is asked."""
    result = runner.invoke(app, ["get", "ve", "-o", "xml", "--state-dir", str(state_dir)])

    assert result.exit_code == 2
    assert "xml" in result.output


def test_bad_wait_duration_is_a_usage_error(state_dir: Path) -> None:
    """--wait forever is refused with the accepted forms."""
    result = runner.invoke(app, ["release", "v1", "-e", "qa", "--wait", "forever"])

    assert result.exit_code == 2
    assert "not a duration" in result.output


def test_down_without_platform_is_a_no_op(state_dir: Path) -> None:
    """fox down is idempotent: nothing running is not an error."""
    result = runner.invoke(app, ["down", "--state-dir", str(state_dir)])

    assert result.exit_code == 0
    assert "nothing to stop" in result.stderr


def test_version_is_json() -> None:
    """fox version prints machine-readable JSON."""
    result = runner.invoke(app, ["version"])

    assert result.exit_code == 0
    assert result.stdout.startswith('{"version": ')


def test_template_is_the_hello_world_example_without_caches() -> None:
    """fox init's template is examples/hello-world, bytecode and caches left out."""
    files = template_files()

    assert {"app.yaml", ".gitignore", "components/backend/main.py"} <= set(files)
    assert "hack/environments/qa.yaml" in files
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in files)


def test_init_creates_a_committed_app(tmp_path: Path) -> None:
    """fox init writes the app and commits it on branch main."""
    result = runner.invoke(app, ["init", str(tmp_path / "app")])

    assert result.exit_code == 0, result.output
    log = subprocess.run(
        ["git", "-C", str(tmp_path / "app"), "log", "--format=%s %D"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert log.stdout.strip() == "And so it begins... HEAD -> main"
    assert (tmp_path / "app" / "app.yaml").read_text().startswith("name: hello-world")
