"""What the CONNECT line says: server URLs, credentials from the URL or a ``.creds`` file.

A ``.creds`` file holds a user JWT and the user's nkey seed between
``-----BEGIN ...-----``/``------END ...------`` fences; the JWT goes into
CONNECT and the seed signs the server's nonce (ed25519, through the ``nkeys``
package, imported only when a creds file is used, so a component without the
``security`` extra never needs it).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from kubefox.core.nats_options import NatsConnectOptions
from kubefox.natsio.errors import ConnectError

DEFAULT_PORT = 4222
LANG = "python3"
VERSION = "kubefox-natsio-1"

# The fences of a .creds file, as nats.go reads them.
_CREDS_BLOCK = re.compile(
    r"^\s*(?:-{3,}[^\n]*-{3,}\r?\n)([\w\-.=]+)(?:\r?\n-{3,}[^\n]*-{3,}(?:\r?\n|\Z))",
    re.MULTILINE,
)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ServerAddress:
    """One entry of the server list, parsed."""

    scheme: str
    host: str
    port: int
    user: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    token: str | None = dataclasses.field(default=None, repr=False)

    @property
    def wants_tls(self) -> bool:
        """Whether the URL itself asks for TLS (``tls://``)."""
        return self.scheme == "tls"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def parse_server(url: str) -> ServerAddress:
    """``nats://[user:password@|token@]host[:port]`` (also ``tls://``, or no scheme).

    Raises:
        ConnectError: the URL has no host, a bad port or an unknown scheme.
    """
    text = url.strip()
    if "://" not in text:
        text = f"nats://{text}"
    parts = urlsplit(text)
    if parts.scheme not in ("nats", "tls"):
        raise ConnectError(f"unsupported scheme in {url!r}: use nats:// or tls://")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError as exc:
        raise ConnectError(f"bad port in {url!r}") from exc
    if not parts.hostname:
        raise ConnectError(f"no host in {url!r}")
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    token = None
    if user is not None and password is None:
        user, token = None, user
    return ServerAddress(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port,
        user=user,
        password=password,
        token=token,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class UserCreds:
    """The user JWT and seed of a ``.creds`` file."""

    jwt: str
    seed: str = dataclasses.field(repr=False)


def read_creds(path: Path) -> UserCreds:
    """The JWT and seed in the ``.creds`` file at ``path``.

    Raises:
        ConnectError: the file cannot be read or does not hold both.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConnectError(f"cannot read credentials {path}: {exc}") from exc
    return parse_creds(text, source=str(path))


def parse_creds(text: str, *, source: str = "creds") -> UserCreds:
    """The JWT and seed in the text of a ``.creds`` file.

    Raises:
        ConnectError: the text does not hold a JWT block and a seed block.
    """
    blocks = _CREDS_BLOCK.findall(text)
    if len(blocks) < 2:
        raise ConnectError(f"{source} holds no user JWT and seed")
    return UserCreds(jwt=blocks[0], seed=blocks[1])


def sign_nonce(seed: str, nonce: str) -> str:
    """The signature of the server's ``nonce`` with ``seed``, base64url without padding.

    Raises:
        ConnectError: the ``nkeys`` package is missing or the seed is invalid.
    """
    try:
        import nkeys
    except ImportError as exc:  # pragma: no cover - the security extra brings it
        raise ConnectError("a .creds file needs the nkeys package: pip install nkeys") from exc
    try:
        signed: bytes = nkeys.from_seed(seed.encode()).sign(nonce.encode())
    except Exception as exc:  # nkeys raises its own errors and nacl's
        raise ConnectError(f"cannot sign the server nonce: {type(exc).__name__}") from exc
    return base64.urlsafe_b64encode(signed).rstrip(b"=").decode()


def connect_line(
    *,
    name: str,
    address: ServerAddress,
    info: dict[str, Any],
    creds: UserCreds | None,
    tls: bool,
) -> bytes:
    """The ``CONNECT {...}`` line for a server that sent ``info``."""
    options: dict[str, Any] = {
        "verbose": False,
        "pedantic": False,
        "lang": LANG,
        "version": VERSION,
        "protocol": 1,
        "headers": True,
        "no_responders": True,
        "echo": True,
        "tls_required": tls,
        "name": name,
    }
    if creds is not None:
        options["jwt"] = creds.jwt
        nonce = info.get("nonce")
        if isinstance(nonce, str):
            options["sig"] = sign_nonce(creds.seed, nonce)
    elif address.token is not None:
        options["auth_token"] = address.token
    elif address.user is not None:
        options["user"] = address.user
        options["pass"] = address.password or ""
    return b"CONNECT " + json.dumps(options, separators=(",", ":")).encode() + b"\r\n"


class Secrets:
    """The TLS context and the user credential of one client, each built when first needed."""

    __slots__ = ("_creds", "_options", "_ssl")

    def __init__(self, options: NatsConnectOptions) -> None:
        self._options = options
        self._ssl: ssl.SSLContext | None = None
        self._creds: UserCreds | None = None

    def ssl_context(self) -> ssl.SSLContext:
        """The options' context (trusting their CA), or the system's default one."""
        if self._ssl is None:
            self._ssl = self._options.ssl_context() or ssl.create_default_context()
        return self._ssl

    def user_creds(self) -> UserCreds | None:
        """The user JWT and seed of the options' ``.creds`` file, if they name one."""
        if self._options.creds_file is None:
            return None
        if self._creds is None:
            self._creds = read_creds(self._options.creds_file)
        return self._creds
