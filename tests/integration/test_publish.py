"""Publishing against a real nats-server: JetStream KV for resources, the object store for files."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest

from kubefox.core.errors import ConflictError, InvalidError, NotFoundError, UnavailableError
from kubefox.publish import PublishResult, extract, publish, read_snapshot
from kubefox.resources import AppDeployment
from kubefox.store.artifacts import artifact_name
from kubefox.store.jetstream import JetStreamStore
from kubefox.store.jetstream_objects import JetStreamArtifactStore
from kubefox.store.typed import TypedStore
from tests.unit.publish.gitrepos import (
    APP,
    BACKEND,
    FRONTEND,
    AppRepo,
    hello_world_repo,
    isolate_git,
    main_py,
)

pytestmark = pytest.mark.integration

NAMESPACE = "kubefox-demo"


def fresh_bucket() -> str:
    """A bucket no other test uses, so tests can share one server."""
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture(autouse=True)
def _isolated_git(monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_git(monkeypatch)


@pytest.fixture
async def store(nats_url: str) -> AsyncIterator[TypedStore]:
    raw = await JetStreamStore.connect(nats_url, bucket=fresh_bucket())
    try:
        yield TypedStore(raw, namespace=NAMESPACE)
    finally:
        await raw.aclose()


@pytest.fixture
async def artifacts(nats_url: str) -> AsyncIterator[JetStreamArtifactStore]:
    objects = await JetStreamArtifactStore.connect(nats_url, bucket=fresh_bucket())
    try:
        yield objects
    finally:
        await objects.aclose()


async def object_messages(nats_url: str, bucket: str) -> int:
    """How many messages the object store's stream holds: any write adds some."""
    client = await nats.connect(nats_url)
    try:
        info = await client.jetstream().stream_info(f"OBJ_{bucket}")
        return info.state.messages
    finally:
        await client.close()


def hashes(result: PublishResult) -> dict[str, str]:
    return {c.name: c.hash for c in result.components}


def stored(result: PublishResult) -> dict[str, bool]:
    return {c.name: c.stored for c in result.components}


async def test_the_hello_world_walkthrough(
    tmp_path: Path, store: TypedStore, artifacts: JetStreamArtifactStore
) -> None:
    """Publish, republish, change one component, version, and refuse to change a version."""
    repo = hello_world_repo(tmp_path)

    # 1. First publish: both artifacts stored, hello-world-main created.
    lines: list[str] = []
    first = await publish(tmp_path, store=store, artifacts=artifacts, progress=lines.append)
    assert first.created
    assert first.name == "hello-world-main"
    assert stored(first) == {"backend": True, "frontend": True}
    main = await store.get(AppDeployment, "hello-world-main")
    assert main.metadata.generation == 1
    assert main.spec.commit == repo.head()
    assert main.spec.branch == "main"
    components = main.spec.components
    assert {name: c.hash for name, c in components.items()} == hashes(first)
    assert components["frontend"].dependencies["backend"].type == "KubeFox"
    assert components["backend"].default_handler is True
    assert components["frontend"].routes[0].rule == FRONTEND["routes"][0]["rule"]
    assert lines[-1] == 'AppDeployment "hello-world-main" created'
    for name, value in hashes(first).items():
        assert await artifacts.exists(artifact_name(APP, name, value))

    # 2. Again without changes: nothing stored, nothing written.
    lines.clear()
    again = await publish(tmp_path, store=store, artifacts=artifacts, progress=lines.append)
    assert again.unchanged
    assert stored(again) == {"backend": False, "frontend": False}
    assert hashes(again) == hashes(first)
    unchanged = await store.get(AppDeployment, "hello-world-main")
    assert unchanged.metadata.resource_version == main.metadata.resource_version
    assert lines == [
        f"backend: {hashes(first)['backend']} unchanged, skipping",
        f"frontend: {hashes(first)['frontend']} unchanged, skipping",
        'AppDeployment "hello-world-main" unchanged',
    ]

    # 3. Change the frontend: only it is stored; hello-world-main updated in place.
    repo.write("components/frontend/main.py", main_py(FRONTEND, greeting="Hey"))
    repo.commit("hey")
    changed = await publish(tmp_path, store=store, artifacts=artifacts)
    assert changed.updated
    assert stored(changed) == {"backend": False, "frontend": True}
    assert hashes(changed)["backend"] == hashes(first)["backend"]
    assert hashes(changed)["frontend"] != hashes(first)["frontend"]
    main2 = await store.get(AppDeployment, "hello-world-main")
    assert main2.metadata.generation == 2
    assert main2.metadata.uid == main.metadata.uid
    assert main2.spec.commit == repo.head()
    assert main2.spec.components["frontend"].hash == hashes(changed)["frontend"]

    # 4. Version v1: a new, immutable deployment; its artifacts are already there.
    v1 = await publish(tmp_path, store=store, artifacts=artifacts, version="v1")
    assert (v1.created, v1.name) == (True, "hello-world-v1")
    assert stored(v1) == {"backend": False, "frontend": False}
    stored_v1 = await store.get(AppDeployment, "hello-world-v1")
    assert stored_v1.spec.version == "v1"
    assert stored_v1.metadata.labels["kubefox.xigxog.io/app-version"] == "v1"
    assert (await publish(tmp_path, store=store, artifacts=artifacts, version="v1")).unchanged

    # 5. Change and publish v1 again: refused, v1 untouched, nothing stored.
    repo.write("components/backend/main.py", main_py(BACKEND, greeting="Howdy"))
    new_commit = repo.commit("howdy")
    with pytest.raises(ConflictError) as caught:
        await publish(tmp_path, store=store, artifacts=artifacts, version="v1")
    assert caught.value.cause == (
        'AppDeployment "hello-world-v1" already exists with other contents; publish a new version'
    )
    after = await store.get(AppDeployment, "hello-world-v1")
    assert after.metadata.resource_version == stored_v1.metadata.resource_version
    assert after.spec.commit != new_commit
    new_backend = next(c.hash for c in read_snapshot(tmp_path).components if c.name == "backend")
    assert not await artifacts.exists(artifact_name(APP, "backend", new_backend))


