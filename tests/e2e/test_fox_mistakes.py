"""User mistakes against a real platform: a clear message, a non-zero exit, nothing changed.

One platform (started with ``fox up``) serves the module: hello-world is
initialised with ``fox init``, its environments applied, ``hello-world-main``
and ``hello-world-v1`` published and v1 released to qa. Each test then makes
one mistake with ``fox`` and checks the message, the exit code and that the
store (every resource's resourceVersion) and the repository did not change.
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kubefox.cli.client import find_ca_file
from kubefox.cli.main import app
from tests.e2e.foxes import inventory, running_fox
from tests.e2e.gitapps import commit_all, git

runner = CliRunner()


@dataclasses.dataclass(frozen=True, kw_only=True)
class World:
    """The module's platform and app."""

    state_dir: Path
    repo: Path
    api: str
    tmp: Path

    def fox(self, *args: str) -> tuple[int, str, str]:
        """Run fox in process; (exit code, stdout, stderr)."""
        result = runner.invoke(
            app, list(args), env={"KUBEFOX_PLATFORM_STATE_DIR": str(self.state_dir)}
        )
        return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """hello-world published (main, v1) and v1 released to qa, on a platform of its own."""
    tmp = tmp_path_factory.mktemp("mistakes")
    state_dir, repo = tmp / "state", tmp / "hello"
    with running_fox(state_dir, tmp) as info:
        world = World(state_dir=state_dir, repo=repo, api=info["endpoints"]["api"], tmp=tmp)
        app_dir = ("--app", str(repo))
        for args in (
            ("init", str(repo)),
            ("apply", "-f", str(repo / "hack" / "environments")),
            ("publish", *app_dir),
            ("publish", *app_dir, "--version", "v1", "--create-tag"),
            ("release", "v1", "--virtual-env", "qa"),
        ):
            code, out, err = world.fox(*args)
            assert code == 0, (args, out, err)
        yield world


@pytest.fixture
def unchanged(world: World) -> Iterator[None]:
    """The store and the repository are the same after the test as before it."""
    ca_file = find_ca_file(world.state_dir)  # the API speaks HTTPS with security on
    before = inventory(world.api, ca_file)
    head = git(world.repo, "rev-parse", "HEAD")
    tags = git(world.repo, "tag")
    yield
    assert inventory(world.api, ca_file) == before
    assert git(world.repo, "rev-parse", "HEAD") == head
    assert git(world.repo, "tag") == tags


pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("unchanged")]


def test_mistake_platform_not_running(world: World) -> None:
    """A command with no platform in the state directory says to run fox up (exit 3)."""
    code, _, err = world.fox("get", "ve", "--state-dir", str(world.tmp / "elsewhere"))

    assert code == 3
    assert "the platform is not running" in err
    assert "start it with `fox up`" in err


def test_mistake_second_fox_up(world: World) -> None:
    """Starting a second platform in the same state directory is refused (exit 5)."""
    code, _, err = world.fox("up")

    assert code == 5
    assert "already running" in err
    assert "fox down" in err


def test_mistake_unknown_kind(world: World) -> None:
    """An unknown kind lists the kinds that exist (exit 1)."""
    code, _, err = world.fox("get", "gadgets")

    assert code == 1
    assert 'unknown resource kind "gadgets"' in err
    assert "VirtualEnvironment" in err


def test_mistake_missing_resource(world: World) -> None:
    """Getting a resource that does not exist names it (exit 4)."""
    code, _, err = world.fox("get", "ve", "staging")

    assert code == 4
    assert 'VirtualEnvironment "staging" not found' in err


def test_mistake_bad_yaml(world: World) -> None:
    """A YAML syntax error names the file, line and column; nothing is applied (exit 1)."""
    good = world.tmp / "yaml" / "a.yaml"
    good.parent.mkdir(exist_ok=True)
    good.write_text(
        "apiVersion: kubefox.xigxog.io/v1alpha1\nkind: Environment\nmetadata:\n  name: new\n"
    )
    (world.tmp / "yaml" / "b.yaml").write_text("kind: [\n")

    code, _, err = world.fox("apply", "-f", str(good.parent))

    assert code == 1
    assert "b.yaml" in err
    assert "line 2, column 1: YAML syntax error" in err


def test_mistake_invalid_resource_shows_every_error_with_its_path(world: World) -> None:
    """An invalid resource lists each error with its JSON path; nothing is applied (exit 1)."""
    bad = world.tmp / "invalid.yaml"
    bad.write_text(
        "apiVersion: kubefox.xigxog.io/v1alpha1\nkind: VirtualEnvironment\n"
        "metadata:\n  name: Bad_Name\nspec:\n  environmnet: qa\n"
    )

    code, _, err = world.fox("apply", "-f", str(bad))

    assert code == 1
    for path in ("$.metadata.name", "$.spec.environment", "$.spec.environmnet"):
        assert path in err


