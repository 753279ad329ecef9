"""OpenBao (or HashiCorp Vault) as the secrets store and the certificate authority.

Plain ``httpx`` against the HTTP API, no client library: only a handful of
endpoints are used, and this is the only module that talks to Bao
(import-linter):

* secrets: a KV **v2** mount (default ``kubefox/kv``), one document per path,
  ``cas`` for check-and-set, ``DELETE .../metadata/<path>`` to remove every
  version (upstream KubeFox deletes the same way, §5.2);
* certificates: a PKI mount holding the root (default ``kubefox/pki-root``)
  and one holding an intermediate signed by it (``kubefox/pki``), which issues
  leaves through one role (``kubefox``), as upstream's per-namespace
  intermediate does (§5.1).

:meth:`OpenBaoBackend.connect` creates whatever is missing (mounts, CAs,
role), so a fresh dev server is ready after one call, and an existing setup is
left as it is. The token needs the policies to do that, or an administrator
creates the mounts beforehand.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from kubefox.core.errors import (
    ConflictError,
    InvalidError,
    KubeFoxError,
    NotFoundError,
    UnauthorizedError,
    UnavailableError,
)
from kubefox.security import pki
from kubefox.security.protocol import (
    IssuedCertificate,
    SecretDocument,
    check_document,
    check_names,
    check_path,
    check_prefix,
    normalise_serial,
)
from kubefox.security.settings import (
    DEFAULT_KV_MOUNT,
    DEFAULT_PKI_MOUNT,
    DEFAULT_ROLE,
    DEFAULT_ROOT_MOUNT,
)

ROOT_COMMON_NAME = "KubeFox Root CA"
INTERMEDIATE_COMMON_NAME = "KubeFox Platform Intermediate CA"
#: Longest lifetime of the root; the intermediate and leaves are capped by it.
MAX_TTL = timedelta(days=3650)
INTERMEDIATE_TTL = timedelta(days=1825)
#: Longest leaf the role issues.
LEAF_MAX_TTL = timedelta(days=365)

_MOUNT = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
_NANOS = re.compile(r"(\.\d{6})\d+")


class OpenBaoBackend:
    """``SecretsBackend`` and ``CertificateAuthority`` on an OpenBao/Vault server.

    Build it with :meth:`connect`; the ``client`` it owns is closed by
    :meth:`aclose`.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        kv_mount: str = DEFAULT_KV_MOUNT,
        pki_mount: str = DEFAULT_PKI_MOUNT,
        root_mount: str = DEFAULT_ROOT_MOUNT,
        role: str = DEFAULT_ROLE,
    ) -> None:
        for mount in (kv_mount, pki_mount, root_mount):
            if not _MOUNT.match(mount):
                raise InvalidError(f"malformed mount path {mount!r}", mount=mount)
        if not _MOUNT.match(role) or "/" in role:
            raise InvalidError(f"malformed PKI role name {role!r}", role=role)
        self._client = client
        self.kv_mount = kv_mount
        self.pki_mount = pki_mount
        self.root_mount = root_mount
        self.role = role
        self._root_pem: str | None = None

    @classmethod
    async def connect(
        cls,
        address: str,
        *,
        token: str,
        kv_mount: str = DEFAULT_KV_MOUNT,
        pki_mount: str = DEFAULT_PKI_MOUNT,
        root_mount: str = DEFAULT_ROOT_MOUNT,
        role: str = DEFAULT_ROLE,
        verify: str | bool = True,
        request_timeout: float = 10.0,
    ) -> OpenBaoBackend:
        """Connect to ``address`` (``http(s)://host:port``) and create what is missing.

        ``verify`` is a CA bundle file for an https address (or ``False`` in tests);
        ``request_timeout`` bounds each HTTP request.

        Raises:
            UnavailableError: the server does not answer or is sealed.
            UnauthorizedError: the token may not do what setting up needs.
        """
        client = httpx.AsyncClient(
            base_url=f"{address.rstrip('/')}/v1/",
            headers={"X-Vault-Token": token},
            timeout=request_timeout,
            verify=verify,
        )
        backend = cls(
            client, kv_mount=kv_mount, pki_mount=pki_mount, root_mount=root_mount, role=role
        )
        try:
            await backend.setup()
        except BaseException:
            await client.aclose()
            raise
        return backend

    async def aclose(self) -> None:
        await self._client.aclose()

    async def setup(self) -> None:
        """Mount KV v2 and both PKI engines if missing, create the CAs if missing, and the role."""
        health = await self._call("GET", "sys/health", allowed={429, 472, 473, 501, 503})
        if health is None or health.get("sealed") or not health.get("initialized", True):
            raise UnavailableError("the OpenBao server is sealed or not initialised")
        mounts = await self._call("GET", "sys/mounts") or {}
        present = {str(path).rstrip("/") for path in mounts.get("data", mounts)}
        if self.kv_mount not in present:
            await self._call(
                "POST",
                f"sys/mounts/{self.kv_mount}",
                json={"type": "kv", "options": {"version": "2"}},
            )
        for mount in (self.root_mount, self.pki_mount):
            if mount not in present:
                await self._call(
                    "POST",
                    f"sys/mounts/{mount}",
                    json={"type": "pki", "config": {"max_lease_ttl": _ttl(MAX_TTL)}},
                )
        if not await self._has_issuer(self.root_mount):
            await self._call(
                "POST",
                f"{self.root_mount}/root/generate/internal",
                json={
                    "common_name": ROOT_COMMON_NAME,
                    "ttl": _ttl(MAX_TTL),
                    "key_type": "ec",
                    "key_bits": 256,
                },
            )
        if not await self._has_issuer(self.pki_mount):
            await self._create_intermediate()
        await self._call(
            "POST",
            f"{self.pki_mount}/roles/{self.role}",
            json={
                "allow_any_name": True,
                "allow_ip_sans": True,
                "allow_localhost": True,
                "allow_wildcard_certificates": False,
                "enforce_hostnames": True,
                "key_type": "ec",
                "key_bits": 256,
                "max_ttl": _ttl(LEAF_MAX_TTL),
                "server_flag": True,
                "client_flag": True,
            },
        )

    # -- SecretsBackend ----------------------------------------------------------------

    async def put(
        self, path: str, data: Mapping[str, Any], *, cas: int | None = None
    ) -> SecretDocument:
        check_path(path)
        stored = check_document(data)
        body: dict[str, Any] = {"data": stored}
        if cas is not None:
            body["options"] = {"cas": cas}
        try:
            answer = await self._call("POST", f"{self.kv_mount}/data/{path}", json=body)
        except InvalidError as exc:
            if "check-and-set" in str(exc):
                raise ConflictError(
                    f"secret {path!r} is not at version {cas}", path=path, expected=cas
                ) from exc
            raise
        meta = _data(answer)
        return SecretDocument(
            path=path, data=stored, version=int(meta["version"]), created_at=_time(meta)
        )

    async def get(self, path: str, *, version: int | None = None) -> SecretDocument:
        check_path(path)
        params = {"version": str(version)} if version is not None else None
        answer = await self._call("GET", f"{self.kv_mount}/data/{path}", params=params)
        payload = _data(answer) if answer is not None else {}
        if payload.get("data") is None:
            # 404, or a version that was deleted or destroyed
            where = f"{path!r}" if version is None else f"{path!r} version {version}"
            raise NotFoundError(f"no secret at {where}", path=path)
        meta = payload["metadata"]
        return SecretDocument(
            path=path, data=payload["data"], version=int(meta["version"]), created_at=_time(meta)
        )

    async def delete(self, path: str) -> None:
        check_path(path)
        await self._call("DELETE", f"{self.kv_mount}/metadata/{path}")

    async def list(self, prefix: str = "") -> list[str]:
        folder = check_prefix(prefix)
        found: list[str] = []
        pending = [f"{folder}/" if folder else ""]
        while pending:
            current = pending.pop()
            answer = await self._call(
                "GET", f"{self.kv_mount}/metadata/{current}", params={"list": "true"}
            )
            for key in _data(answer).get("keys", []) if answer is not None else []:
                (pending if key.endswith("/") else found).append(f"{current}{key}")
        return sorted(found)

    # -- CertificateAuthority ----------------------------------------------------------

    async def ca_bundle(self) -> str:
        if self._root_pem is None:
            response = await self._raw("GET", f"{self.root_mount}/ca/pem")
            self._root_pem = response.text.strip() + "\n"
        return self._root_pem

    async def issue(
        self,
        common_name: str,
        *,
        dns_names: Sequence[str] = (),
        ip_addresses: Sequence[str] = (),
        ttl: timedelta,
    ) -> IssuedCertificate:
        names, addresses = check_names(common_name, dns_names, ip_addresses, ttl)
        answer = await self._call(
            "POST",
            f"{self.pki_mount}/issue/{self.role}",
            json={
                "common_name": common_name,
                "alt_names": ",".join(n for n in names if n != common_name),
                "ip_sans": ",".join(addresses),
                "ttl": _ttl(ttl),
            },
        )
        data = _data(answer)
        certificate = data["certificate"].strip() + "\n"
        issuing = data["issuing_ca"].strip() + "\n"
        info = pki.certificate_info(certificate)
        return IssuedCertificate(
            certificate=certificate,
            chain=certificate + issuing,
            private_key=data["private_key"].strip() + "\n",
            ca_bundle=await self.ca_bundle(),
            serial=normalise_serial(data["serial_number"]),
            not_before=info.not_before,
            not_after=info.not_after,
        )

    async def revoke(self, serial: str) -> None:
        digits = normalise_serial(serial)
        digits = digits.zfill(len(digits) + len(digits) % 2)
        colon = ":".join(digits[i : i + 2] for i in range(0, len(digits), 2))
        try:
            await self._call("POST", f"{self.pki_mount}/revoke", json={"serial_number": colon})
        except InvalidError as exc:
            if "not found" in str(exc):
                raise NotFoundError(
                    f"no certificate with serial {serial} was issued here", serial=serial
                ) from exc
            raise

    async def crl(self) -> str:
        response = await self._raw("GET", f"{self.pki_mount}/crl/pem")
        return response.text.strip() + "\n"

    # -- plumbing ----------------------------------------------------------------------

    async def _has_issuer(self, mount: str) -> bool:
        answer = await self._call("GET", f"{mount}/issuers", params={"list": "true"})
        return answer is not None and bool(_data(answer).get("keys"))

    async def _create_intermediate(self) -> None:
        csr = _data(
            await self._call(
                "POST",
                f"{self.pki_mount}/intermediate/generate/internal",
                json={"common_name": INTERMEDIATE_COMMON_NAME, "key_type": "ec", "key_bits": 256},
            )
        )["csr"]
        signed = _data(
            await self._call(
                "POST",
                f"{self.root_mount}/root/sign-intermediate",
                json={"csr": csr, "format": "pem", "ttl": _ttl(INTERMEDIATE_TTL)},
            )
        )["certificate"]
        await self._call(
            "POST", f"{self.pki_mount}/intermediate/set-signed", json={"certificate": signed}
        )

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        allowed: set[int] | None = None,
    ) -> dict[str, Any] | None:
        """The JSON answer, ``None`` for 404 and 204; other failures raise ours."""
        response = await self._raw(method, path, json=json, params=params, allowed=allowed)
        if response.status_code in {204, 404} or not response.content:
            return None
        answer: dict[str, Any] = response.json()
        return answer

    async def _raw(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        allowed: set[int] | None = None,
    ) -> httpx.Response:
        try:
            response = await self._client.request(method, path, json=json, params=params)
        except httpx.HTTPError as exc:
            raise UnavailableError(
                f"OpenBao at {self._client.base_url} did not answer: {exc}", path=path
            ) from exc
        status = response.status_code
        if status < 400 or status == 404 or (allowed and status in allowed):
            return response
        errors = _errors(response)
        # Bao's messages name paths and parameters, never a secret's value.
        message = f"OpenBao refused {method} {path}: {errors}"
        error: type[KubeFoxError]
        if status in {401, 403}:
            error = UnauthorizedError
        elif status in {400, 405, 409, 412, 422}:
            error = InvalidError
        else:
            error = UnavailableError
        raise error(message, status=status, path=path)


def _data(answer: dict[str, Any] | None) -> dict[str, Any]:
    if answer is None or not isinstance(answer.get("data"), dict):
        raise UnavailableError("OpenBao answered without data")
    data: dict[str, Any] = answer["data"]
    return data


def _errors(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        errors = []
    return "; ".join(str(e) for e in errors) or f"HTTP {response.status_code}"


def _time(meta: Mapping[str, Any]) -> datetime:
    raw = str(meta.get("created_time") or "")
    if not raw:
        return datetime.now(UTC)
    # Bao writes nanoseconds; Python reads at most microseconds.
    return datetime.fromisoformat(_NANOS.sub(r"\1", raw).replace("Z", "+00:00"))


def _ttl(ttl: timedelta) -> str:
    return f"{max(1, int(-(-ttl.total_seconds() // 1)))}s"
