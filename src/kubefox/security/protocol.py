"""The two ports of the security layer: a secrets store and a certificate authority.

:class:`SecretsBackend` keeps secret *documents* (small JSON objects) by path,
with KV v2 semantics: every put makes a new version, numbered from 1; a put
may be conditional on the current version (check-and-set, ``cas=0`` means
"only if absent"); older versions stay readable for a while; delete removes a
document with all its versions.

:class:`CertificateAuthority` issues leaf certificates (server and client
use) for DNS and IP names with a lifetime, revokes them and publishes a CRL.

Both ports are implemented by one object per backend (:class:`SecurityBackend`):
``OpenBaoBackend`` (OpenBao or Vault over HTTP) and ``EmbeddedSecretsBackend``
(files in the state directory, for ``fox up``). One contract suite,
``tests/contracts/secrets.py``, runs against both.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from kubefox.core.errors import InvalidError

#: One path segment: what both backends accept without escaping.
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_MAX_SEGMENTS = 16
#: Labels of a DNS name (a leading ``*.`` is allowed for wildcard certificates).
_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SecretDocument:
    """One version of a secret document.

    ``data`` is a JSON object; treat it as secret: never log it.
    """

    path: str
    data: Mapping[str, Any] = dataclasses.field(repr=False)
    version: int
    created_at: datetime


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class IssuedCertificate:
    """A leaf certificate with its key, as PEM text.

    ``chain`` is the leaf followed by the intermediates that issued it: what a
    server presents (its ``cert_file``). ``ca_bundle`` holds the trust anchors
    a peer needs (its ``ca_file``). ``serial`` is lowercase hex without
    separators, as :meth:`CertificateAuthority.revoke` takes it.
    """

    certificate: str
    chain: str
    private_key: str = dataclasses.field(repr=False)
    ca_bundle: str
    serial: str
    not_before: datetime
    not_after: datetime

    @property
    def lifetime(self) -> timedelta:
        """From ``not_before`` to ``not_after``."""
        return self.not_after - self.not_before


class SecretsBackend(Protocol):
    """Versioned secret documents by path (``env/qa``, ``nats/accounts/shop``)."""

    async def put(
        self, path: str, data: Mapping[str, Any], *, cas: int | None = None
    ) -> SecretDocument:
        """Store ``data`` as the next version of ``path`` and return that version.

        Raises:
            ConflictError: ``cas`` was given and is not the current version
                (``0``: the document exists).
            InvalidError: the path is malformed or ``data`` is not a JSON object.
        """
        ...

    async def get(self, path: str, *, version: int | None = None) -> SecretDocument:
        """The latest version of ``path``, or the given ``version``.

        Raises:
            NotFoundError: no such document or version.
        """
        ...

    async def delete(self, path: str) -> None:
        """Remove ``path`` with all its versions; removing a missing path is a no-op."""
        ...

    async def list(self, prefix: str = "") -> list[str]:
        """Every document path under ``prefix`` (a folder path or ``""``), sorted."""
        ...

    async def aclose(self) -> None:
        """Release connections; idempotent."""
        ...


class CertificateAuthority(Protocol):
    """Issues, revokes and publishes the revocation list of leaf certificates."""

    async def ca_bundle(self) -> str:
        """The PEM trust anchors (root certificates) every peer should trust."""
        ...

    async def issue(
        self,
        common_name: str,
        *,
        dns_names: Sequence[str] = (),
        ip_addresses: Sequence[str] = (),
        ttl: timedelta,
    ) -> IssuedCertificate:
        """A new key and a certificate for server and client authentication.

        The certificate names ``common_name`` and ``dns_names`` as DNS SANs and
        ``ip_addresses`` as IP SANs, and expires ``ttl`` from now.

        Raises:
            InvalidError: a name or address is malformed or ``ttl`` is not positive.
        """
        ...

    async def revoke(self, serial: str) -> None:
        """Put the certificate with ``serial`` on the revocation list.

        Raises:
            NotFoundError: this CA issued no such certificate.
        """
        ...

    async def crl(self) -> str:
        """The current certificate revocation list (PEM), signed by the issuing CA."""
        ...


class SecurityBackend(SecretsBackend, CertificateAuthority, Protocol):
    """Both ports in one object, as :func:`~kubefox.security.open_secrets_backend` returns."""


def check_path(path: str) -> str:
    """Return ``path`` if it is ``segment(/segment)*`` with safe segments, else raise.

    Raises:
        InvalidError: empty, absolute, ``..``, or characters the backends escape.
    """
    segments = path.split("/")
    if len(segments) > _MAX_SEGMENTS or not all(_SEGMENT.match(s) for s in segments):
        raise InvalidError(
            f"malformed secret path {path!r}: expected segments of letters, digits, "
            "'.', '_' or '-' separated by '/'",
            path=path,
        )
    if any(s in {".", ".."} for s in segments):
        raise InvalidError(f"malformed secret path {path!r}: '.' and '..' are not allowed")
    return path


def check_document(data: object) -> dict[str, Any]:
    """A JSON-ready copy of ``data``, which must be a JSON object with string keys.

    Raises:
        InvalidError: anything else; the message never shows the values.
    """
    if not isinstance(data, Mapping) or not all(isinstance(k, str) for k in data):
        raise InvalidError("a secret document must be a JSON object with string keys")
    try:
        # The round trip also copies: a caller's later change never reaches the store.
        copied: dict[str, Any] = json.loads(json.dumps(dict(data)))
    except (TypeError, ValueError) as exc:
        raise InvalidError("a secret document must be JSON-serialisable") from exc
    return copied


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` without a trailing ``/`` if it is ``""`` or a valid path."""
    stripped = prefix.rstrip("/")
    return stripped if not stripped else check_path(stripped)


def check_names(
    common_name: str, dns_names: Sequence[str], ip_addresses: Sequence[str], ttl: timedelta
) -> tuple[list[str], list[str]]:
    """Validate a certificate request; return the DNS names (CN first) and IPs, deduplicated.

    Raises:
        InvalidError: a name or address is malformed or ``ttl`` is not positive.
    """
    if ttl <= timedelta(0):
        raise InvalidError("certificate ttl must be positive", ttl=str(ttl))
    names: list[str] = []
    for name in (common_name, *dns_names):
        labels = name.removeprefix("*.").split(".")
        if len(name) > 253 or not all(_DNS_LABEL.match(label) for label in labels):
            raise InvalidError(f"malformed DNS name {name!r}", name=name)
        if name not in names:
            names.append(name)
    addresses: list[str] = []
    for address in ip_addresses:
        try:
            canonical = str(ipaddress.ip_address(address))
        except ValueError as exc:
            raise InvalidError(f"malformed IP address {address!r}", address=address) from exc
        if canonical not in addresses:
            addresses.append(canonical)
    return names, addresses


def normalise_serial(serial: str) -> str:
    """A serial as lowercase hex without separators or leading zeros (``"0a:1b"`` -> ``"a1b"``).

    Raises:
        InvalidError: not hexadecimal.
    """
    digits = serial.replace(":", "").replace("-", "").strip().lower()
    try:
        return format(int(digits, 16), "x")
    except ValueError as exc:
        raise InvalidError(f"malformed certificate serial {serial!r}", serial=serial) from exc
