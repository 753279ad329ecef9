"""nats-server in operator mode: the credentials NatsAuthority signs are enforced for real.

One server per module, with an operator, a system account and two tenants'
accounts pushed at run time (``$SYS.REQ.CLAIMS.UPDATE``). A refusal shows up as
the server's "Permissions Violation" error on the client's connection, and the
message goes nowhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import nats
import nats.errors
import pytest
from nats.aio.msg import Msg

from kubefox.core import subjects
from kubefox.security.embedded import EmbeddedSecretsBackend
from kubefox.security.nats_auth import (
    NatsAuthority,
    app_account,
    broker_permissions,
    component_inbox,
    component_permissions,
    httpsrv_permissions,
    role_inbox,
    unrestricted,
)
from kubefox.security.nats_jwt import decode_jwt
from kubefox.security.private_files import write_atomic
from tests.integration.operated_nats import (
    Conn,
    Operated,
    OperatedServer,
    closing,
    connect,
    nothing_arrives,
    operated_server_fixture,  # noqa: F401 - one server for the module
    refused,
)

pytestmark = pytest.mark.integration

P = "demo"
ACME = app_account("acme", "shop")
GLOBEX = app_account("globex", "shop")
BUCKET = "kubefox-instances"


@pytest.fixture
async def operated(operated_server: OperatedServer) -> AsyncIterator[Operated]:
    """The authority (reloaded from the state directory), a system user, both tenants pushed."""
    directory = operated_server.directory
    authority = await NatsAuthority.load_or_create(EmbeddedSecretsBackend(directory / "state"))
    creds = directory / "system.creds"
    write_atomic(creds, authority.system_user().encode())
    system = await nats.connect(operated_server.server.url, user_credentials=str(creds))
    try:
        for account in (ACME, GLOBEX):
            await authority.push(system, account)
        yield Operated(operated_server.server, authority, system, directory)
    finally:
        await system.close()


@pytest.fixture
async def bucket(operated: Operated) -> None:
    """The instances bucket, made by an admin of the tenant's account (as the platform will)."""
    admin = await operated.authority.issue_user(ACME, "admin", unrestricted())
    conn = await connect(operated, admin)
    try:
        await conn.client.jetstream().create_key_value(bucket=BUCKET, history=1)
    finally:
        await conn.client.close()


def instance(name: str, hash: str = "a1b2c3", inst: str = "i1") -> tuple[str, str, str, str, str]:
    return (P, "shop", name, hash, inst)


async def component(operated: Operated, name: str, inst: str = "i1") -> Conn:
    ident = instance(name, inst=inst)
    credential = await operated.authority.issue_user(
        ACME, f"{name}-{inst}", component_permissions(*ident, instances_bucket=BUCKET)
    )
    return await connect(operated, credential, inbox_prefix=component_inbox(*ident))


async def test_every_jwt_carries_the_permissions_it_was_given(operated: Operated) -> None:
    """Decoded and signature-checked, the user JWT holds exactly the set we asked for."""
    permissions = component_permissions(*instance("frontend"), instances_bucket=BUCKET)
    credential = await operated.authority.issue_user(ACME, "frontend-i1", permissions)

    claims = decode_jwt(credential.jwt)

    assert claims["iss"] == await operated.authority.account_public_key(ACME)
    assert claims["nats"]["pub"] == {"allow": list(permissions.publish_allow)}
    assert claims["nats"]["sub"] == {"allow": list(permissions.subscribe_allow)}
    assert claims["nats"]["resp"] == {"max": 1}
    assert claims["exp"] == int(credential.expires_at.timestamp())  # type: ignore[union-attr]
    account = decode_jwt(await operated.authority.account_jwt(ACME))
    assert account["iss"] == operated.authority.operator_public_key
    assert account["nats"]["limits"]["mem_storage"] == -1


