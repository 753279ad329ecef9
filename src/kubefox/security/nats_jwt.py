"""NATS decentralised auth: nkeys, operator/account/user JWTs and ``.creds`` text.

The only module that imports ``nkeys`` and ``nacl`` (import-linter). It
encodes the JWTs itself, as nats-server reads them (``nats-io/jwt`` v2), and
does not use the ``nats-jwt`` package, which was checked against this server
and found to write an account's ``revocations`` not at all, the JetStream
memory limit as ``memory_storage`` (the server reads ``mem_storage``), and a
user's response permission as ``max_msgs``/``expires`` (the server reads
``max``/``ttl``): each would have silently weakened or broken what we issue.
Every JWT made here is decoded back in the tests.

Claims shape (JSON, ``iat``/``exp`` in Unix seconds, ``ttl`` in nanoseconds)::

    operator  {"sub": O..., "iss": O..., "nats": {"type": "operator", "version": 2,
               "system_account": A...}}
    account   {"sub": A..., "iss": O..., "nats": {"type": "account", "version": 2,
               "limits": {...}, "revocations": {U...: iat},
               "exports": [{"name", "subject", "type": "service", "response_type",
                            "response_threshold": ns}],
               "imports": [{"name", "subject", "account": A..., "type": "service"}]}}
    user      {"sub": U..., "iss": A..., "exp": ..., "nats": {"type": "user", "version": 2,
               "pub": {"allow": [...]}, "sub": {"allow": [...]}, "resp": {"max": 1, "ttl": ns}}}
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import hashlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol

import nacl.exceptions
import nacl.signing
import nkeys

from kubefox.core.errors import InvalidError

_HEADER = {"typ": "JWT", "alg": "ed25519-nkey"}
_VERSION = 2
#: -1 everywhere: no limit (the server's reading of a missing limit is "none allowed").
_NO_LIMITS: dict[str, Any] = {
    "subs": -1,
    "data": -1,
    "payload": -1,
    "imports": -1,
    "exports": -1,
    "wildcards": True,
    "conn": -1,
    "leaf": -1,
}
_JETSTREAM_UNLIMITED: dict[str, Any] = {
    "mem_storage": -1,
    "disk_storage": -1,
    "streams": -1,
    "consumer": -1,
}


class KeyKind(enum.Enum):
    """The nkey roles we create, with their prefix byte (first letter O, A or U)."""

    OPERATOR = nkeys.PREFIX_BYTE_OPERATOR
    ACCOUNT = nkeys.PREFIX_BYTE_ACCOUNT
    USER = nkeys.PREFIX_BYTE_USER


@dataclasses.dataclass(frozen=True, slots=True)
class NKeyPair:
    """An nkey: the seed (secret, ``S...``) and its public key (``O...``, ``A...``, ``U...``)."""

    seed: str = dataclasses.field(repr=False)
    public_key: str

    @classmethod
    def create(cls, kind: KeyKind) -> NKeyPair:
        """A new random key of ``kind``."""
        seed = nkeys.encode_seed(os.urandom(32), kind.value)
        return cls.from_seed(seed.decode())

    @classmethod
    def from_seed(cls, seed: str) -> NKeyPair:
        """The key pair of ``seed``.

        Raises:
            InvalidError: not an nkey seed.
        """
        try:
            pair = nkeys.from_seed(seed.encode())
            public = pair.public_key.decode()
        except (nkeys.NkeysError, ValueError) as exc:
            raise InvalidError("not an nkey seed") from exc
        return cls(seed=seed, public_key=public)

    def sign(self, data: bytes) -> bytes:
        """The ed25519 signature of ``data``."""
        signature: bytes = nkeys.from_seed(self.seed.encode()).sign(data)
        return signature


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ResponsePermission:
    """Publishing to the reply subject of a received request (NATS ``allow_responses``)."""

    max_msgs: int = 1
    expires: timedelta | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Permissions:
    """A user's subject permissions. A subscribe entry may be ``"subject queue"``.

    Nothing is allowed that is not listed: an empty allow list is written as
    ``deny: [">"]``, because NATS reads a missing list as "everything".
    """

    publish_allow: tuple[str, ...] = ()
    publish_deny: tuple[str, ...] = ()
    subscribe_allow: tuple[str, ...] = ()
    subscribe_deny: tuple[str, ...] = ()
    responses: ResponsePermission | None = None

    def claims(self) -> dict[str, Any]:
        """The ``pub``/``sub``/``resp`` part of a user JWT's ``nats`` object."""
        claims: dict[str, Any] = {
            "pub": _permission(self.publish_allow, self.publish_deny),
            "sub": _permission(self.subscribe_allow, self.subscribe_deny),
        }
        if self.responses is not None:
            resp: dict[str, int] = {"max": self.responses.max_msgs}
            if self.responses.expires is not None:
                resp["ttl"] = int(self.responses.expires.total_seconds() * 1_000_000_000)
            claims["resp"] = resp
        return claims


