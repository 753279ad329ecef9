"""Who may do what on NATS: the permission set of each role, and the authority that signs them.

DESIGN §3 made the subjects so that NATS itself can enforce zero trust. The
sets below are exact; anything not listed is refused by nats-server with a
permissions violation (``<b>`` is a KV bucket, ``<key>`` an instance's
registration key ``<p>.<app>.<component>.<hash>.<instance>``):

component instance (one credential per instance, short-lived)
    sub  ``kf.<p>.cmp.<app>.<component>.<hash> <app>-<component>-<hash>`` (its queue only)
         ``_INBOX.<p>.cmp.<app>.<component>.<hash>.<instance>.>`` (its own inbox)
    pub  ``kf.<p>.brk.<app>.<component>.<hash>.<instance>``
         ``$KV.<instances>.<key>`` (its own registration, put and delete)
         ``$JS.API.STREAM.INFO.KV_<instances>`` (binding the bucket)
    resp one reply per received request (``allow_responses``)
broker
    sub  ``kf.<p>.brk.> kf-brokers``, ``_INBOX.<p>.broker.<id>.>``
    pub  ``kf.<p>.cmp.>`` + reading the resources and instances buckets
    resp one reply per received request (error answers to a requester)
httpsrv
    sub  ``_INBOX.<p>.httpsrv.<id>.>``
    pub  ``kf.<p>.cmp.>`` + reading the resources and instances buckets
         + recording: reading the recordings bucket, writing its ``<p>.*`` keys,
         appending to ``kf.<p>.rec.>`` (the recordings stream)

"Reading a bucket" is ``$JS.API.STREAM.INFO``, ``STREAM.MSG.GET``,
``DIRECT.GET``, ``CONSUMER.CREATE/INFO/DELETE`` on ``KV_<b>`` and flow
control replies ``$JS.FC.KV_<b>.>``: what nats-py's ``kv.get`` and
``kv.watch`` send, and no write. Clients must connect with the matching
``inbox_prefix`` (:func:`component_inbox`, :func:`role_inbox`).

:class:`NatsAuthority` holds the operator, the system account and one account
per tenant and app, keeps their seeds in a
:class:`~kubefox.security.protocol.SecretsBackend`, signs user credentials and
revokes them (the account JWT's revocation list, pushed to the servers with
``$SYS.REQ.CLAIMS.UPDATE``).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from kubefox.core import subjects
from kubefox.core.errors import ConflictError, InvalidError, NotFoundError, UnavailableError
from kubefox.security.nats_jwt import (
    AccountLink,
    KeyKind,
    NKeyPair,
    Permissions,
    ResponsePermission,
    account_jwt,
    format_creds,
    operator_jwt,
    user_jwt,
)
from kubefox.security.protocol import SecretsBackend, check_path

#: Subject the system account's users update account JWTs on.
CLAIMS_UPDATE = "$SYS.REQ.CLAIMS.UPDATE"
#: Revocation key meaning "every user of the account" (nats-server's ``jwt.All``).
ALL_USERS = "*"
#: The account of the platform's own state (resources, artifacts).
PLATFORM_ACCOUNT = "kubefox"
SYSTEM_ACCOUNT = "SYS"
DEFAULT_INSTANCES_BUCKET = "kubefox-instances"
DEFAULT_RESOURCES_BUCKET = "kubefox-resources"
#: The recordings KV bucket and stream (``kubefox.recording.jetstream``).
DEFAULT_RECORDINGS = "kubefox-recordings"
#: Lifetime of a component instance's credential; the operator re-issues before it ends.
INSTANCE_CREDENTIAL_TTL = timedelta(hours=1)

_SECRETS_ROOT = "nats"
_CAS_RETRIES = 5


# -- permission sets -------------------------------------------------------------------


def component_inbox(platform: str, app: str, name: str, hash: str, instance: str) -> str:
    """The inbox prefix a component instance connects with (``inbox_prefix=``)."""
    # built in core.subjects, so the Kit (which must not import this layer) agrees
    return subjects.component_inbox(platform, app, name, hash, instance)


def role_inbox(platform: str, role: str, identity: str) -> str:
    """The inbox prefix of a platform process (``role`` is ``broker`` or ``httpsrv``)."""
    if role == "cmp":
        raise InvalidError("'cmp' is reserved for component inboxes")
    subjects.broker(platform, role, identity, "x", "x")  # validates the tokens
    return f"_INBOX.{platform}.{role}.{identity}"


def kv_read(bucket: str) -> tuple[str, ...]:
    """Publish permissions to get and watch keys of ``bucket`` (no writes)."""
    stream = f"KV_{_bucket(bucket)}"
    return (
        f"$JS.API.STREAM.INFO.{stream}",
        f"$JS.API.STREAM.MSG.GET.{stream}",
        f"$JS.API.DIRECT.GET.{stream}",
        f"$JS.API.DIRECT.GET.{stream}.>",
        f"$JS.API.CONSUMER.CREATE.{stream}",
        f"$JS.API.CONSUMER.CREATE.{stream}.>",
        f"$JS.API.CONSUMER.INFO.{stream}.>",
        f"$JS.API.CONSUMER.DELETE.{stream}.>",
        f"$JS.FC.{stream}.>",
    )


def component_permissions(
    platform: str,
    app: str,
    name: str,
    hash: str,
    instance: str,
    *,
    instances_bucket: str = DEFAULT_INSTANCES_BUCKET,
) -> Permissions:
    """What one component instance may do (see the module docstring)."""
    key = ".".join((platform, app, name, hash, instance))
    return Permissions(
        subscribe_allow=(
            f"{subjects.component(platform, app, name, hash)} "
            f"{subjects.component_queue(platform, app, name, hash)}",
            f"{component_inbox(platform, app, name, hash, instance)}.>",
        ),
        publish_allow=(
            subjects.broker(platform, app, name, hash, instance),
            f"$KV.{_bucket(instances_bucket)}.{key}",
            f"$JS.API.STREAM.INFO.KV_{instances_bucket}",
        ),
        responses=ResponsePermission(max_msgs=1),
    )


def broker_permissions(
    platform: str,
    identity: str,
    *,
    resources_bucket: str = DEFAULT_RESOURCES_BUCKET,
    instances_bucket: str = DEFAULT_INSTANCES_BUCKET,
) -> Permissions:
    """What a broker may do: take every instance's outbox, deliver to any component."""
    return Permissions(
        subscribe_allow=(
            f"{subjects.broker_wildcard(platform)} {subjects.BROKER_QUEUE}",
            f"{role_inbox(platform, 'broker', identity)}.>",
        ),
        publish_allow=(
            f"{subjects.PREFIX}.{platform}.cmp.>",
            *kv_read(resources_bucket),
            *kv_read(instances_bucket),
        ),
        responses=ResponsePermission(max_msgs=1),
    )


