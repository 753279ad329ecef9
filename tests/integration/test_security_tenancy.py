"""One NATS account per tenant and one per app, linked: the event flow crosses, nothing else.

The platform's roles live in the tenant's account ``acme``; components of the
apps ``shop`` and ``books`` in ``acme.shop`` and ``acme.books``. Every user
here has the exact permissions the platform issues, except the spies, which
are allowed everything in their own account: what they still cannot reach
is kept from them by the accounts alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import nats
import nats.errors
import nats.js.errors
import pytest
from nats.aio.msg import Msg

from kubefox.core import subjects
from kubefox.kit._natsio import NatsioTransport
from kubefox.kit._settings import KitSettings
from kubefox.security.embedded import EmbeddedSecretsBackend
from kubefox.security.nats_auth import (
    NatsAuthority,
    broker_permissions,
    component_inbox,
    component_permissions,
    httpsrv_permissions,
    role_inbox,
    unrestricted,
)
from kubefox.security.nats_jwt import decode_jwt
from kubefox.security.nats_tenancy import TenantAccounts
from kubefox.security.private_files import write_atomic
from tests.integration.operated_nats import (
    Conn,
    Operated,
    OperatedServer,
    closing,
    connect,
    nothing_arrives,
    operated_server_fixture,  # noqa: F401 - one server for the module
)

pytestmark = pytest.mark.integration

P = "demo"
BUCKET = "kubefox-instances"
HASH = "a1b2c3"


@pytest.fixture
async def tenancy(
    operated_server: OperatedServer,
) -> AsyncIterator[tuple[Operated, TenantAccounts]]:
    """Tenant ``acme`` with apps ``shop`` and ``books``, pushed in order; its bucket made."""
    directory = operated_server.directory
    authority = await NatsAuthority.load_or_create(EmbeddedSecretsBackend(directory / "state"))
    creds = directory / "system.creds"
    write_atomic(creds, authority.system_user().encode())
    system = await nats.connect(operated_server.server.url, user_credentials=str(creds))
    accounts = TenantAccounts(authority, "acme", instances_bucket=BUCKET)
    try:
        for app in ("shop", "books"):
            await accounts.add_app(app)
        for account in await accounts.link_all():
            await authority.push(system, account)
        operated = Operated(operated_server.server, authority, system, directory)
        admin = await connect(operated, await authority.issue_user("acme", "admin", unrestricted()))
        async with closing(admin):
            await admin.client.jetstream().create_key_value(bucket=BUCKET, history=1)
        yield operated, accounts
    finally:
        await system.close()


def ident(app: str, name: str, inst: str = "i1") -> tuple[str, str, str, str, str]:
    return (P, app, name, HASH, inst)


async def component(operated: Operated, app: str, name: str, inst: str = "i1") -> Conn:
    parts = ident(app, name, inst)
    credential = await operated.authority.issue_user(
        f"acme.{app}",
        f"{app}.{name}.{inst}",
        component_permissions(*parts, instances_bucket=BUCKET),
    )
    return await connect(operated, credential, inbox_prefix=component_inbox(*parts))


async def role(operated: Operated, kind: str, identity: str) -> Conn:
    permissions = (
        broker_permissions(P, identity, instances_bucket=BUCKET)
        if kind == "broker"
        else httpsrv_permissions(P, identity, instances_bucket=BUCKET)
    )
    credential = await operated.authority.issue_user("acme", f"{kind}-{identity}", permissions)
    return await connect(operated, credential, inbox_prefix=role_inbox(P, kind, identity))


async def serve(conn: Conn, app: str, name: str) -> None:
    """Answer every event of ``app``'s ``name`` with where it came in."""

    async def answer(msg: Msg) -> None:
        await msg.respond(f"{name} got {msg.data.decode()}".encode())

    parts = ident(app, name)
    await conn.client.subscribe(
        subjects.component(*parts[:4]), queue=subjects.component_queue(*parts[:4]), cb=answer
    )
    await conn.client.flush()


async def test_each_apps_components_sign_in_to_the_apps_own_account(
    tenancy: tuple[Operated, TenantAccounts],
) -> None:
    """Tenant and apps are distinct accounts; the tenant imports exactly each app's exports."""
    operated, accounts = tenancy
    keys = {a: await operated.authority.account_public_key(a) for a in await accounts.accounts()}
    shop = decode_jwt(await operated.authority.account_jwt("acme.shop"))
    tenant = decode_jwt(await operated.authority.account_jwt("acme"))

    assert sorted(keys) == ["acme", "acme.books", "acme.shop"]
    assert len(set(keys.values())) == 3
    assert "mem_storage" not in shop["nats"]["limits"]  # no JetStream of its own
    assert tenant["nats"]["limits"]["mem_storage"] == -1
    assert {i["subject"] for i in shop["nats"]["imports"]} == {
        "kf.*.cmp.shop.>",
        "_INBOX.*.cmp.shop.>",
        f"$KV.{BUCKET}.*.shop.>",
        f"$JS.API.STREAM.INFO.KV_{BUCKET}",
    }
    assert {i["account"] for i in shop["nats"]["imports"]} == {keys["acme"]}
    from_shop = {
        i["subject"] for i in tenant["nats"]["imports"] if i["account"] == keys["acme.shop"]
    }
    assert from_shop == {
        "kf.*.brk.shop.>",
        "_INBOX.*.httpsrv.>",
        "_INBOX.*.broker.>",
        "_INBOX.*.admin.>",
    }
    assert await accounts.add_app("shop") == []  # already linked: nothing to push


