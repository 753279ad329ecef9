"""publish() against in-memory stores: naming, immutability, progress and tags."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubefox.core.errors import ConflictError, InvalidError
from kubefox.publish import PublishStatus, create_tag, deployment_name_for, publish
from kubefox.resources import AppDeployment
from kubefox.store import MemoryStore
from kubefox.store.artifacts import MemoryArtifactStore
from kubefox.store.typed import TypedStore
from tests.unit.publish.gitrepos import AppRepo, hello_world_repo

NAMESPACE = "kubefox-demo"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def store() -> TypedStore:
    return TypedStore(MemoryStore(), namespace=NAMESPACE)


@pytest.fixture
def artifacts() -> MemoryArtifactStore:
    return MemoryArtifactStore()


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"version": "v1", "branch": "main", "tag": "t", "commit": COMMIT}, "hello-world-v1"),
        ({"branch": "main", "tag": "t", "commit": COMMIT}, "hello-world-main"),
        ({"tag": "v1.2.0", "commit": COMMIT}, "hello-world-v1-2-0"),
        ({"commit": COMMIT}, "hello-world-0123456"),
        ({"branch": "Feature_Login", "commit": COMMIT}, "hello-world-feature-login"),
        ({"name": "My_Deployment", "version": "v1", "commit": COMMIT}, "my-deployment"),
    ],
)
def test_deployment_names_follow_upstream(kwargs: dict[str, str], expected: str) -> None:
    """-d, else <app>-<version>, else -<branch>, else -<tag>, else -<commit[:7]>; cleaned."""
    assert deployment_name_for("hello-world", **kwargs) == expected


async def test_publish_creates_the_deployment_with_commit_facts(
    tmp_path: Path, store: TypedStore, artifacts: MemoryArtifactStore
) -> None:
    """The AppDeployment carries app, commit, time, branch, details and both definitions."""
    repo = hello_world_repo(tmp_path)
    lines: list[str] = []
    result = await publish(tmp_path, store=store, artifacts=artifacts, progress=lines.append)
    assert result.created
    deployment = await store.get(AppDeployment, "hello-world-main")
    spec = deployment.spec
    assert (spec.app_name, spec.commit, spec.branch, spec.version) == (
        "hello-world",
        repo.head(),
        "main",
        None,
    )
    assert deployment.details is not None
    assert deployment.details.title == "Hello World"
    assert {name: c.hash for name, c in spec.components.items()} == {
        c.name: c.hash for c in result.components
    }
    assert deployment.metadata.labels["kubefox.xigxog.io/app-commit-short"] == repo.head()[:7]
    assert lines == [
        f"backend: {result.components[0].hash} stored",
        f"frontend: {result.components[1].hash} stored",
        'AppDeployment "hello-world-main" created',
    ]


async def test_a_version_names_and_tags_the_deployment(
    tmp_path: Path, store: TypedStore, artifacts: MemoryArtifactStore
) -> None:
    """--version v1 with a v1 tag at HEAD: hello-world-v1, spec.version and spec.tag v1."""
    repo = hello_world_repo(tmp_path)
    repo.git("tag", "other")
    create_tag(tmp_path, "v1")
    result = await publish(tmp_path, store=store, artifacts=artifacts, version="v1")
    spec = result.app_deployment.spec
    assert (result.name, spec.version, spec.tag) == ("hello-world-v1", "v1", "v1")


async def test_a_detached_head_falls_back_to_tag_then_commit(
    tmp_path: Path, store: TypedStore, artifacts: MemoryArtifactStore
) -> None:
    """Without a branch the tag names the deployment; without a tag the short commit."""
    repo = hello_world_repo(tmp_path)
    repo.git("checkout", "-q", "--detach")
    result = await publish(tmp_path, store=store, artifacts=artifacts)
    assert result.name == f"hello-world-{repo.head()[:7]}"
    repo.git("tag", "release-7")
    result = await publish(tmp_path, store=store, artifacts=artifacts)
    assert result.name == "hello-world-release-7"


async def test_an_unversioned_publish_may_not_overwrite_a_versioned_deployment(
    tmp_path: Path, store: TypedStore, artifacts: MemoryArtifactStore
) -> None:
    """A branch called v1 does not get to rewrite hello-world-v1 (it is immutable)."""
    repo = hello_world_repo(tmp_path)
    await publish(tmp_path, store=store, artifacts=artifacts, version="v1")
    repo.git("checkout", "-q", "-b", "v1")
    repo.write("components/backend/extra.py", "X = 2\n")
    repo.commit()
    with pytest.raises(ConflictError, match='"hello-world-v1" already exists with other contents'):
        await publish(tmp_path, store=store, artifacts=artifacts)


async def test_directories_without_main_py_are_reported(
    tmp_path: Path, store: TypedStore, artifacts: MemoryArtifactStore
) -> None:
    """A components/ directory that is no component is mentioned, not silently dropped."""
    repo = hello_world_repo(tmp_path)
    repo.write("components/shared/util.py", "X = 1\n")
    repo.commit()
    lines: list[str] = []
    await publish(tmp_path, store=store, artifacts=artifacts, progress=lines.append)
    assert lines[0] == "skipping components/shared: no main.py"


async def test_a_failing_export_writes_nothing(
    tmp_path: Path, store: TypedStore, artifacts: MemoryArtifactStore
) -> None:
    """Definitions are exported before anything is stored, so a broken component costs nothing."""
    repo = hello_world_repo(tmp_path)
    repo.write("components/frontend/main.py", "raise SystemExit('broken')\n")
    repo.commit()
    with pytest.raises(InvalidError, match='component "frontend"'):
        await publish(tmp_path, store=store, artifacts=artifacts)
    assert artifacts.names == []
    assert await store.find(AppDeployment) == []


async def test_an_empty_version_is_refused(
    tmp_path: Path, store: TypedStore, artifacts: MemoryArtifactStore
) -> None:
    """--version "" is a mistake, not a request for an unversioned publish."""
    hello_world_repo(tmp_path)
    with pytest.raises(InvalidError, match="version must not be empty"):
        await publish(tmp_path, store=store, artifacts=artifacts, version=" ")


def test_create_tag_tags_head_once(tmp_path: Path) -> None:
    """A new tag points at HEAD; creating it again at HEAD is a no-op."""
    repo = hello_world_repo(tmp_path)
    assert create_tag(tmp_path, "v1") == repo.head()
    assert create_tag(tmp_path, "v1") == repo.head()
    assert repo.git("tag", "--points-at", "HEAD").split() == ["v1"]


def test_create_tag_refuses_a_tag_on_another_commit(tmp_path: Path) -> None:
    """Moving a published version's tag would rewrite history: a ConflictError."""
    repo = hello_world_repo(tmp_path)
    create_tag(tmp_path, "v1")
    repo.write("components/backend/extra.py", "X = 2\n")
    repo.commit()
    with pytest.raises(ConflictError, match=r'tag "v1" already exists on commit [0-9a-f]{7}'):
        create_tag(tmp_path, "v1")


