"""nats_auth: the exact permission set of each role, and the authority's bookkeeping."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubefox.core import subjects
from kubefox.core.errors import InvalidError
from kubefox.security.embedded import EmbeddedSecretsBackend
from kubefox.security.nats_auth import (
    NatsAuthority,
    app_account,
    broker_permissions,
    component_inbox,
    component_permissions,
    httpsrv_permissions,
    role_inbox,
)
from kubefox.security.nats_jwt import (
    ResponsePermission,
    ServiceImport,
    StreamExport,
    decode_jwt,
)
from kubefox.store.instance_records import record_key

IDENT = ("demo", "shop", "frontend", "a1b2c3", "i1")


def test_a_component_may_use_only_its_own_subjects() -> None:
    """Its queue on its cmp subject, its inbox, its brk subject, its registration key."""
    permissions = component_permissions(*IDENT, instances_bucket="kubefox-instances")

    assert permissions.subscribe_allow == (
        "kf.demo.cmp.shop.frontend.a1b2c3 shop-frontend-a1b2c3",
        "_INBOX.demo.cmp.shop.frontend.a1b2c3.i1.>",
    )
    assert permissions.publish_allow == (
        "kf.demo.brk.shop.frontend.a1b2c3.i1",
        "$KV.kubefox-instances.demo.shop.frontend.a1b2c3.i1",
        "$JS.API.STREAM.INFO.KV_kubefox-instances",
    )
    assert permissions.responses == ResponsePermission(max_msgs=1)
    assert permissions.publish_deny == permissions.subscribe_deny == ()


def test_the_component_subjects_are_the_ones_the_platform_uses() -> None:
    """Built from kubefox.core.subjects and the registry's key format, never by hand."""
    permissions = component_permissions(*IDENT)

    assert permissions.publish_allow[0] == subjects.broker(*IDENT)
    assert permissions.publish_allow[1].endswith(record_key(*IDENT))
    queue = f"{subjects.component(*IDENT[:4])} {subjects.component_queue(*IDENT[:4])}"
    assert permissions.subscribe_allow[0] == queue


def test_brokers_take_every_outbox_and_deliver_to_any_component() -> None:
    """Queue kf-brokers on kf.<p>.brk.>, publish kf.<p>.cmp.>, read-only KV access."""
    permissions = broker_permissions("demo", "b1")

    assert permissions.subscribe_allow == (
        "kf.demo.brk.> kf-brokers",
        "_INBOX.demo.broker.b1.>",
    )
    assert permissions.publish_allow[0] == "kf.demo.cmp.>"
    assert not any("brk" in s for s in permissions.publish_allow)
    assert not any(s.startswith("$KV.") for s in permissions.publish_allow)
    assert "$JS.API.CONSUMER.CREATE.KV_kubefox-resources.>" in permissions.publish_allow
    assert "$JS.API.STREAM.INFO.KV_kubefox-instances" in permissions.publish_allow
    assert permissions.responses is not None


def test_httpsrv_publishes_genesis_events_and_hears_only_its_inbox() -> None:
    """No broker subjects, no writes, no responding on behalf of anyone."""
    permissions = httpsrv_permissions("demo", "h1", recordings=None)

    assert permissions.subscribe_allow == ("_INBOX.demo.httpsrv.h1.>",)
    assert permissions.publish_allow[0] == "kf.demo.cmp.>"
    assert not any("brk" in s or s.startswith("$KV.") for s in permissions.publish_allow)
    assert permissions.responses is None


def test_httpsrv_writes_only_its_platforms_recordings() -> None:
    """Recording adds the recordings stream and its platform's keys of the bucket, nothing else."""
    permissions = httpsrv_permissions("demo", "h1")

    writes = [s for s in permissions.publish_allow if s.startswith("$KV.")]
    assert writes == ["$KV.kubefox-recordings.demo.>"]
    assert "kf.demo.rec.>" in permissions.publish_allow
    assert not any("brk" in s for s in permissions.publish_allow)


def test_inboxes_of_components_and_roles_never_overlap() -> None:
    """A component inbox has 'cmp' as its third token, which no role may take."""
    assert component_inbox(*IDENT) == "_INBOX.demo.cmp.shop.frontend.a1b2c3.i1"
    assert role_inbox("demo", "broker", "b1") == "_INBOX.demo.broker.b1"
    with pytest.raises(InvalidError):
        role_inbox("demo", "cmp", "x")


@pytest.mark.parametrize("bad", ["a.b", "*", ">", "", "a b"])
def test_names_that_could_widen_a_permission_are_invalid(bad: str) -> None:
    """A dot or wildcard in any name would grant more than one subject."""
    with pytest.raises(InvalidError):
        component_permissions("demo", bad, "frontend", "a1b2c3", "i1")
    with pytest.raises(InvalidError):
        component_permissions("demo", "shop", "frontend", "a1b2c3", "i1", instances_bucket=bad)
    with pytest.raises(InvalidError):
        app_account("acme", bad)