def httpsrv_permissions(
    platform: str,
    identity: str,
    *,
    resources_bucket: str = DEFAULT_RESOURCES_BUCKET,
    instances_bucket: str = DEFAULT_INSTANCES_BUCKET,
    recordings: str | None = DEFAULT_RECORDINGS,
) -> Permissions:
    """What httpsrv may do: send genesis events to any component and hear the replies.

    With ``recordings`` (the bucket and stream of that name) it may also follow
    the recordings, mark those it records and append exchanges to them.
    """
    recording: tuple[str, ...] = ()
    if recordings is not None:
        name = _bucket(recordings)
        recording = (
            *kv_read(name),
            f"$KV.{name}.{platform}.>",
            f"$JS.API.STREAM.INFO.{name}",
            f"{subjects.PREFIX}.{platform}.rec.>",
        )
    return Permissions(
        subscribe_allow=(f"{role_inbox(platform, 'httpsrv', identity)}.>",),
        publish_allow=(
            f"{subjects.PREFIX}.{platform}.cmp.>",
            *kv_read(resources_bucket),
            *kv_read(instances_bucket),
            *recording,
        ),
    )


def unrestricted() -> Permissions:
    """Everything in the account: for the system user and the platform's own admin roles."""
    return Permissions(publish_allow=(">",), subscribe_allow=(">",))


def _bucket(bucket: str) -> str:
    if not bucket or any(c in bucket for c in ".*> \t"):
        raise InvalidError(f"malformed bucket name {bucket!r}", bucket=bucket)
    return bucket


# -- the authority ---------------------------------------------------------------------


class _Reply(Protocol):
    data: bytes


class ClaimsClient(Protocol):
    """A NATS connection of a system-account user (nats-py's ``Client`` fits)."""

    async def request(
        self,
        subject: str,
        payload: bytes = b"",
        timeout: float = 0.5,  # noqa: ASYNC109 - nats-py's signature
    ) -> _Reply:
        """Send a request and wait for its reply."""
        ...


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class UserCredential:
    """A signed user: ``creds`` is the ``.creds`` text (JWT and seed: a secret)."""

    account: str
    name: str
    public_key: str
    jwt: str
    creds: str = dataclasses.field(repr=False)
    expires_at: datetime | None