async def test_requests_flow_through_a_components_own_subjects(operated: Operated) -> None:
    """httpsrv -> cmp (queue) -> reply; component -> its brk subject -> broker -> reply."""
    frontend = await component(operated, "frontend")
    broker_cred = await operated.authority.issue_user(ACME, "broker-1", broker_permissions(P, "b1"))
    broker = await connect(operated, broker_cred, inbox_prefix=role_inbox(P, "broker", "b1"))
    http_cred = await operated.authority.issue_user(ACME, "httpsrv-1", httpsrv_permissions(P, "h1"))
    httpsrv = await connect(operated, http_cred, inbox_prefix=role_inbox(P, "httpsrv", "h1"))
    async with closing(frontend, broker, httpsrv):

        async def answer(msg: Msg) -> None:
            await msg.respond(b"from " + msg.subject.encode())

        ident = instance("frontend")
        await frontend.client.subscribe(
            subjects.component(*ident[:4]), queue=subjects.component_queue(*ident[:4]), cb=answer
        )
        await broker.client.subscribe(
            subjects.broker_wildcard(P), queue=subjects.BROKER_QUEUE, cb=answer
        )
        await frontend.client.flush()
        await broker.client.flush()

        genesis = await httpsrv.client.request(subjects.component(*ident[:4]), b"hi", timeout=3)
        outbound = await frontend.client.request(subjects.broker(*ident), b"call", timeout=3)

        assert genesis.data == f"from {subjects.component(*ident[:4])}".encode()
        assert outbound.data == f"from {subjects.broker(*ident)}".encode()
        assert frontend.errors.empty()
        assert broker.errors.empty()


async def test_a_component_cannot_publish_as_another_component(operated: Operated) -> None:
    """Publishing as another instance is a permissions violation; no broker sees it."""
    frontend = await component(operated, "frontend")
    broker_cred = await operated.authority.issue_user(ACME, "broker-2", broker_permissions(P, "b2"))
    broker = await connect(operated, broker_cred, inbox_prefix=role_inbox(P, "broker", "b2"))
    async with closing(frontend, broker):
        seen = await broker.client.subscribe(
            subjects.broker_wildcard(P), queue=subjects.BROKER_QUEUE
        )
        await broker.client.flush()

        await frontend.client.publish(subjects.broker(*instance("backend")), b"spoofed")
        await frontend.client.publish(subjects.broker(*instance("frontend", inst="i2")), b"x")
        await frontend.client.publish(subjects.component(*instance("backend")[:4]), b"direct")

        assert "backend" in await frontend.violation()
        assert await nothing_arrives(seen)


async def test_a_component_cannot_subscribe_to_another_components_subjects(
    operated: Operated,
) -> None:
    """Another component's cmp subject, its own without the queue group, or others' inboxes."""
    frontend = await component(operated, "frontend")
    async with closing(frontend):
        backend_subject = subjects.component(*instance("backend")[:4])
        for subject, queue in (
            (backend_subject, subjects.component_queue(*instance("backend")[:4])),
            (subjects.component(*instance("frontend")[:4]), ""),
            ("_INBOX.>", ""),
            (subjects.broker_wildcard(P), subjects.BROKER_QUEUE),
        ):
            await frontend.client.subscribe(subject, queue=queue)
            await frontend.client.flush()
            assert subject.lower() in await frontend.violation()


async def test_a_component_registers_only_under_its_own_key(
    operated: Operated, bucket: None
) -> None:
    """Its own registration key is writable; another instance's key is a violation."""
    frontend = await component(operated, "frontend")
    async with closing(frontend):
        # a refused put gets no ack: keep the wait for it short
        kv = await frontend.client.jetstream(timeout=0.5).key_value(BUCKET)
        await kv.put(".".join(instance("frontend")), b"{}")
        await kv.delete(".".join(instance("frontend")))

        with pytest.raises((nats.errors.Error, asyncio.TimeoutError)):
            await kv.put(".".join(instance("backend")), b"{}")
        assert "backend" in await frontend.violation()


async def test_a_broker_cannot_impersonate_a_component(operated: Operated) -> None:
    """The broker's credential may not publish on brk subjects or take a component's queue."""
    broker_cred = await operated.authority.issue_user(ACME, "broker-3", broker_permissions(P, "b3"))
    broker = await connect(operated, broker_cred, inbox_prefix=role_inbox(P, "broker", "b3"))
    async with closing(broker):
        await broker.client.publish(subjects.broker(*instance("frontend")), b"as frontend")
        assert "brk" in await broker.violation()
        ident = instance("frontend")[:4]
        await broker.client.subscribe(
            subjects.component(*ident), queue=subjects.component_queue(*ident)
        )
        assert "cmp" in await broker.violation()


