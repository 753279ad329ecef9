"""nats_jwt: JWTs shaped as nats-server reads them, decoded back to prove it."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from nats.aio.client import Client

from kubefox.core.errors import InvalidError
from kubefox.security.nats_jwt import (
    KeyKind,
    NKeyPair,
    Permissions,
    ResponsePermission,
    ServiceExport,
    ServiceImport,
    StreamExport,
    StreamImport,
    account_jwt,
    decode_jwt,
    encode_jwt,
    format_creds,
    operator_jwt,
    user_jwt,
)


@pytest.fixture(scope="module")
def operator() -> NKeyPair:
    return NKeyPair.create(KeyKind.OPERATOR)


@pytest.fixture(scope="module")
def account() -> NKeyPair:
    return NKeyPair.create(KeyKind.ACCOUNT)


def test_keys_have_their_role_prefix_and_round_trip_through_the_seed() -> None:
    """O..., A..., U... public keys; the seed (S...) rebuilds the same pair and is never shown."""
    for kind, letter in ((KeyKind.OPERATOR, "O"), (KeyKind.ACCOUNT, "A"), (KeyKind.USER, "U")):
        pair = NKeyPair.create(kind)
        assert pair.public_key.startswith(letter)
        assert pair.seed.startswith("S" + letter)
        assert NKeyPair.from_seed(pair.seed) == pair
        assert pair.seed not in repr(pair)


def test_a_bad_seed_is_invalid() -> None:
    """Not an nkey seed: InvalidError."""
    with pytest.raises(InvalidError):
        NKeyPair.from_seed("SUnot-a-seed")


def test_the_operator_jwt_is_self_signed_and_names_the_system_account(
    operator: NKeyPair, account: NKeyPair
) -> None:
    """sub == iss == operator; the system account is in the claims."""
    claims = decode_jwt(operator_jwt(operator, "KUBEFOX", system_account=account.public_key))

    assert claims["sub"] == claims["iss"] == operator.public_key
    assert claims["name"] == "KUBEFOX"
    assert claims["nats"] == {
        "type": "operator",
        "version": 2,
        "system_account": account.public_key,
    }
    assert claims["jti"]
    assert claims["iat"] > 0


def test_account_jwts_carry_jetstream_limits_and_revocations(
    operator: NKeyPair, account: NKeyPair
) -> None:
    """The fields nats-jwt drops or misnames are there, under the server's names."""
    user = NKeyPair.create(KeyKind.USER)
    claims = decode_jwt(
        account_jwt(operator, account.public_key, "acme.shop", revocations={user.public_key: 42})
    )

    assert claims["iss"] == operator.public_key
    assert claims["nats"]["type"] == "account"
    limits = claims["nats"]["limits"]
    assert (limits["mem_storage"], limits["disk_storage"]) == (-1, -1)
    assert (limits["streams"], limits["consumer"], limits["conn"]) == (-1, -1, -1)
    assert claims["nats"]["revocations"] == {user.public_key: 42}


def test_the_system_account_has_no_jetstream(operator: NKeyPair, account: NKeyPair) -> None:
    """nats-server refuses JetStream in the system account."""
    claims = decode_jwt(account_jwt(operator, account.public_key, "SYS", jetstream=False))

    assert "mem_storage" not in claims["nats"]["limits"]
    assert "revocations" not in claims["nats"]


def test_user_jwts_carry_exact_permissions_and_expiry(account: NKeyPair) -> None:
    """pub/sub allow lists, queue entries, resp as max/ttl, exp in Unix seconds."""
    user = NKeyPair.create(KeyKind.USER)
    expires = datetime(2031, 1, 1, tzinfo=UTC)
    permissions = Permissions(
        publish_allow=("kf.p.brk.a.b.c.i",),
        subscribe_allow=("kf.p.cmp.a.b.c a-b-c", "_INBOX.x.>"),
        subscribe_deny=("kf.p.cmp.a.b.c.>",),
        responses=ResponsePermission(max_msgs=1, expires=timedelta(seconds=2)),
    )

    claims = decode_jwt(
        user_jwt(account, user.public_key, "b-i", permissions=permissions, expires_at=expires)
    )

    assert claims["sub"] == user.public_key
    assert claims["iss"] == account.public_key
    assert claims["exp"] == int(expires.timestamp())
    assert claims["nats"]["pub"] == {"allow": ["kf.p.brk.a.b.c.i"]}
    assert claims["nats"]["sub"] == {
        "allow": ["kf.p.cmp.a.b.c a-b-c", "_INBOX.x.>"],
        "deny": ["kf.p.cmp.a.b.c.>"],
    }
    assert claims["nats"]["resp"] == {"max": 1, "ttl": 2_000_000_000}
    assert "bearer_token" not in claims["nats"]