async def test_events_and_replies_cross_between_the_tenant_and_an_app(
    tenancy: tuple[Operated, TenantAccounts],
) -> None:
    """httpsrv to a component; component to broker to component, answered directly; both ways
    of a broker's own answers (a refusal to the requester, a request through its inbox)."""
    operated, _ = tenancy
    frontend = await component(operated, "shop", "frontend")
    backend = await component(operated, "shop", "backend")
    broker = await role(operated, "broker", "b1")
    httpsrv = await role(operated, "httpsrv", "h1")
    async with closing(frontend, backend, broker, httpsrv):
        await serve(frontend, "shop", "frontend")
        await serve(backend, "shop", "backend")
        target = subjects.component(*ident("shop", "backend")[:4])

        async def relay(msg: Msg) -> None:
            if msg.data == b"refuse":  # the broker answers the requester itself
                await msg.respond(b"broker refused")
            elif msg.data == b"carry":  # through the broker's own inbox, then passed on
                answer = await broker.client.request(target, b"carried", timeout=3)
                await msg.respond(answer.data)
            else:  # relayed with the requester's inbox: the target answers it directly
                await broker.client.publish(target, msg.data, reply=msg.reply)

        await broker.client.subscribe(
            subjects.broker_wildcard(P), queue=subjects.BROKER_QUEUE, cb=relay
        )
        await broker.client.flush()
        outbox = subjects.broker(*ident("shop", "frontend"))

        genesis = await httpsrv.client.request(
            subjects.component(*ident("shop", "frontend")[:4]), b"hello", timeout=3
        )
        relayed = await frontend.client.request(outbox, b"call", timeout=3)
        refused = await frontend.client.request(outbox, b"refuse", timeout=3)
        carried = await frontend.client.request(outbox, b"carry", timeout=3)

        assert genesis.data == b"frontend got hello"
        assert relayed.data == b"backend got call"
        assert refused.data == b"broker refused"
        assert carried.data == b"backend got carried"
        for conn in (frontend, backend, broker, httpsrv):
            assert conn.errors.empty()


async def test_another_apps_account_sees_and_reaches_nothing_of_this_app(
    tenancy: tuple[Operated, TenantAccounts],
) -> None:
    """A user of ``books`` allowed everything in its account: no event of ``shop`` reaches it,
    its requests to ``shop`` reach no one, and it cannot write ``shop``'s registrations."""
    operated, _ = tenancy
    spy = await connect(
        operated, await operated.authority.issue_user("acme.books", "spy", unrestricted())
    )
    frontend = await component(operated, "shop", "frontend")
    httpsrv = await role(operated, "httpsrv", "h2")
    async with closing(spy, frontend, httpsrv):
        seen = await spy.client.subscribe(">")
        await spy.client.flush()
        await serve(frontend, "shop", "frontend")
        shop_subject = subjects.component(*ident("shop", "frontend")[:4])

        assert (await httpsrv.client.request(shop_subject, b"x", timeout=3)).data
        assert await nothing_arrives(seen)
        seen_own = await spy.client.subscribe("kf.>")
        for subject in (shop_subject, subjects.broker(*ident("shop", "frontend"))):
            with pytest.raises((nats.errors.NoRespondersError, nats.errors.TimeoutError)):
                await spy.client.request(subject, b"forged", timeout=0.5)
        await seen_own.unsubscribe()
        with pytest.raises((nats.errors.NoRespondersError, nats.errors.TimeoutError)):
            await spy.client.request(
                f"$KV.{BUCKET}.{'.'.join(ident('shop', 'frontend'))}", b"{}", timeout=0.5
            )


async def test_the_kit_registers_through_its_apps_account(
    tenancy: tuple[Operated, TenantAccounts],
) -> None:
    """The Kit's own transport, with an instance credential of ``acme.shop``, puts and deletes
    its record in the tenant's bucket; the platform reads it there."""
    operated, _ = tenancy
    parts = ident("shop", "frontend", "k1")
    credential = await operated.authority.issue_user(
        "acme.shop", "kit", component_permissions(*parts, instances_bucket=BUCKET)
    )
    path = operated.directory / "kit.creds"
    write_atomic(path, credential.creds.encode())
    settings = KitSettings(
        platform=P,
        app="shop",
        name="frontend",
        hash=HASH,
        instance_id="k1",
        nats_url=operated.server.url,
        nats_creds_file=path,
        instances_bucket=BUCKET,
    )
    transport = NatsioTransport(settings)
    admin = await connect(
        operated, await operated.authority.issue_user("acme", "a", unrestricted())
    )
    key = ".".join(parts)
    async with closing(admin):
        kv = await admin.client.jetstream().key_value(BUCKET)
        await transport.open()
        try:
            await transport.register(key, b'{"up": true}')
            assert (await kv.get(key)).value == b'{"up": true}'
            await transport.deregister(key)
            with pytest.raises(nats.js.errors.KeyNotFoundError):  # deleted: not found
                await kv.get(key)
        finally:
            await transport.close()