def test_mistake_apply_missing_file(world: World) -> None:
    """A file that does not exist is named (exit 1)."""
    code, _, err = world.fox("apply", "-f", str(world.tmp / "nope.yaml"))

    assert code == 1
    assert "nope.yaml does not exist" in err


def test_mistake_changing_a_virtual_environments_environment(world: World) -> None:
    """A VirtualEnvironment's environment is immutable (exit 1)."""
    moved = world.tmp / "moved.yaml"
    moved.write_text(
        "apiVersion: kubefox.xigxog.io/v1alpha1\nkind: VirtualEnvironment\n"
        "metadata:\n  name: qa\nspec:\n  environment: prod\n"
    )

    code, _, err = world.fox("apply", "-f", str(moved))

    assert code == 1
    assert "environment" in err
    assert "immutable" in err


def test_mistake_bad_label_selector(world: World) -> None:
    """A set-based selector is refused with the form that works (exit 1)."""
    code, _, err = world.fox("get", "apps", "-l", "app in (hello)")

    assert code == 1
    assert 'bad label selector term "app in (hello)"' in err


def test_mistake_unknown_output_format(world: World) -> None:
    """-o xml is a usage error (exit 2)."""
    code, out, err = world.fox("get", "apps", "-o", "xml")

    assert code == 2
    assert "'xml' is not one of" in out + err


def test_mistake_release_into_missing_virtual_environment(world: World) -> None:
    """Releasing into a VirtualEnvironment that does not exist says to apply it (exit 4)."""
    code, _, err = world.fox("release", "v1", "--virtual-env", "staging")

    assert code == 4
    assert 'VirtualEnvironment "staging" not found' in err


def test_mistake_release_of_a_missing_version(world: World) -> None:
    """Releasing a version nobody published says to publish it (exit 4)."""
    code, _, err = world.fox("release", "v9", "--virtual-env", "qa")

    assert code == 4
    assert '"v9"' in err
    assert "fox publish" in err


def test_mistake_delete_of_a_released_app_deployment(world: World) -> None:
    """An AppDeployment a release uses cannot be deleted (exit 5)."""
    code, _, err = world.fox("delete", "appdep", "hello-world-v1")

    assert code == 5
    assert "hello-world-v1" in err
    assert "qa" in err


def test_mistake_publish_with_uncommitted_changes(world: World) -> None:
    """Uncommitted changes are refused, naming the files (exit 1)."""
    frontend = world.repo / "components" / "frontend" / "main.py"
    original = frontend.read_text()
    frontend.write_text(original + "\n# edited\n")
    try:
        code, _, err = world.fox("publish", "--app", str(world.repo))
    finally:
        frontend.write_text(original)

    assert code == 1
    assert "uncommitted changes present" in err
    assert "components/frontend/main.py" in err


def test_mistake_publish_outside_a_repository(world: World) -> None:
    """Publishing a directory that is no git repository says so (exit 1)."""
    plain = world.tmp / "plain"
    plain.mkdir(exist_ok=True)

    code, _, err = world.fox("publish", "--app", str(plain))

    assert code == 1
    assert "not a git repository" in err


def test_mistake_publish_without_a_commit(world: World) -> None:
    """Publishing a repository with no commit says to commit (exit 1)."""
    empty = world.tmp / "empty"
    empty.mkdir(exist_ok=True)
    subprocess.run(["git", "init", "-q", str(empty)], check=True)

    code, _, err = world.fox("publish", "--app", str(empty))

    assert code == 1
    assert "commit" in err


def test_mistake_publish_a_version_that_exists_with_other_contents(world: World) -> None:
    """A published version is immutable: other contents under it are refused (exit 5)."""
    frontend = world.repo / "components" / "frontend" / "main.py"
    original = frontend.read_text()
    head = git(world.repo, "rev-parse", "HEAD")
    frontend.write_text(original.replace("👋 Hello", "👋 Hi"))
    commit_all(world.repo, "Say hi")
    try:
        code, _, err = world.fox("publish", "--app", str(world.repo), "--version", "v1")
    finally:
        git(world.repo, "reset", "-q", "--hard", head)

    assert code == 5
    assert 'AppDeployment "hello-world-v1" already exists with other contents' in err
    assert "publish a new version" in err


def test_mistake_create_tag_without_version(world: World) -> None:
    """--create-tag needs --version (exit 1)."""
    code, _, err = world.fox("publish", "--app", str(world.repo), "--create-tag")

    assert code == 1
    assert "--create-tag needs --version" in err


def test_mistake_init_over_existing_files(world: World) -> None:
    """fox init never overwrites: an existing app.yaml stops it, nothing is written (exit 5)."""
    code, _, err = world.fox("init", str(world.repo))

    assert code == 5
    assert "never overwrites" in err
    assert git(world.repo, "status", "--porcelain") == ""


def test_mistake_bad_wait_duration(world: World) -> None:
    """--wait forever is a usage error naming the accepted forms (exit 2)."""
    code, out, err = world.fox("publish", "--app", str(world.repo), "--wait", "forever")

    assert code == 2
    assert "not a duration" in out + err
