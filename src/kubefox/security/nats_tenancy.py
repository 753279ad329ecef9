"""The NATS accounts of one tenant: the tenant's own, and one per app, linked by streams.

The tenant's account ``<tenant>`` holds the platform's roles (httpsrv, the
brokers, the operator, the API) and its JetStream state. Each app has its
own account ``<tenant>.<app>`` (:func:`~kubefox.security.nats_auth.app_account`),
without JetStream, holding that app's component instances. Nothing crosses
between accounts except what is exported and imported here (``<a>`` is the
app, ``*`` any platform of the tenant)::

    tenant exports   stream  kf.*.cmp.>                   events to components
                     stream  _INBOX.*.cmp.>               a broker's answers to a component
                     service $KV.<instances>.>            registrations (JetStream's PubAck back)
                     service $JS.API.STREAM.INFO.KV_<instances>
    app <a> imports  those, narrowed to kf.*.cmp.<a>.>, _INBOX.*.cmp.<a>.>
                     and $KV.<instances>.*.<a>.>: its own events, answers and keys only
    app <a> exports  stream  kf.*.brk.<a>.>               its instances' events to the brokers
                     stream  _INBOX.*.httpsrv.>           replies to httpsrv
                     stream  _INBOX.*.broker.>            replies to a broker's own requests
                     stream  _INBOX.*.admin.>             replies to platform tools (tests)
    tenant imports   those three from every app account

Events and replies cross as *streams*, not services: a service import gives
the message a reserved ``_R_.`` reply subject, which nats-server refuses as
the reply of a further publish, and the broker forwards a request with the
requester's own inbox so that the target answers it directly (DESIGN §3).
With streams the reply subject crosses unchanged: a component-to-component
reply never leaves the app's account. Registrations are requests answered by
JetStream, so they cross as a service.

One app's account imports only its own subjects, so even a user of that
account allowed everything (which the platform never issues) receives no
other app's events and cannot write another app's registrations; within the
account, each instance's user permissions
(:func:`~kubefox.security.nats_auth.component_permissions`) still apply.
"""

from __future__ import annotations

from kubefox.core import subjects
from kubefox.security.nats_auth import NatsAuthority, app_account, tenant_account
from kubefox.security.nats_jwt import (
    AccountLink,
    ServiceExport,
    ServiceImport,
    StreamExport,
    StreamImport,
)

_ANY = "*"


def tenant_exports(instances_bucket: str) -> tuple[AccountLink, ...]:
    """What the tenant's account offers its app accounts."""
    return (
        StreamExport(name="events to components", subject=f"{subjects.PREFIX}.{_ANY}.cmp.>"),
        StreamExport(name="answers to components", subject=f"_INBOX.{_ANY}.cmp.>"),
        ServiceExport(name="registrations", subject=f"$KV.{instances_bucket}.>"),
        ServiceExport(
            name="registrations bucket", subject=f"$JS.API.STREAM.INFO.KV_{instances_bucket}"
        ),
    )


def _app_streams(app: str) -> tuple[tuple[str, str], ...]:
    """``(name, subject)`` of each stream an app's account sends the tenant's."""
    return (
        ("events to brokers", _app_subject("brk", app)),
        ("replies to httpsrv", f"_INBOX.{_ANY}.httpsrv.>"),
        ("replies to brokers", f"_INBOX.{_ANY}.broker.>"),
        ("replies to platform tools", f"_INBOX.{_ANY}.admin.>"),
    )


def app_exports(app: str) -> tuple[AccountLink, ...]:
    """What an app's account sends the tenant's: its events and its replies to the platform."""
    return tuple(StreamExport(name=name, subject=subject) for name, subject in _app_streams(app))


def app_imports(app: str, *, tenant_key: str, instances_bucket: str) -> tuple[AccountLink, ...]:
    """What an app's account takes from the tenant's: its own events, answers and keys."""
    return (
        StreamImport(name="events", subject=_app_subject("cmp", app), account=tenant_key),
        StreamImport(name="answers", subject=f"_INBOX.{_ANY}.cmp.{app}.>", account=tenant_key),
        ServiceImport(
            name="registrations",
            subject=f"$KV.{instances_bucket}.{_ANY}.{app}.>",
            account=tenant_key,
        ),
        ServiceImport(
            name="registrations bucket",
            subject=f"$JS.API.STREAM.INFO.KV_{instances_bucket}",
            account=tenant_key,
        ),
    )


def tenant_imports(app_keys: dict[str, str]) -> tuple[AccountLink, ...]:
    """What the tenant's account takes from each app's (``app_keys``: app to account key)."""
    return tuple(
        StreamImport(name=f"{app}: {name}", subject=subject, account=key)
        for app, key in sorted(app_keys.items())
        for name, subject in _app_streams(app)
    )


def _app_subject(kind: str, app: str) -> str:
    subjects.broker("p", app, "x", "x", "x")  # app obeys the subject token rules
    return f"{subjects.PREFIX}.{_ANY}.{kind}.{app}.>"


class TenantAccounts:
    """Keeps a tenant's account and its apps' accounts linked in ``authority``.

    Account names: the tenant's is :func:`tenant_account`, an app's
    :func:`app_account`. Methods return the accounts whose JWT changed, in
    the order to push them (apps before the tenant, so that every import
    finds its export).
    """

    def __init__(self, authority: NatsAuthority, tenant: str, *, instances_bucket: str) -> None:
        self.authority = authority
        self.tenant = tenant
        self.account = tenant_account(tenant)
        self.instances_bucket = instances_bucket

    def app_account(self, app: str) -> str:
        """The account of ``app`` (made and linked by :meth:`add_app`)."""
        return app_account(self.tenant, app)

    async def apps(self) -> list[str]:
        """The apps of this tenant that have an account."""
        prefix = f"{self.account}."
        return sorted(
            name.removeprefix(prefix)
            for name in await self.authority.accounts()
            if name.startswith(prefix)
        )

    async def accounts(self) -> list[str]:
        """Every account of the tenant, apps first."""
        return [*(self.app_account(app) for app in await self.apps()), self.account]

    async def link_all(self) -> list[str]:
        """Link the tenant's account and every app account it has; all of them, to push."""
        apps = await self.apps()
        for app in apps:
            await self._link_app(app)
        await self._link_tenant(apps)
        return [*(self.app_account(app) for app in apps), self.account]

    async def add_app(self, app: str) -> list[str]:
        """Make (or keep) ``app``'s account linked to the tenant's; the accounts to push."""
        changed = [self.app_account(app)] if await self._link_app(app) else []
        if await self._link_tenant(await self.apps()):  # the app's account exists by now
            changed.append(self.account)
        return changed

    async def _link_app(self, app: str) -> bool:
        tenant_key = await self.authority.account_public_key(self.account)
        return await self.authority.link(
            self.app_account(app),
            exports=app_exports(app),
            imports=app_imports(app, tenant_key=tenant_key, instances_bucket=self.instances_bucket),
            jetstream=False,
        )

    async def _link_tenant(self, apps: list[str]) -> bool:
        keys = {app: await self.authority.account_public_key(self.app_account(app)) for app in apps}
        return await self.authority.link(
            self.account,
            exports=tenant_exports(self.instances_bucket),
            imports=tenant_imports(keys),
        )