async def test_a_dirty_tree_writes_nothing(
    tmp_path: Path, nats_url: str, store: TypedStore, artifacts: JetStreamArtifactStore
) -> None:
    """Uncommitted changes: InvalidError before any artifact or resource is written."""
    repo = hello_world_repo(tmp_path)
    repo.write("components/frontend/main.py", main_py(FRONTEND, greeting="Uncommitted"))
    revision = await store.store.revision()
    messages = await object_messages(nats_url, artifacts.bucket)
    with pytest.raises(InvalidError) as caught:
        await publish(tmp_path, store=store, artifacts=artifacts)
    assert caught.value.cause == (
        "uncommitted changes present: commit or stash them before publishing"
    )
    assert caught.value.details["paths"] == ["components/frontend/main.py"]
    assert await store.store.revision() == revision
    assert await object_messages(nats_url, artifacts.bucket) == messages


async def test_no_repository_and_no_commit_are_clear_errors(
    tmp_path: Path, store: TypedStore, artifacts: JetStreamArtifactStore
) -> None:
    """Outside a repository, or before its first commit, publishing says what is wrong."""
    with pytest.raises(InvalidError, match="not a git repository"):
        await publish(tmp_path, store=store, artifacts=artifacts)
    repo = AppRepo.init(tmp_path / "app")
    repo.write_app()
    with pytest.raises(
        InvalidError, match="the repository has no commit yet: commit your app first"
    ):
        await publish(tmp_path / "app", store=store, artifacts=artifacts)
    assert await store.store.revision() == 0


async def test_artifacts_round_trip_to_the_committed_files(
    tmp_path: Path, store: TypedStore, artifacts: JetStreamArtifactStore
) -> None:
    """What the object store hands back extracts to exactly the files of the commit."""
    repo = hello_world_repo(tmp_path / "repo")
    big = os.urandom(300 * 1024)  # several 128 KiB object-store chunks
    repo.write("components/backend/data/blob.bin", big)
    repo.write("components/backend/bin/run.sh", "#!/bin/sh\n", executable=True)
    repo.write("components/backend/cache.tmp", "ignored\n")
    repo.write(".gitignore", "__pycache__/\n*.tmp\n")
    repo.commit("backend files")
    result = await publish(tmp_path / "repo", store=store, artifacts=artifacts)
    backend = next(c for c in result.components if c.name == "backend")

    data = await artifacts.get(artifact_name(APP, "backend", backend.hash))
    dest = tmp_path / "extracted"
    written = extract(data, dest)

    assert written == ["bin/run.sh", "data/blob.bin", "main.py"]
    source = tmp_path / "repo" / "components" / "backend"
    for path in written:
        assert (dest / path).read_bytes() == (source / path).read_bytes()
    assert os.access(dest / "bin" / "run.sh", os.X_OK)
    assert not os.access(dest / "main.py", os.X_OK)


async def test_the_object_store_reports_missing_and_replaces_artifacts(
    artifacts: JetStreamArtifactStore,
) -> None:
    """Missing: exists False and get NotFoundError; a second put replaces the first."""
    name = artifact_name(APP, "frontend", "a" * 32)
    assert not await artifacts.exists(name)
    with pytest.raises(NotFoundError):
        await artifacts.get(name)
    await artifacts.put(name, b"one")
    await artifacts.put(name, b"two")
    assert await artifacts.get(name) == b"two"
    with pytest.raises(InvalidError):
        await artifacts.put("../escape", b"")


async def test_a_bucket_is_shared_between_connections(nats_url: str) -> None:
    """Opening an existing bucket finds what another connection stored in it."""
    bucket = fresh_bucket()
    name = artifact_name(APP, "backend", "b" * 32)
    first = await JetStreamArtifactStore.connect(nats_url, bucket=bucket)
    try:
        await first.put(name, b"shared")
    finally:
        await first.aclose()
    client = await nats.connect(nats_url)
    try:
        second = await JetStreamArtifactStore.open(client, bucket=bucket)
        assert await second.get(name) == b"shared"
        await second.aclose()
        assert client.is_connected  # open() leaves the caller's connection alone
    finally:
        await client.close()


async def test_an_unreachable_server_is_unavailable(tmp_path: Path) -> None:
    """No server: UnavailableError within the connect timeout, never a nats error."""
    with pytest.raises(UnavailableError, match="cannot reach nats"):
        await JetStreamArtifactStore.connect("nats://127.0.0.1:1", connect_timeout=0.5)


async def test_a_closed_artifact_store_is_unavailable(nats_url: str) -> None:
    """After aclose (idempotent) calls fail with UnavailableError."""
    objects = await JetStreamArtifactStore.connect(nats_url, bucket=fresh_bucket())
    await objects.aclose()
    await objects.aclose()
    with pytest.raises(UnavailableError):
        await objects.exists(artifact_name(APP, "backend", "c" * 32))