class AccountLink(Protocol):
    """An export or import of an account JWT."""

    def claims(self) -> dict[str, Any]:
        """Its entry in the JWT's ``exports`` or ``imports``."""
        ...


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ServiceExport:
    """A subject other accounts may send requests to, answered once (``Singleton``).

    Public: any account may import it. Only our operator signs accounts, so
    which account imports what is decided by whoever holds the operator key.
    ``response_threshold`` is how long the server keeps the way back for a
    reply; a reply later than that is dropped.
    """

    name: str
    subject: str
    response_threshold: timedelta = timedelta(minutes=2)

    def claims(self) -> dict[str, Any]:
        """The entry in an account JWT's ``exports``."""
        return {
            "name": self.name,
            "subject": self.subject,
            "type": "service",
            "response_type": "Singleton",
            "response_threshold": int(self.response_threshold.total_seconds() * 1_000_000_000),
        }


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StreamExport:
    """Messages published here on ``subject`` are also delivered in accounts importing it."""

    name: str
    subject: str

    def claims(self) -> dict[str, Any]:
        """The entry in an account JWT's ``exports``."""
        return {"name": self.name, "subject": self.subject, "type": "stream"}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Import:
    name: str
    subject: str
    account: str
    kind: ClassVar[str]

    def claims(self) -> dict[str, Any]:
        """The entry in an account JWT's ``imports``."""
        _expect(self.account, "A")
        return {
            "name": self.name,
            "subject": self.subject,
            "account": self.account,
            "type": self.kind,
        }


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ServiceImport(_Import):
    """Requests published here on ``subject`` go to ``account``'s export; replies come back."""

    kind: ClassVar[str] = "service"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StreamImport(_Import):
    """Messages ``account`` publishes on ``subject`` (its export) are delivered here too."""

    kind: ClassVar[str] = "stream"


def operator_jwt(operator: NKeyPair, name: str, *, system_account: str) -> str:
    """The self-signed operator JWT naming ``system_account``."""
    _expect(operator.public_key, "O")
    _expect(system_account, "A")
    return encode_jwt(
        {
            "sub": operator.public_key,
            "name": name,
            "nats": {"type": "operator", "version": _VERSION, "system_account": system_account},
        },
        operator,
    )


def account_jwt(
    operator: NKeyPair,
    account: str,
    name: str,
    *,
    jetstream: bool = True,
    revocations: Mapping[str, int] | None = None,
    exports: Sequence[AccountLink] = (),
    imports: Sequence[AccountLink] = (),
) -> str:
    """An account JWT signed by ``operator``.

    ``jetstream`` turns on unlimited JetStream (memory and file) for the
    account; the system account must not have it. ``revocations`` maps user
    public keys to a Unix time: user JWTs of that key issued at or before it
    are refused. ``exports`` and ``imports`` link it to other accounts.
    """
    _expect(operator.public_key, "O")
    _expect(account, "A")
    limits = dict(_NO_LIMITS) | (_JETSTREAM_UNLIMITED if jetstream else {})
    nats: dict[str, Any] = {"type": "account", "version": _VERSION, "limits": limits}
    if revocations:
        nats["revocations"] = {key: int(at) for key, at in sorted(revocations.items())}
    if exports:
        nats["exports"] = [export.claims() for export in exports]
    if imports:
        nats["imports"] = [entry.claims() for entry in imports]
    return encode_jwt({"sub": account, "name": name, "nats": nats}, operator)


