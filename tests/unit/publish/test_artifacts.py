"""Artifact names and the in-memory ArtifactStore."""

from __future__ import annotations

import pytest

from kubefox.core.errors import InvalidError, NotFoundError, UnavailableError
from kubefox.store.artifacts import MemoryArtifactStore, artifact_name

HASH = "0123456789abcdef0123456789abcdef"


def test_an_artifact_is_named_app_component_hash() -> None:
    """<app>.<component>.<hash>: unambiguous, since neither part may hold a dot."""
    assert artifact_name("hello-world", "frontend", HASH) == f"hello-world.frontend.{HASH}"


@pytest.mark.parametrize(
    ("app", "component", "hash_"),
    [
        ("Hello", "frontend", HASH),
        ("hello", "front.end", HASH),
        ("hello", "-frontend", HASH),
        ("hello", "frontend", "ABCDEF" * 6),
        ("hello", "frontend", "abc"),
        ("hello", "frontend", "../" + HASH),
    ],
)
def test_artifact_names_refuse_bad_parts(app: str, component: str, hash_: str) -> None:
    """Parts that are no DNS label, or a hash that is no 32-64 lowercase alphanumerics."""
    with pytest.raises(InvalidError):
        artifact_name(app, component, hash_)


async def test_the_memory_store_keeps_replaces_and_reports_artifacts() -> None:
    """put/get/exists round trip; a second put replaces; missing ones are NotFoundError."""
    store = MemoryArtifactStore()
    name = artifact_name("hello-world", "backend", HASH)
    assert not await store.exists(name)
    with pytest.raises(NotFoundError):
        await store.get(name)
    await store.put(name, b"one")
    await store.put(name, b"two")
    assert await store.exists(name)
    assert await store.get(name) == b"two"
    assert store.names == [name]


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "x" * 256, "spaces are bad"])
async def test_the_memory_store_refuses_names_no_backend_can_hold(name: str) -> None:
    """The same name rules as the JetStream backend."""
    with pytest.raises(InvalidError):
        await MemoryArtifactStore().put(name, b"")


async def test_a_closed_memory_store_is_unavailable() -> None:
    """After aclose (idempotent) every call is an UnavailableError."""
    store = MemoryArtifactStore()
    await store.aclose()
    await store.aclose()
    with pytest.raises(UnavailableError):
        await store.exists("x")
