"""EmbeddedSecretsBackend: the contracts, plus what files in a state directory must promise."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from kubefox.core.errors import InvalidError
from kubefox.security import SecurityBackend
from kubefox.security.embedded import EmbeddedSecretsBackend
from tests.contracts.secrets import CertificateAuthorityContract, SecretsContract


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class TestEmbeddedSecretsBackend(SecretsContract, CertificateAuthorityContract):
    @pytest.fixture
    async def backend(self, tmp_path: Path) -> AsyncIterator[SecurityBackend]:
        backend = EmbeddedSecretsBackend(tmp_path / "state")
        try:
            yield backend
        finally:
            await backend.aclose()


async def test_secrets_are_encrypted_at_rest_with_private_files(tmp_path: Path) -> None:
    """The sealed file and its key are 0600 in a 0700 directory; no plaintext reaches disk."""
    backend = EmbeddedSecretsBackend(tmp_path)
    await backend.put("env/qa", {"password": "hunter2-plaintext"})

    secrets_dir = tmp_path / "secrets"
    assert mode(secrets_dir) == 0o700
    assert mode(secrets_dir / "secrets.sealed") == 0o600
    assert mode(secrets_dir / "secrets.key") == 0o600
    contents = [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()]  # noqa: ASYNC240
    assert contents
    for content in contents:
        assert b"hunter2-plaintext" not in content
        assert b"env/qa" not in content


async def test_the_ca_keys_are_private_and_the_certificates_public(tmp_path: Path) -> None:
    """root.key and ca.key are 0600; the certificates are world-readable."""
    backend = EmbeddedSecretsBackend(tmp_path)
    await backend.issue("kubefox-nats", ttl=timedelta(hours=1))

    pki_dir = tmp_path / "pki"
    assert mode(pki_dir / "root.key") == 0o600
    assert mode(pki_dir / "ca.key") == 0o600
    assert mode(pki_dir / "root.crt") == 0o644
    assert mode(pki_dir / "ca.crt") == 0o644
    assert not list(pki_dir.glob(".*.tmp"))


async def test_a_new_process_finds_the_same_secrets_and_ca(tmp_path: Path) -> None:
    """Everything survives a restart: documents, versions, the CA and revocations."""
    first = EmbeddedSecretsBackend(tmp_path)
    await first.put("env/qa", {"v": "1"})
    await first.put("env/qa", {"v": "2"})
    issued = await first.issue("kubefox-api", ttl=timedelta(hours=1))
    bundle = await first.ca_bundle()

    second = EmbeddedSecretsBackend(tmp_path)
    await second.revoke(issued.serial)

    assert (await second.get("env/qa")).version == 2
    assert (await second.get("env/qa", version=1)).data == {"v": "1"}
    assert await second.ca_bundle() == bundle


async def test_an_altered_secrets_file_is_refused(tmp_path: Path) -> None:
    """AES-GCM authenticates: one flipped byte makes the file unreadable, loudly."""
    backend = EmbeddedSecretsBackend(tmp_path)
    await backend.put("env/qa", {"v": "1"})
    sealed = tmp_path / "secrets" / "secrets.sealed"
    data = bytearray(sealed.read_bytes())
    data[-1] ^= 0x01
    sealed.write_bytes(bytes(data))

    with pytest.raises(InvalidError, match="altered or another key"):
        await backend.get("env/qa")


async def test_a_lost_key_is_not_silently_replaced(tmp_path: Path) -> None:
    """Without its key the file cannot be read, and no new key is made over it."""
    backend = EmbeddedSecretsBackend(tmp_path)
    await backend.put("env/qa", {"v": "1"})
    (tmp_path / "secrets" / "secrets.key").unlink()

    with pytest.raises(InvalidError, match="key file"):
        await backend.get("env/qa")
    assert not (tmp_path / "secrets" / "secrets.key").exists()


async def test_the_key_file_may_live_elsewhere(tmp_path: Path) -> None:
    """key_file separates the key from the data it protects."""
    backend = EmbeddedSecretsBackend(tmp_path / "state", key_file=tmp_path / "keys" / "k")
    await backend.put("a", {"v": "1"})

    assert (tmp_path / "keys" / "k").is_file()
    assert not (tmp_path / "state" / "secrets" / "secrets.key").exists()


async def test_only_the_newest_versions_are_kept(tmp_path: Path) -> None:
    """Past max_versions the oldest version is gone; numbering goes on."""
    backend = EmbeddedSecretsBackend(tmp_path, max_versions=2)
    for n in range(4):
        await backend.put("a", {"n": n})

    assert (await backend.get("a")).version == 4
    assert (await backend.get("a", version=3)).data == {"n": 2}
    with pytest.raises(LookupError):
        await backend.get("a", version=2)


async def test_an_incomplete_ca_is_refused_rather_than_replaced(tmp_path: Path) -> None:
    """Replacing a CA would orphan every certificate it issued: the operator must decide."""
    await EmbeddedSecretsBackend(tmp_path).ca_bundle()
    (tmp_path / "pki" / "ca.key").unlink()

    with pytest.raises(InvalidError, match="incomplete"):
        await EmbeddedSecretsBackend(tmp_path).issue("x", ttl=timedelta(hours=1))