def test_an_empty_permission_list_denies_everything(account: NKeyPair) -> None:
    """NATS reads a missing list as "all"; we never write one."""
    user = NKeyPair.create(KeyKind.USER)
    claims = decode_jwt(
        user_jwt(account, user.public_key, "u", permissions=Permissions(publish_allow=("a",)))
    )

    assert claims["nats"]["sub"] == {"deny": [">"]}
    assert "resp" not in claims["nats"]


def test_keys_of_the_wrong_role_are_refused(operator: NKeyPair, account: NKeyPair) -> None:
    """An account cannot sign accounts, nor an operator users."""
    user = NKeyPair.create(KeyKind.USER)
    with pytest.raises(InvalidError):
        account_jwt(account, account.public_key, "x")
    with pytest.raises(InvalidError):
        user_jwt(operator, user.public_key, "u", permissions=Permissions())
    with pytest.raises(InvalidError):
        user_jwt(account, account.public_key, "u", permissions=Permissions())


def test_account_jwts_carry_exports_and_imports_as_the_server_reads_them(
    operator: NKeyPair, account: NKeyPair
) -> None:
    """Types in lower case, the response threshold in nanoseconds, imports naming their source."""
    other = NKeyPair.create(KeyKind.ACCOUNT).public_key
    token = account_jwt(
        operator,
        account.public_key,
        "acme",
        exports=[
            StreamExport(name="events", subject="kf.*.cmp.>"),
            ServiceExport(name="keys", subject="$KV.b.>", response_threshold=timedelta(seconds=3)),
        ],
        imports=[
            StreamImport(name="out", subject="kf.*.brk.shop.>", account=other),
            ServiceImport(name="x", subject="$KV.c.>", account=other),
        ],
    )

    claims = decode_jwt(token)["nats"]

    assert claims["exports"] == [
        {"name": "events", "subject": "kf.*.cmp.>", "type": "stream"},
        {
            "name": "keys",
            "subject": "$KV.b.>",
            "type": "service",
            "response_type": "Singleton",
            "response_threshold": 3_000_000_000,
        },
    ]
    assert [(i["type"], i["account"]) for i in claims["imports"]] == [
        ("stream", other),
        ("service", other),
    ]
    with pytest.raises(InvalidError):  # imports name an account key, not a user's
        StreamImport(
            name="x", subject="a", account=NKeyPair.create(KeyKind.USER).public_key
        ).claims()


def test_a_tampered_jwt_does_not_verify(account: NKeyPair) -> None:
    """Widening the permissions in the payload breaks the signature."""
    user = NKeyPair.create(KeyKind.USER)
    token = user_jwt(account, user.public_key, "u", permissions=Permissions(publish_allow=("a",)))
    header, body, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["nats"]["pub"] = {"allow": [">"]}
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")

    with pytest.raises(InvalidError, match="signature"):
        decode_jwt(f"{header}.{forged}.{signature}")
    with pytest.raises(InvalidError):
        decode_jwt("not.a-jwt")


def test_the_jti_is_the_hash_of_the_claims(account: NKeyPair) -> None:
    """Two JWTs with different claims have different ids."""
    one = decode_jwt(encode_jwt({"sub": "x", "name": "a"}, account))
    two = decode_jwt(encode_jwt({"sub": "x", "name": "b"}, account))

    assert one["jti"] != two["jti"]


def test_creds_text_is_what_nats_py_reads(account: NKeyPair, tmp_path: Path) -> None:
    """nats-py's own parser finds the JWT and the seed in our .creds text."""
    user = NKeyPair.create(KeyKind.USER)
    token = user_jwt(account, user.public_key, "u", permissions=Permissions())
    path = tmp_path / "u.creds"
    path.write_text(format_creds(token, user.seed))
    client = Client()

    assert bytes(client._read_creds_user_jwt(str(path))).decode() == token
    assert bytes(client._read_creds_user_nkey(str(path))).decode() == user.seed