class NatsAuthority:
    """The operator's signing keys and the accounts they sign, persisted in a secrets backend.

    Documents (all secrets): ``nats/operator`` (operator and system account
    seeds) and ``nats/accounts/<account>`` (the account seed and its
    revocations). Build it with :meth:`load_or_create`.
    """

    def __init__(
        self, secrets: SecretsBackend, *, name: str, operator: NKeyPair, system: NKeyPair
    ) -> None:
        self._secrets = secrets
        self.name = name
        self._operator = operator
        self._system = system
        self.operator_jwt = operator_jwt(operator, name, system_account=system.public_key)

    @classmethod
    async def load_or_create(
        cls, secrets: SecretsBackend, *, name: str = "KUBEFOX"
    ) -> NatsAuthority:
        """The operator kept in ``secrets``, made on first use."""
        path = f"{_SECRETS_ROOT}/operator"
        try:
            document = (await secrets.get(path)).data
        except NotFoundError:
            candidate = {
                "name": name,
                "operator_seed": NKeyPair.create(KeyKind.OPERATOR).seed,
                "system_seed": NKeyPair.create(KeyKind.ACCOUNT).seed,
            }
            try:
                await secrets.put(path, candidate, cas=0)
                document = candidate
            except ConflictError:  # another process made it first: use theirs
                document = (await secrets.get(path)).data
        return cls(
            secrets,
            name=str(document["name"]),
            operator=NKeyPair.from_seed(str(document["operator_seed"])),
            system=NKeyPair.from_seed(str(document["system_seed"])),
        )

    @property
    def operator_public_key(self) -> str:
        """The operator's ``O...`` key."""
        return self._operator.public_key

    @property
    def system_account(self) -> str:
        """The system account's ``A...`` key (``system_account`` in the server config)."""
        return self._system.public_key

    def system_account_jwt(self) -> str:
        """The system account's JWT (the server's ``resolver_preload``)."""
        return account_jwt(self._operator, self._system.public_key, SYSTEM_ACCOUNT, jetstream=False)

    def system_user(self, name: str = "kubefox-system", *, ttl: timedelta | None = None) -> str:
        """``.creds`` of a system-account user, allowed everything there (claims updates)."""
        return self._sign(self._system, SYSTEM_ACCOUNT, name, unrestricted(), ttl).creds

    async def account_public_key(self, account: str) -> str:
        """The ``A...`` key of ``account``, created on first use."""
        return (await self._account(account))[0].public_key

    async def account_jwt(self, account: str) -> str:
        """The current JWT of ``account``: its revocations, links and JetStream (on by default)."""
        pair, document = await self._account(account)
        revocations = {key: int(entry["at"]) for key, entry in document["revocations"].items()}
        return account_jwt(
            self._operator,
            pair.public_key,
            account,
            jetstream=bool(document.get("jetstream", _LINK_DEFAULTS["jetstream"])),
            revocations=revocations,
            exports=[_StoredLink(claims) for claims in document.get("exports", ())],
            imports=[_StoredLink(claims) for claims in document.get("imports", ())],
        )

    async def link(
        self,
        account: str,
        *,
        exports: Sequence[AccountLink] = (),
        imports: Sequence[AccountLink] = (),
        jetstream: bool = True,
    ) -> bool:
        """Set what ``account`` exports and imports, and whether it has JetStream.

        Returns whether anything changed (then its JWT must be pushed again).
        """
        wanted = {
            "exports": [link.claims() for link in exports],
            "imports": [link.claims() for link in imports],
            "jetstream": jetstream,
        }

        def change(document: dict[str, Any]) -> bool:
            current = {key: document.get(key, default) for key, default in _LINK_DEFAULTS.items()}
            if current == wanted:
                return False
            document.update(wanted)
            return True

        return await self._update(account, change, doing="linking")

    async def issue_user(
        self,
        account: str,
        name: str,
        permissions: Permissions,
        *,
        ttl: timedelta | None = INSTANCE_CREDENTIAL_TTL,
    ) -> UserCredential:
        """A new user (fresh key) in ``account`` with exactly ``permissions``."""
        pair, _ = await self._account(account)
        return self._sign(pair, account, name, permissions, ttl)

    async def revoke(self, credential: UserCredential) -> str:
        """Revoke ``credential`` and return the account JWT to push (see :meth:`push`)."""

        def change(document: dict[str, Any]) -> bool:
            now = time.time()
            revocations = {
                key: entry
                for key, entry in document["revocations"].items()
                # an expired credential is refused anyway: forget it
                if entry.get("expires") is None or entry["expires"] > now
            }
            revocations[credential.public_key] = {
                "at": int(now),
                "expires": int(credential.expires_at.timestamp())
                if credential.expires_at
                else None,
            }
            document["revocations"] = revocations
            return True

        await self._update(credential.account, change, doing="revoking")
        return await self.account_jwt(credential.account)

    async def revoke_all(self, account: str, *, issued_before: datetime) -> str:
        """Revoke every user of ``account`` issued at or before ``issued_before``.

        One entry (the ``*`` key) covers all of them, so a platform can cut off
        every credential of its previous run at start. Returns the account JWT
        to push.
        """

        def change(document: dict[str, Any]) -> bool:
            revocations = dict(document["revocations"])
            revocations[ALL_USERS] = {"at": int(issued_before.timestamp()), "expires": None}
            document["revocations"] = revocations
            return True

        await self._update(account, change, doing="revoking")
        return await self.account_jwt(account)

    async def _update(
        self, account: str, change: Callable[[dict[str, Any]], bool], *, doing: str
    ) -> bool:
        """Apply ``change`` to ``account``'s document and store it, compare-and-set.

        ``change`` edits the document in place and says whether it changed
        anything (nothing is written if not); it runs again on a fresh copy
        when another writer came first. Returns whether it wrote.
        """
        for _ in range(_CAS_RETRIES):
            _, stored = await self._account(account, with_version=True)
            document = dict(stored)
            version = document.pop("_version")
            if not change(document):
                return False
            try:
                await self._secrets.put(_account_path(account), document, cas=version)
            except ConflictError:
                continue
            return True
        raise ConflictError(f"account {account!r} kept changing while {doing}", account=account)

    async def push(
        self, client: ClaimsClient, account: str, *, request_timeout: float = 5.0
    ) -> None:
        """Send ``account``'s current JWT to the servers (``$SYS.REQ.CLAIMS.UPDATE``).

        Raises:
            UnavailableError: the server refused the JWT or did not answer.
        """
        token = await self.account_jwt(account)
        try:
            reply = await client.request(CLAIMS_UPDATE, token.encode(), timeout=request_timeout)
        except TimeoutError as exc:
            raise UnavailableError("no NATS server answered the account update") from exc
        answer = json.loads(reply.data or b"{}")
        if "error" in answer or answer.get("data", {}).get("code", 200) >= 400:
            raise UnavailableError(
                f"nats-server refused account {account!r}: {answer.get('error', answer)}",
                account=account,
            )

    async def accounts(self) -> list[str]:
        """Every account this authority has made (besides the system account)."""
        prefix = f"{_SECRETS_ROOT}/accounts/"
        return [p.removeprefix(prefix) for p in await self._secrets.list(prefix)]

    def _sign(
        self,
        account: NKeyPair,
        account_name: str,
        name: str,
        permissions: Permissions,
        ttl: timedelta | None,
    ) -> UserCredential:
        user = NKeyPair.create(KeyKind.USER)
        expires_at = None if ttl is None else datetime.now(UTC) + ttl
        token = user_jwt(
            account, user.public_key, name, permissions=permissions, expires_at=expires_at
        )
        return UserCredential(
            account=account_name,
            name=name,
            public_key=user.public_key,
            jwt=token,
            creds=format_creds(token, user.seed),
            expires_at=expires_at,
        )

    async def _account(
        self, account: str, *, with_version: bool = False
    ) -> tuple[NKeyPair, dict[str, Any]]:
        path = _account_path(account)
        try:
            stored = await self._secrets.get(path)
        except NotFoundError:
            candidate = {"seed": NKeyPair.create(KeyKind.ACCOUNT).seed, "revocations": {}}
            try:
                stored = await self._secrets.put(path, candidate, cas=0)
            except ConflictError:
                stored = await self._secrets.get(path)
        document = dict(stored.data)
        if with_version:
            document["_version"] = stored.version
        return NKeyPair.from_seed(str(document["seed"])), document


_LINK_DEFAULTS: dict[str, Any] = {"exports": [], "imports": [], "jetstream": True}


@dataclasses.dataclass(frozen=True, slots=True)
class _StoredLink:
    """An export or import as kept in the account's document (its JWT claims)."""

    stored: Mapping[str, Any]

    def claims(self) -> dict[str, Any]:
        return dict(self.stored)


def _account_path(account: str) -> str:
    if account == SYSTEM_ACCOUNT or "/" in account:
        raise InvalidError(f"{account!r} cannot name an account", account=account)
    return check_path(f"{_SECRETS_ROOT}/accounts/{account}")


def app_account(tenant: str, app: str) -> str:
    """The account of one app's component instances: ``<tenant>.<app>``."""
    for part in (tenant, app):
        subjects.broker("p", part, "x", "x", "x")  # same token rules as subjects
    return f"{tenant}.{app}"


def tenant_account(tenant: str) -> str:
    """The account of a tenant: its platform roles and JetStream state (``<tenant>``).

    Its apps' components have accounts of their own (:func:`app_account`),
    linked to this one by :mod:`kubefox.security.nats_tenancy`.
    """
    subjects.broker("p", tenant, "x", "x", "x")  # same token rules as subjects
    return tenant