@pytest.mark.parametrize("version", ["bad tag", "v1..2", "-v1", ""])
def test_create_tag_refuses_invalid_names(tmp_path: Path, version: str) -> None:
    """git's own rules decide what a tag name may be."""
    hello_world_repo(tmp_path)
    with pytest.raises(InvalidError, match="is not a valid git tag name"):
        create_tag(tmp_path, version)


def test_create_tag_refuses_a_dirty_tree(tmp_path: Path) -> None:
    """Tagging HEAD while the tree differs from it would tag something else than meant."""
    repo = hello_world_repo(tmp_path)
    repo.write("new.txt", "x")
    with pytest.raises(InvalidError, match="uncommitted changes present"):
        create_tag(tmp_path, "v1")
    assert repo.git("tag").strip() == ""


def test_publish_status_values_are_words() -> None:
    """The CLI prints the status as is."""
    assert [str(s) for s in PublishStatus] == ["created", "updated", "unchanged"]


async def test_a_nested_app_is_published_from_its_own_directory(
    tmp_path: Path, store: TypedStore, artifacts: MemoryArtifactStore
) -> None:
    """Only the app's components are published, from anywhere inside it."""
    repo = AppRepo.init(tmp_path)
    repo.write_app(app_dir="apps/hello", components={"api": {"type": "KubeFox"}})
    repo.write("components/other/main.py", "print()\n")  # another app's, at the root
    repo.commit()
    result = await publish(tmp_path / "apps" / "hello", store=store, artifacts=artifacts)
    assert [c.name for c in result.components] == ["api"]