def user_jwt(
    account: NKeyPair,
    user: str,
    name: str,
    *,
    permissions: Permissions,
    expires_at: datetime | None = None,
    tags: Sequence[str] = (),
) -> str:
    """A user JWT signed by ``account`` with exactly ``permissions``."""
    _expect(account.public_key, "A")
    _expect(user, "U")
    nats: dict[str, Any] = {
        "type": "user",
        "version": _VERSION,
        "subs": -1,
        "data": -1,
        "payload": -1,
        **permissions.claims(),
    }
    if tags:
        nats["tags"] = list(tags)
    claims: dict[str, Any] = {"sub": user, "name": name, "nats": nats}
    if expires_at is not None:
        claims["exp"] = int(expires_at.timestamp())
    return encode_jwt(claims, account)


def encode_jwt(claims: Mapping[str, Any], issuer: NKeyPair) -> str:
    """Sign ``claims`` (plus ``iat``, ``iss`` and ``jti``) as a JWT with ``issuer``'s nkey."""
    body = dict(claims)
    body["iat"] = int(time.time())
    body["iss"] = issuer.public_key
    body.pop("jti", None)
    # As nats-io/jwt: the id is the hash of the claims without it.
    digest = hashlib.new("sha512_256", _json(body)).digest()
    body["jti"] = base64.b32encode(digest).decode().rstrip("=")
    signing_input = f"{_b64(_json(_HEADER))}.{_b64(_json(body))}"
    return f"{signing_input}.{_b64(issuer.sign(signing_input.encode()))}"


def decode_jwt(token: str) -> dict[str, Any]:
    """The claims of ``token`` once its signature verifies against its ``iss`` key.

    Raises:
        InvalidError: malformed, not an nkey JWT, or the signature does not verify.
    """
    try:
        header_b64, body_b64, signature_b64 = token.split(".")
        header = json.loads(_unb64(header_b64))
        body: dict[str, Any] = json.loads(_unb64(body_b64))
        signature = _unb64(signature_b64)
    except ValueError as exc:
        raise InvalidError("malformed JWT") from exc
    if header.get("alg") != _HEADER["alg"]:
        raise InvalidError(f"unexpected JWT algorithm {header.get('alg')!r}")
    verify_key = nacl.signing.VerifyKey(_raw_public_key(str(body.get("iss", ""))))
    try:
        verify_key.verify(f"{header_b64}.{body_b64}".encode(), signature)
    except nacl.exceptions.BadSignatureError as exc:
        raise InvalidError("the JWT signature does not verify against its issuer") from exc
    return body


def format_creds(jwt: str, seed: str) -> str:
    """The ``.creds`` text nats clients read (``nats.connect(user_credentials=path)``)."""
    return (
        "-----BEGIN NATS USER JWT-----\n"
        f"{jwt}\n"
        "------END NATS USER JWT------\n\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n"
        "NKEYs are sensitive and should be treated as secrets.\n\n"
        "-----BEGIN USER NKEY SEED-----\n"
        f"{seed}\n"
        "------END USER NKEY SEED------\n\n"
        "*************************************************************\n"
    )


def _permission(allow: Sequence[str], deny: Sequence[str]) -> dict[str, list[str]]:
    permission: dict[str, list[str]] = {}
    if allow:
        permission["allow"] = list(allow)
    if deny or not allow:
        permission["deny"] = list(deny) if allow else [">"]
    return permission


def _raw_public_key(public_key: str) -> bytes:
    try:
        raw = base64.b32decode(public_key + "=" * (-len(public_key) % 8))
    except ValueError as exc:
        raise InvalidError(f"malformed nkey public key {public_key!r}") from exc
    if len(raw) != 35 or nkeys.crc16_checksum(raw[:-2]) != raw[-2:]:
        raise InvalidError(f"malformed nkey public key {public_key!r}")
    return raw[1:33]


def _expect(public_key: str, prefix: str) -> None:
    if not public_key.startswith(prefix):
        raise InvalidError(f"expected an nkey starting with {prefix!r}, got {public_key[:1]!r}")
    _raw_public_key(public_key)


def _json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
