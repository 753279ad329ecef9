"""The embedded secrets store and certificate authority: files in the state directory.

What ``fox up`` uses, so a laptop needs no Vault. Layout (modes in brackets)::

    <state>/secrets/secrets.sealed   [0600] every document, AES-256-GCM (see sealing)
    <state>/secrets/secrets.key      [0600] its key
    <state>/pki/root.crt, root.key   [0644, 0600] the root CA (10 years)
    <state>/pki/ca.crt, ca.key       [0644, 0600] the intermediate that issues leaves (5 years)
    <state>/pki/issued.json          [0644] serials issued and not yet expired
    <state>/pki/revoked.json         [0644] serials revoked and not yet expired

One process owns the directory (the embedded platform); within it, an
asyncio lock serialises changes. Every change rewrites its file atomically.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kubefox.core.errors import ConflictError, InvalidError, NotFoundError
from kubefox.security import pki
from kubefox.security.private_files import PRIVATE, PUBLIC, ensure_private_dir, write_atomic
from kubefox.security.protocol import (
    IssuedCertificate,
    SecretDocument,
    check_document,
    check_path,
    check_prefix,
    normalise_serial,
)
from kubefox.security.sealing import SealedFile

ROOT_COMMON_NAME = "KubeFox Root CA"
INTERMEDIATE_COMMON_NAME = "KubeFox Platform Intermediate CA"
ROOT_TTL = timedelta(days=3650)
INTERMEDIATE_TTL = timedelta(days=1825)
#: How long a published CRL is valid; a new one is built on every request.
CRL_VALIDITY = timedelta(days=1)
#: Versions kept per document, as OpenBao's KV v2 default.
MAX_VERSIONS = 10


class EmbeddedSecretsBackend:
    """``SecretsBackend`` and ``CertificateAuthority`` kept under ``state_dir``.

    ``key_file`` defaults to ``<state>/secrets/secrets.key``.
    """

    def __init__(
        self,
        state_dir: str | Path,
        *,
        key_file: str | Path | None = None,
        max_versions: int = MAX_VERSIONS,
    ) -> None:
        if max_versions < 1:
            raise ValueError("max_versions must be at least 1")
        self.state_dir = Path(state_dir)
        secrets_dir = self.state_dir / "secrets"
        self.pki_dir = self.state_dir / "pki"
        self._sealed = SealedFile(
            secrets_dir / "secrets.sealed",
            Path(key_file) if key_file is not None else secrets_dir / "secrets.key",
        )
        self._max_versions = max_versions
        self._lock = asyncio.Lock()
        self._ca: tuple[pki.CaMaterial, str] | None = None  # issuer, root PEM

    # -- SecretsBackend ----------------------------------------------------------------

    async def put(
        self, path: str, data: Mapping[str, Any], *, cas: int | None = None
    ) -> SecretDocument:
        check_path(path)
        stored = check_document(data)
        async with self._lock:
            documents = await asyncio.to_thread(self._load)
            entry = documents.get(path)
            current = entry["current"] if entry else 0
            if cas is not None and cas != current:
                raise ConflictError(
                    f"secret {path!r} is at version {current}, not {cas}",
                    path=path,
                    expected=cas,
                    actual=current,
                )
            version = current + 1
            created = datetime.now(UTC)
            versions = dict(entry["versions"]) if entry else {}
            versions[str(version)] = {"data": stored, "created_at": created.isoformat()}
            for old in sorted(versions, key=int)[: -self._max_versions]:
                del versions[old]
            documents[path] = {"current": version, "versions": versions}
            await asyncio.to_thread(self._save, documents)
        return SecretDocument(path=path, data=stored, version=version, created_at=created)

    async def get(self, path: str, *, version: int | None = None) -> SecretDocument:
        check_path(path)
        async with self._lock:
            documents = await asyncio.to_thread(self._load)
        entry = documents.get(path)
        if entry is None:
            raise NotFoundError(f"no secret at {path!r}", path=path)
        wanted = entry["current"] if version is None else version
        stored = entry["versions"].get(str(wanted))
        if stored is None:
            raise NotFoundError(f"secret {path!r} has no version {wanted}", path=path)
        return SecretDocument(
            path=path,
            data=stored["data"],
            version=wanted,
            created_at=datetime.fromisoformat(stored["created_at"]),
        )

    async def delete(self, path: str) -> None:
        check_path(path)
        async with self._lock:
            documents = await asyncio.to_thread(self._load)
            if documents.pop(path, None) is not None:
                await asyncio.to_thread(self._save, documents)

    async def list(self, prefix: str = "") -> list[str]:
        folder = check_prefix(prefix)
        async with self._lock:
            documents = await asyncio.to_thread(self._load)
        start = f"{folder}/" if folder else ""
        return sorted(path for path in documents if path.startswith(start))

    async def aclose(self) -> None:
        return None

    def _load(self) -> dict[str, Any]:
        raw = self._sealed.load()
        if raw is None:
            return {}
        content = json.loads(raw)
        if not isinstance(content, dict) or content.get("format") != 1:
            raise InvalidError(f"{self._sealed.path} has an unknown format")
        documents: dict[str, Any] = content["documents"]
        return documents

    def _save(self, documents: dict[str, Any]) -> None:
        payload = {"format": 1, "documents": documents}
        self._sealed.save(json.dumps(payload, separators=(",", ":")).encode())

    # -- CertificateAuthority ----------------------------------------------------------

    async def ca_bundle(self) -> str:
        _, root = await self._authority()
        return root

    async def issue(
        self,
        common_name: str,
        *,
        dns_names: Sequence[str] = (),
        ip_addresses: Sequence[str] = (),
        ttl: timedelta,
    ) -> IssuedCertificate:
        issuer, root = await self._authority()
        issued = await asyncio.to_thread(
            pki.issue_leaf,
            issuer,
            common_name,
            dns_names=dns_names,
            ip_addresses=ip_addresses,
            ttl=ttl,
            ca_bundle=root,
        )
        async with self._lock:
            ledger = await asyncio.to_thread(self._read_ledger, "issued.json")
            ledger[issued.serial] = {"not_after": issued.not_after.isoformat()}
            await asyncio.to_thread(self._write_ledger, "issued.json", ledger)
        return issued

    async def revoke(self, serial: str) -> None:
        wanted = normalise_serial(serial)
        await self._authority()
        async with self._lock:
            issued = await asyncio.to_thread(self._read_ledger, "issued.json")
            revoked = await asyncio.to_thread(self._read_ledger, "revoked.json")
            if wanted in revoked:
                return
            entry = issued.get(wanted)
            if entry is None:
                raise NotFoundError(f"no certificate with serial {wanted} was issued here")
            revoked[wanted] = {
                "not_after": entry["not_after"],
                "revoked_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
            }
            await asyncio.to_thread(self._write_ledger, "revoked.json", revoked)

    async def crl(self) -> str:
        issuer, _ = await self._authority()
        async with self._lock:
            revoked = await asyncio.to_thread(self._read_ledger, "revoked.json")
        times = {s: datetime.fromisoformat(e["revoked_at"]) for s, e in revoked.items()}
        return await asyncio.to_thread(pki.build_crl, issuer, times, next_update=CRL_VALIDITY)

    async def _authority(self) -> tuple[pki.CaMaterial, str]:
        if self._ca is None:
            async with self._lock:
                if self._ca is None:
                    self._ca = await asyncio.to_thread(self._load_or_create_ca)
        return self._ca

    def _load_or_create_ca(self) -> tuple[pki.CaMaterial, str]:
        files = {name: self.pki_dir / name for name in ("root.crt", "root.key", "ca.crt", "ca.key")}
        if all(path.is_file() for path in files.values()):
            issuer = pki.CaMaterial(
                certificate=files["ca.crt"].read_text(), private_key=files["ca.key"].read_text()
            )
            return issuer, files["root.crt"].read_text()
        if any(path.exists() for path in files.values()):
            present = sorted(name for name, path in files.items() if path.exists())
            raise InvalidError(
                f"the CA in {self.pki_dir} is incomplete (only {', '.join(present)}); "
                "restore the missing files or remove the directory to make a new CA"
            )
        root = pki.create_root(ROOT_COMMON_NAME, ttl=ROOT_TTL)
        issuer = pki.create_intermediate(root, INTERMEDIATE_COMMON_NAME, ttl=INTERMEDIATE_TTL)
        ensure_private_dir(self.pki_dir)
        # Keys first: a crash leaves no certificate without its key.
        write_atomic(files["root.key"], root.private_key.encode(), mode=PRIVATE)
        write_atomic(files["ca.key"], issuer.private_key.encode(), mode=PRIVATE)
        write_atomic(files["ca.crt"], issuer.certificate.encode(), mode=PUBLIC)
        write_atomic(files["root.crt"], root.certificate.encode(), mode=PUBLIC)
        return issuer, root.certificate

    def _read_ledger(self, name: str) -> dict[str, Any]:
        try:
            ledger: dict[str, Any] = json.loads((self.pki_dir / name).read_text())
        except FileNotFoundError:
            return {}
        return ledger

    def _write_ledger(self, name: str, ledger: dict[str, Any]) -> None:
        # Expired certificates need no ledger entry, revoked or not.
        now = datetime.now(UTC)
        live = {
            serial: entry
            for serial, entry in ledger.items()
            if datetime.fromisoformat(entry["not_after"]) > now
        }
        write_atomic(self.pki_dir / name, json.dumps(live, indent=1).encode(), mode=PUBLIC)