async def test_a_revoked_credential_is_refused_on_reconnect(operated: Operated) -> None:
    """Revocation (pushed to the server) ends the connection and refuses the same creds again."""
    ident = instance("frontend", inst="revoked")
    credential = await operated.authority.issue_user(
        ACME, "frontend-revoked", component_permissions(*ident)
    )
    conn = await connect(operated, credential, inbox_prefix=component_inbox(*ident))
    closed = asyncio.Event()
    conn.client._closed_cb = _set_on_call(closed)

    account_jwt = await operated.authority.revoke(credential)
    await operated.authority.push(operated.system, ACME)

    assert credential.public_key in decode_jwt(account_jwt)["nats"]["revocations"]
    async with asyncio.timeout(3):
        await closed.wait()  # the server ends the revoked user's live connection
    await conn.client.close()
    assert "authorization violation" in (await refused(operated, credential)).lower()
    # another credential of the same account is unaffected
    other = await component(operated, "frontend", inst="unrevoked")
    await other.client.close()


async def test_an_expired_credential_is_refused(operated: Operated) -> None:
    """exp in the past: the server refuses the user outright."""
    credential = await operated.authority.issue_user(
        ACME, "expired", unrestricted(), ttl=timedelta(seconds=-5)
    )
    assert "authorization violation" in (await refused(operated, credential)).lower()


async def test_tenants_cannot_see_each_others_subjects(operated: Operated) -> None:
    """Even with every permission in its own account, tenant B never sees tenant A's events."""
    acme = await connect(operated, await operated.authority.issue_user(ACME, "a", unrestricted()))
    acme_peer = await connect(
        operated, await operated.authority.issue_user(ACME, "a2", unrestricted())
    )
    globex = await connect(
        operated, await operated.authority.issue_user(GLOBEX, "b", unrestricted())
    )
    async with closing(acme, acme_peer, globex):
        spy = await globex.client.subscribe(">")
        control = await acme_peer.client.subscribe("kf.>")
        await globex.client.flush()
        await acme_peer.client.flush()

        await acme.client.publish(subjects.component(*instance("frontend")[:4]), b"acme secret")
        await acme.client.flush()

        assert (await control.next_msg(timeout=2)).data == b"acme secret"
        assert await nothing_arrives(spy)
        await acme_peer.client.subscribe(">", cb=_answer)
        await acme_peer.client.flush()
        # acme answers everything, yet a request from globex reaches nobody
        with pytest.raises((nats.errors.NoRespondersError, nats.errors.TimeoutError)):
            await globex.client.request(
                subjects.component(*instance("frontend")[:4]), b"x", timeout=0.5
            )


async def _answer(msg: Msg) -> None:
    if msg.reply:
        await msg.respond(b"acme")


def _set_on_call(event: asyncio.Event):  # type: ignore[no-untyped-def]
    async def callback() -> None:
        event.set()

    return callback


async def test_a_broker_reads_and_watches_the_buckets_but_cannot_write(operated: Operated) -> None:
    """kv_read() is enough for nats-py's get and watch; a put is a violation."""
    admin = await connect(
        operated, await operated.authority.issue_user(ACME, "adm", unrestricted())
    )
    broker_cred = await operated.authority.issue_user(ACME, "broker-4", broker_permissions(P, "b4"))
    broker = await connect(operated, broker_cred, inbox_prefix=role_inbox(P, "broker", "b4"))
    async with closing(admin, broker):
        admin_kv = await admin.client.jetstream().create_key_value(
            bucket="kubefox-resources", history=1
        )
        await admin_kv.put("Environment.default.qa", b"v1")

        kv = await broker.client.jetstream(timeout=0.5).key_value("kubefox-resources")
        assert (await kv.get("Environment.default.qa")).value == b"v1"
        watcher = await kv.watchall()

        async def next_entry() -> bytes | None:
            async with asyncio.timeout(3):
                while (entry := await watcher.updates()) is None:  # type: ignore[no-untyped-call]
                    pass  # the marker after the initial values
            value: bytes | None = entry.value
            return value

        assert await next_entry() == b"v1"
        await admin_kv.put("Environment.default.qa", b"v2")
        assert await next_entry() == b"v2"
        await watcher.stop()  # type: ignore[no-untyped-call]

        with pytest.raises((nats.errors.Error, asyncio.TimeoutError)):
            await kv.put("Environment.default.qa", b"forged")
        assert "kubefox-resources" in await broker.violation()
