"""Secrets admission: resource secrets live in the secrets backend, the store keeps the mask."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kubefox.api.service import ApplyResult, ResourceService
from kubefox.core.errors import NotFoundError
from kubefox.releases.manifests import build_manifest
from kubefox.resources import Environment, ReleaseManifest, VirtualEnvironment, merge_data
from kubefox.security.embedded import EmbeddedSecretsBackend
from kubefox.store import MemoryStore, ResourceKey
from kubefox.store.secrets import MASK, ResourceSecrets, SecretsAdmissionError, secret_path
from kubefox.store.typed import TypedStore
from tests.unit.releases.world import NAMESPACE, app_deployment

TOKEN = "s3cr3t-t0ken-4a7f"  # noqa: S105 - a fake credential


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[EmbeddedSecretsBackend]:
    secrets = EmbeddedSecretsBackend(tmp_path)
    try:
        yield secrets
    finally:
        await secrets.aclose()


@pytest.fixture
async def store() -> AsyncIterator[MemoryStore]:
    memory = MemoryStore()
    try:
        yield memory
    finally:
        await memory.aclose()


@pytest.fixture
def typed(store: MemoryStore, backend: EmbeddedSecretsBackend) -> TypedStore:
    return TypedStore(store, namespace=NAMESPACE, secrets=backend)


def environment(secrets: dict[str, Any], name: str = "qa") -> Environment:
    return Environment.model_validate(
        {"metadata": {"name": name}, "data": {"vars": {"who": "World"}, "secrets": secrets}}
    )


def virtual_environment(secrets: dict[str, Any], name: str = "qa") -> VirtualEnvironment:
    return VirtualEnvironment.model_validate(
        {"metadata": {"name": name}, "spec": {"environment": "qa"}, "data": {"secrets": secrets}}
    )


async def stored_secrets(backend: EmbeddedSecretsBackend, key: ResourceKey) -> dict[str, Any]:
    document = await backend.get(secret_path(key))
    return dict(document.data["data"]["secrets"])


async def test_applied_secrets_move_to_the_backend_and_the_store_keeps_the_mask(
    typed: TypedStore, store: MemoryStore, backend: EmbeddedSecretsBackend
) -> None:
    """The value is in the backend document; the stored body and the model show the mask."""
    written = await typed.apply(environment({"token": TOKEN, "port": 8080}))

    raw = await store.get(ResourceKey("Environment", "qa"))

    assert written.data.secrets == {"token": MASK, "port": MASK}
    assert raw.body["data"]["secrets"] == {"token": MASK, "port": MASK}
    assert TOKEN not in json.dumps(raw.body)
    assert await stored_secrets(backend, ResourceKey("Environment", "qa")) == {
        "token": TOKEN,
        "port": 8080,
    }
    assert (
        secret_path(ResourceKey("Environment", "qa"))
        == "tenants/default/cluster/data/Environment/qa"
    )


async def test_masked_value_keeps_new_value_replaces_missing_key_deletes(
    typed: TypedStore, backend: EmbeddedSecretsBackend
) -> None:
    """Re-applying ``fox get`` output keeps secrets; a value replaces; a key left out goes."""
    key = ResourceKey("VirtualEnvironment", "qa", NAMESPACE)
    await typed.apply(virtual_environment({"a": "one", "b": "two", "c": "three"}))

    await typed.apply(virtual_environment({"a": MASK, "b": "TWO"}))

    assert await stored_secrets(backend, key) == {"a": "one", "b": "TWO"}
    assert (await typed.get(VirtualEnvironment, "qa")).data.secrets == {"a": MASK, "b": MASK}
    assert key.namespace
    assert secret_path(key) == f"tenants/default/namespace/{NAMESPACE}/data/VirtualEnvironment/qa"


async def test_removing_every_secret_or_the_resource_deletes_the_document(
    typed: TypedStore, backend: EmbeddedSecretsBackend
) -> None:
    """No secrets, no document; a deleted resource leaves nothing behind in the backend."""
    await typed.apply(environment({"token": TOKEN}))
    await typed.apply(environment({}))
    emptied = await backend.list("tenants/default/cluster")
    await typed.apply(environment({"token": TOKEN}, name="prod"))
    await typed.delete(Environment, "prod")

    assert emptied == []
    assert await backend.list("tenants/default/cluster") == []


async def test_a_masked_secret_without_a_stored_value_is_refused(typed: TypedStore) -> None:
    """YAML copied from ``fox get`` onto a platform that never had the value is an error."""
    with pytest.raises(SecretsAdmissionError) as caught:
        await typed.apply(environment({"token": MASK}))

    assert caught.value.code == 6
    assert '"token"' in str(caught.value)
    with pytest.raises(NotFoundError):
        await typed.get(Environment, "qa")


async def test_without_a_backend_a_secret_value_is_refused_and_never_stored(
    store: MemoryStore,
) -> None:
    """A store without a secrets backend refuses secret values, and the message hides them."""
    plain = TypedStore(store, namespace=NAMESPACE)

    with pytest.raises(SecretsAdmissionError) as caught:
        await plain.create(environment({"token": TOKEN}))
    await plain.create(environment({}))

    assert TOKEN not in str(caught.value)
    assert TOKEN not in repr(caught.value.details)
    assert "token" in str(caught.value)
    assert await store.revision() == 1  # only the Environment without secrets


async def test_status_writes_keep_the_secrets(
    typed: TypedStore, backend: EmbeddedSecretsBackend
) -> None:
    """Read, change, write back (the operator's status writes) keeps the stored values."""
    await typed.apply(virtual_environment({"token": TOKEN}))
    ve = await typed.get(VirtualEnvironment, "qa")
    ve.metadata.labels["touched"] = "yes"

    await typed.update(ve)

    key = ResourceKey("VirtualEnvironment", "qa", NAMESPACE)
    assert await stored_secrets(backend, key) == {"token": TOKEN}


async def test_a_new_manifest_snapshots_the_environment_and_ve_secrets(
    typed: TypedStore, backend: EmbeddedSecretsBackend
) -> None:
    """Masked manifest secrets are copied from the Environment's and VE's documents (VE wins)."""
    await typed.apply(environment({"token": "env-token", "user": "env-user"}))
    await typed.apply(virtual_environment({"token": TOKEN}))
    ve = await typed.get(VirtualEnvironment, "qa")
    ve.data.secrets["token"] = "in-the-spec"  # noqa: S105 - must not reach the store either
    manifest = build_manifest(
        ve=ve,
        environment=await typed.get(Environment, "qa"),
        deployments={"hello-world": app_deployment("hello-world-v1")},
        adapters={},
        data=merge_data(
            (await typed.get(Environment, "qa")).data,
            (await typed.get(VirtualEnvironment, "qa")).data,
        ),
        release_id="r1",
        now=datetime.now(UTC),
    )

    written = await typed.create(manifest)

    assert isinstance(written, ReleaseManifest)
    key = ResourceKey("ReleaseManifest", written.metadata.name, NAMESPACE)
    assert await stored_secrets(backend, key) == {"token": TOKEN, "user": "env-user"}
    assert written.spec.virtual_environment.data.secrets == {"token": MASK}


async def test_api_apply_is_unchanged_when_the_secret_values_are_the_stored_ones(
    store: MemoryStore, backend: EmbeddedSecretsBackend
) -> None:
    """Applying the same file twice says unchanged; a changed secret says configured."""
    service = ResourceService(store, namespace=NAMESPACE, secrets=backend)
    body = {"metadata": {"name": "qa"}, "data": {"secrets": {"token": TOKEN}}}

    first = await service.apply("environment", "qa", body)
    again = await service.apply("environment", "qa", body)
    masked = await service.apply("env", "qa", {**body, "data": {"secrets": {"token": MASK}}})
    changed = await service.apply(
        "environments", "qa", {**body, "data": {"secrets": {"token": "new"}}}
    )

    assert [r for _, r in (first, again, masked, changed)] == [
        ApplyResult.CREATED,
        ApplyResult.UNCHANGED,
        ApplyResult.UNCHANGED,
        ApplyResult.CONFIGURED,
    ]
    assert isinstance(changed[0], Environment)
    assert changed[0].data.secrets == {"token": MASK}
    assert await stored_secrets(backend, ResourceKey("Environment", "qa")) == {"token": "new"}


async def test_read_is_cached_per_resource_version(
    typed: TypedStore, backend: EmbeddedSecretsBackend
) -> None:
    """A version's secrets are read once; a new version reads the new values."""
    secrets = ResourceSecrets(backend, cache_size=2)
    key = ResourceKey("Environment", "qa")
    first = await typed.apply(environment({"token": "one"}))
    v1 = await secrets.read(key, version=first.metadata.resource_version)
    await backend.put(secret_path(key), {"data": {"secrets": {"token": "behind-its-back"}}})
    v1_again = await secrets.read(key, version=first.metadata.resource_version)
    second = await typed.apply(environment({"token": "two"}))
    v2 = await secrets.read(key, version=second.metadata.resource_version)

    assert v1 == v1_again == {"token": "one"}
    assert v2 == {"token": "two"}


async def test_tenants_sharing_one_backend_keep_their_own_secrets(
    backend: EmbeddedSecretsBackend,
) -> None:
    """Two tenants' Environments of one name: each keeps its own value, never the other's."""
    acme_store, globex_store = MemoryStore(), MemoryStore()
    acme = TypedStore(
        acme_store, namespace=NAMESPACE, secrets=ResourceSecrets(backend, tenant="acme")
    )
    globex = TypedStore(
        globex_store, namespace=NAMESPACE, secrets=ResourceSecrets(backend, tenant="globex")
    )
    key = ResourceKey("Environment", "qa")
    try:
        await acme.apply(environment({"token": "acme-token"}))
        await globex.apply(environment({"token": "globex-token"}))
        await globex.delete(Environment, "qa")

        acme_values = await ResourceSecrets(backend, tenant="acme").read(key, version=None)
        assert acme_values == {"token": "acme-token"}
        assert await backend.list("tenants/globex") == []
    finally:
        await acme_store.aclose()
        await globex_store.aclose()
