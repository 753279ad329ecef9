"""Server URLs, .creds files, the CONNECT line and the classification of -ERR texts."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from kubefox.natsio.auth import connect_line, parse_creds, parse_server, read_creds, sign_nonce
from kubefox.natsio.errors import (
    AuthorizationError,
    ConnectError,
    PermissionsViolationError,
    ServerError,
    server_error,
)
from kubefox.security.nats_jwt import KeyKind, NKeyPair, format_creds


def test_a_url_gives_scheme_host_port_and_credentials() -> None:
    address = parse_server("tls://alice:s%40cret@nats.example:4443")
    assert (address.scheme, address.host, address.port) == ("tls", "nats.example", 4443)
    assert (address.user, address.password, address.token) == ("alice", "s@cret", None)
    assert address.wants_tls
    assert str(address) == "tls://nats.example:4443"


def test_a_bare_host_gets_the_default_scheme_and_port() -> None:
    address = parse_server("127.0.0.1")
    assert (address.scheme, address.host, address.port) == ("nats", "127.0.0.1", 4222)
    assert not address.wants_tls


def test_a_user_without_password_is_a_token() -> None:
    address = parse_server("nats://t0ken@h:1")
    assert (address.user, address.token) == (None, "t0ken")


@pytest.mark.parametrize("url", ["http://h:1", "nats://h:notaport", "nats://:4222"])
def test_a_bad_url_is_a_connect_error(url: str) -> None:
    with pytest.raises(ConnectError):
        parse_server(url)


def test_a_creds_file_gives_the_jwt_and_the_seed(tmp_path: Path) -> None:
    """The format our NatsAuthority writes (and nsc does)."""
    user = NKeyPair.create(KeyKind.USER)
    path = tmp_path / "u.creds"
    path.write_text(format_creds("eyJhbGciOi.eyJqdGkiOi.c2ln", user.seed))
    creds = read_creds(path)
    assert creds.jwt == "eyJhbGciOi.eyJqdGkiOi.c2ln"
    assert creds.seed == user.seed
    assert user.seed not in repr(creds)


def test_text_without_both_blocks_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConnectError, match="no user JWT"):
        parse_creds("-----BEGIN NATS USER JWT-----\nabc\n------END NATS USER JWT------\n")
    with pytest.raises(ConnectError, match="cannot read"):
        read_creds(tmp_path / "missing.creds")


def test_the_nonce_signature_verifies_with_the_public_key() -> None:
    """ed25519 over the nonce, base64url without padding, as nats-server checks it."""
    from nacl.signing import VerifyKey

    user = NKeyPair.create(KeyKind.USER)
    signature = sign_nonce(user.seed, "n0nce")
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    VerifyKey(_raw_public(user.public_key)).verify(b"n0nce", raw)


def _raw_public(public_key: str) -> bytes:
    decoded = base64.b32decode(public_key + "=" * (-len(public_key) % 8))
    return decoded[1:-2]


def _options(line: bytes) -> dict[str, object]:
    assert line.startswith(b"CONNECT ")
    assert line.endswith(b"\r\n")
    options: dict[str, object] = json.loads(line[len(b"CONNECT ") :])
    return options


def test_connect_asks_for_headers_and_no_responders_and_is_quiet() -> None:
    options = _options(
        connect_line(name="me", address=parse_server("nats://h"), info={}, creds=None, tls=False)
    )
    assert options["verbose"] is False
    assert options["pedantic"] is False
    assert options["headers"] is True
    assert options["no_responders"] is True
    assert options["name"] == "me"
    assert "user" not in options
    assert "jwt" not in options


def test_connect_carries_url_credentials() -> None:
    line = connect_line(
        name="n", address=parse_server("nats://u:p@h"), info={}, creds=None, tls=True
    )
    options = _options(line)
    assert (options["user"], options["pass"], options["tls_required"]) == ("u", "p", True)
    token = connect_line(
        name="n", address=parse_server("nats://tk@h"), info={}, creds=None, tls=False
    )
    assert _options(token)["auth_token"] == "tk"  # noqa: S105 - the URL's test token


def test_connect_carries_the_jwt_and_the_signed_nonce() -> None:
    user = NKeyPair.create(KeyKind.USER)
    creds = parse_creds(format_creds("a.b.c", user.seed))
    options = _options(
        connect_line(
            name="n", address=parse_server("h"), info={"nonce": "xyz"}, creds=creds, tls=False
        )
    )
    assert options["jwt"] == "a.b.c"
    assert options["sig"] == sign_nonce(user.seed, "xyz")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ('Permissions Violation for Publish to "x"', PermissionsViolationError),
        ("Authorization Violation", AuthorizationError),
        ("User Authentication Expired", AuthorizationError),
        ("Stale Connection", ServerError),
    ],
)
def test_server_errors_are_classified(text: str, kind: type[ServerError]) -> None:
    error = server_error(text)
    assert type(error) is kind
    assert error.text == text