async def test_the_operator_is_made_once_and_kept_in_the_secrets_backend(tmp_path: Path) -> None:
    """A second load finds the same operator, system account and account keys."""
    first = await NatsAuthority.load_or_create(EmbeddedSecretsBackend(tmp_path))
    account_key = await first.account_public_key("acme.shop")

    second = await NatsAuthority.load_or_create(EmbeddedSecretsBackend(tmp_path))

    assert second.operator_public_key == first.operator_public_key
    assert second.system_account == first.system_account
    assert await second.account_public_key("acme.shop") == account_key
    assert await second.accounts() == ["acme.shop"]
    assert decode_jwt(second.operator_jwt)["nats"]["system_account"] == first.system_account


async def test_revocation_is_written_into_the_account_jwt(tmp_path: Path) -> None:
    """revoke() persists the user key; every later account JWT carries it."""
    authority = await NatsAuthority.load_or_create(EmbeddedSecretsBackend(tmp_path))
    kept = await authority.issue_user("acme.shop", "kept", component_permissions(*IDENT))
    gone = await authority.issue_user("acme.shop", "gone", component_permissions(*IDENT))

    returned = await authority.revoke(gone)

    reloaded = await NatsAuthority.load_or_create(EmbeddedSecretsBackend(tmp_path))
    for token in (returned, await reloaded.account_jwt("acme.shop")):
        revocations = decode_jwt(token)["nats"]["revocations"]
        assert set(revocations) == {gone.public_key}
        assert kept.public_key not in revocations


async def test_revocations_of_expired_credentials_are_pruned(tmp_path: Path) -> None:
    """An expired credential is refused anyway; its entry leaves the JWT at the next revoke."""
    from datetime import timedelta

    authority = await NatsAuthority.load_or_create(EmbeddedSecretsBackend(tmp_path))
    old = await authority.issue_user(
        "acme.shop", "old", component_permissions(*IDENT), ttl=timedelta(seconds=-1)
    )
    new = await authority.issue_user("acme.shop", "new", component_permissions(*IDENT))
    await authority.revoke(old)

    token = await authority.revoke(new)

    assert set(decode_jwt(token)["nats"]["revocations"]) == {new.public_key}


async def test_user_credentials_are_signed_by_their_account_and_expire(tmp_path: Path) -> None:
    """Instance credentials are short-lived by default; the creds text is never in a repr."""
    authority = await NatsAuthority.load_or_create(EmbeddedSecretsBackend(tmp_path))
    credential = await authority.issue_user(
        "acme.shop", "frontend-i1", component_permissions(*IDENT)
    )

    claims = decode_jwt(credential.jwt)

    assert claims["iss"] == await authority.account_public_key("acme.shop")
    assert credential.expires_at is not None
    assert claims["exp"] == int(credential.expires_at.timestamp())
    seed = credential.creds.split("-----BEGIN USER NKEY SEED-----\n")[1].split("\n")[0]
    assert seed.startswith("SU")
    assert seed not in repr(credential)
    assert credential.jwt in credential.creds


@pytest.mark.parametrize("name", ["SYS", "a/b", "..", ""])
async def test_reserved_or_unsafe_account_names_are_invalid(tmp_path: Path, name: str) -> None:
    """The system account is not an app account; names are single path segments."""
    authority = await NatsAuthority.load_or_create(EmbeddedSecretsBackend(tmp_path))
    with pytest.raises(InvalidError):
        await authority.account_public_key(name)


async def test_links_survive_revocations_and_reloads(tmp_path: Path) -> None:
    """link() keeps exports, imports and JetStream in the account; a revocation keeps them."""
    authority = await NatsAuthority.load_or_create(EmbeddedSecretsBackend(tmp_path))
    tenant = await authority.account_public_key("acme")
    imports = (ServiceImport(name="keys", subject="$KV.b.*.shop.>", account=tenant),)
    exports = (StreamExport(name="events", subject="kf.*.brk.shop.>"),)

    assert await authority.link("acme.shop", exports=exports, imports=imports, jetstream=False)
    assert not await authority.link("acme.shop", exports=exports, imports=imports, jetstream=False)
    user = await authority.issue_user("acme.shop", "u", component_permissions(*IDENT))
    await authority.revoke(user)

    reloaded = await NatsAuthority.load_or_create(EmbeddedSecretsBackend(tmp_path))
    claims = decode_jwt(await reloaded.account_jwt("acme.shop"))["nats"]
    assert claims["exports"] == [{"name": "events", "subject": "kf.*.brk.shop.>", "type": "stream"}]
    assert claims["imports"] == [
        {"name": "keys", "subject": "$KV.b.*.shop.>", "account": tenant, "type": "service"}
    ]
    assert "mem_storage" not in claims["limits"]
    assert set(claims["revocations"]) == {user.public_key}
