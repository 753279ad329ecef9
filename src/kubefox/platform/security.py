"""The embedded platform's security: secrets backend, CA, TLS files and NATS credentials.

:class:`PlatformSecurity` is opened once per platform start. It always opens
the secrets backend and certificate authority (``PlatformSettings.secrets``,
by default ``embedded:///<state_dir>/security``), so secrets and certificates
work whatever ``security`` says. With ``security`` on (the default) it also

* issues nats-server's certificate (``<state>/security/tls/nats.crt``, rotated
  by a :class:`~kubefox.security.certificates.CertificateRotator` that reloads
  the server) and runs the server in operator mode with the system account
  preloaded and a ``full`` resolver;
* pushes the tenant's account and one account per app, linked by stream
  exports and imports (:mod:`kubefox.security.nats_tenancy`), revoking at each
  start every user those accounts had signed before, so nothing left on disk
  by an earlier run still connects; an app seen for the first time gets its
  account when its first instance starts;
* gives each platform role its own user (:meth:`PlatformSecurity.nats_options`):
  the stores, the operator and the API share the platform admin user
  (everything in the tenant's account), each broker gets
  ``broker_permissions`` and httpsrv ``httpsrv_permissions``, each with the
  inbox prefix its permissions allow. These users have no expiry; they live
  as long as this run (the next start revokes them);
* issues each component process a user in its app's account with
  ``component_permissions`` and a ``credential_ttl`` lifetime when the
  operator starts it, and revokes it
  (pushed to the server at once) when the process exits
  (:class:`ComponentCredentials`, the operator's ``InstanceCredentials``).

Files (all under ``<state>/security``; directories ``0700``, keys and creds ``0600``)::

    secrets/, pki/        the embedded backend (sealed secrets, the CA)
    tls/ca.crt            the CA bundle every client verifies against (``ca_file``)
    tls/<role>.crt|.key   a role's server certificate (:meth:`PlatformSecurity.certificate`)
    nats/<user>.creds     the platform roles' NATS credentials
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import secrets
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from kubefox.core.errors import InvalidError, UnavailableError
from kubefox.core.nats_options import NatsConnectOptions
from kubefox.operator.credentials import InstanceCredential
from kubefox.operator.scheduler import InstanceSpec
from kubefox.platform.settings import PlatformSettings
from kubefox.recording.jetstream import NAME as RECORDINGS
from kubefox.security import SecretsSettings, SecurityBackend, open_secrets_backend
from kubefox.security.certificates import (
    DEFAULT_TTL,
    CertificateFiles,
    CertificateRotator,
    CertificateSpec,
    PlatformRole,
)
from kubefox.security.nats_auth import (
    NatsAuthority,
    UserCredential,
    broker_permissions,
    component_permissions,
    httpsrv_permissions,
    role_inbox,
    unrestricted,
)
from kubefox.security.nats_tenancy import TenantAccounts
from kubefox.security.private_files import PRIVATE, ensure_private_dir, write_atomic
from kubefox.store.nats_client import connect_client, on_permission_refused
from kubefox.store.natsd import EmbeddedNatsServer, NatsOperator, NatsTls

if TYPE_CHECKING:
    from nats.aio.client import Client

    from kubefox.telemetry.metrics import HopMetrics

log = structlog.get_logger(__name__)

#: Variables naming a component process's credential and the CA (read by the Kit).
CREDS_FILE_VAR = "KUBEFOX_KIT_NATS_CREDS_FILE"
CA_FILE_VAR = "KUBEFOX_KIT_NATS_CA_FILE"
#: Counter of permission refusals nats-server reported to a platform role.
REFUSALS_METRIC = "kubefox.nats.permission_refusals"
#: Roles that connect as the platform admin (everything in the tenant's account).
ADMIN_ROLES = frozenset({PlatformRole.OPERATOR, PlatformRole.API})

_ADMIN_USER = "platform-admin"
_SYSTEM_USER = "system"
# A revocation covers users issued at or before its second: leave this run's out.
_REVOCATION_MARGIN = timedelta(seconds=1)


def new_identity() -> str:
    """A random identity for one broker or httpsrv of this run (a subject token)."""
    return secrets.token_hex(4)


class PlatformSecurity:
    """Secrets backend, CA files and NATS credentials of one platform run.

    Build it with :meth:`open`; :meth:`aclose` closes the system connection and
    the backend.
    """

    def __init__(
        self, settings: PlatformSettings, *, state_dir: Path, backend: SecurityBackend
    ) -> None:
        self.settings = settings
        self.backend: SecurityBackend = backend
        self.enabled: bool = settings.security
        self.directory = state_dir / "security"
        self.tls_dir = self.directory / "tls"
        self.creds_dir = self.directory / "nats"
        #: The CA bundle every client of the platform's servers verifies against.
        self.ca_file: Path = self.tls_dir / "ca.crt"
        self.tenancy: TenantAccounts | None = None
        #: Permission refusals nats-server reported to a platform role, by role.
        self.refusals: collections.Counter[str] = collections.Counter()
        self._authority: NatsAuthority | None = None
        self._url: str | None = None
        self._system: Client | None = None
        self._admin: NatsConnectOptions | None = None
        self._push_lock = asyncio.Lock()
        self._linked_apps: set[str] = set()
        self._unlisten: list[Callable[[], None]] = []
        self.components: ComponentCredentials | None = None

    @classmethod
    async def open(cls, settings: PlatformSettings, *, state_dir: Path) -> PlatformSecurity:
        """Open the backend (and, with security on, the NATS operator) and write ``ca_file``."""
        target = settings.secrets or SecretsSettings(
            url=f"embedded://{(state_dir / 'security').resolve().as_posix()}"
        )
        backend = await open_secrets_backend(target)
        security = cls(settings, state_dir=state_dir, backend=backend)
        try:
            bundle = await backend.ca_bundle()
            await asyncio.to_thread(security._write_ca_bundle, bundle)
            if security.enabled:
                security._authority = await NatsAuthority.load_or_create(backend)
                security.tenancy = TenantAccounts(
                    security._authority,
                    settings.tenant,
                    instances_bucket=settings.instances_bucket,
                )
                security.components = ComponentCredentials(security)
        except BaseException:
            await backend.aclose()
            raise
        security._unlisten.append(on_permission_refused(security._count_refusal))
        return security

    @property
    def account(self) -> str:
        """The tenant's NATS account: the platform roles' and its JetStream state."""
        return self._tenancy().account

    def _tenancy(self) -> TenantAccounts:
        if self.tenancy is None:
            raise InvalidError("platform security is off: there are no NATS accounts")
        return self.tenancy

    @property
    def authority(self) -> NatsAuthority:
        """The NATS operator (signing keys, accounts); only with security on."""
        if self._authority is None:
            raise InvalidError("platform security is off: there is no NATS authority")
        return self._authority

    # -- certificates ----------------------------------------------------------------

    async def certificate(
        self,
        role: PlatformRole,
        *,
        hostnames: Sequence[str] = (),
        ip_addresses: Sequence[str] = (),
        ttl: timedelta = DEFAULT_TTL,
        on_rotated: Callable[[CertificateFiles], Awaitable[None]] | None = None,
    ) -> CertificateRotator:
        """A rotator of ``role``'s server certificate; its files exist when this returns.

        The files are ``<state>/security/tls/<role>.crt`` and ``.key`` (and
        :attr:`ca_file`); the caller runs ``.run()`` to renew them before they
        expire, with ``on_rotated`` awaited after each renewal.
        """
        files = CertificateFiles.at(self.tls_dir, role.value)
        spec = CertificateSpec.for_role(
            role, hostnames=hostnames, ip_addresses=ip_addresses, ttl=ttl
        )
        rotator = CertificateRotator(self.backend, spec, files, on_rotated=on_rotated)
        await rotator.ensure()
        return rotator

    # -- the NATS server -------------------------------------------------------------

    async def configure_nats(self, server: EmbeddedNatsServer) -> CertificateRotator | None:
        """Set TLS and operator mode on ``server`` (not started yet); the rotator to run.

        With security off, the server is left as it is and ``None`` returned.
        """
        if not self.enabled:
            return None
        authority = self.authority

        async def reload(_files: CertificateFiles) -> None:
            if server.running:
                await server.reload()

        rotator = await self.certificate(PlatformRole.NATS, on_rotated=reload)
        server.tls = NatsTls(cert_file=rotator.files.cert_file, key_file=rotator.files.key_file)
        server.operator = NatsOperator(
            operator_jwt=authority.operator_jwt,
            system_account=authority.system_account,
            system_account_jwt=authority.system_account_jwt(),
        )
        return rotator

    async def attach(self, url: str) -> None:
        """The server at ``url`` runs: connect the system user and push the tenant's accounts.

        Every user those accounts signed before now is revoked in the same push.
        """
        self._url = url
        if not self.enabled:
            return
        authority = self.authority
        creds = self._write_creds(_SYSTEM_USER, authority.system_user())
        self._system = await connect_client(
            NatsConnectOptions(
                url=url, name="kubefox-security", ca_file=self.ca_file, creds_file=creds
            ),
            log_prefix="security",
        )
        issued_before = datetime.now(UTC) - _REVOCATION_MARGIN
        async with self._push_lock:
            accounts = await self._tenancy().link_all()
            for account in accounts:
                await authority.revoke_all(account, issued_before=issued_before)
            await self._push(accounts)

    async def app_account(self, app: str) -> str:
        """``app``'s NATS account, made, linked and pushed the first time it is asked for."""
        tenancy = self._tenancy()
        if app not in self._linked_apps:
            async with self._push_lock:
                if app not in self._linked_apps:
                    await self._push(await tenancy.add_app(app))
                    self._linked_apps.add(app)
        return tenancy.app_account(app)

    async def _push(self, accounts: Sequence[str]) -> None:
        system = self._system
        if system is None:
            raise UnavailableError("platform security is not attached to a nats-server")
        for account in accounts:
            await self.authority.push(system, account)

    # -- the platform roles' connections ---------------------------------------------

    async def nats_options(
        self, role: PlatformRole, *, identity: str = "", name: str | None = None
    ) -> NatsConnectOptions:
        """How ``role`` connects: its URL, the CA, its own credential and inbox prefix.

        ``identity`` names one broker or httpsrv (see :func:`new_identity`); the
        operator, the API and the stores share the platform admin user.

        Raises:
            InvalidError: ``role`` does not connect to NATS, or an identity is missing.
            UnavailableError: not :meth:`attach`-ed yet.
        """
        url = self._url
        if url is None:
            raise UnavailableError("platform security is not attached to a nats-server")
        label = name or f"kubefox-{role.value}" + (f" {identity}" if identity else "")
        if not self.enabled:
            return NatsConnectOptions(url=url, name=label)
        if role in ADMIN_ROLES:
            return await self._admin_options(url, label)
        if role not in (PlatformRole.BROKER, PlatformRole.HTTPSRV):
            raise InvalidError(f"the {role.value} role does not connect to NATS", role=role.value)
        if not identity:
            raise InvalidError(f"a {role.value} needs an identity", role=role.value)
        s = self.settings
        if role is PlatformRole.BROKER:
            permissions = broker_permissions(
                s.name, identity, resources_bucket=s.bucket, instances_bucket=s.instances_bucket
            )
        else:
            permissions = httpsrv_permissions(
                s.name,
                identity,
                resources_bucket=s.bucket,
                instances_bucket=s.instances_bucket,
                recordings=RECORDINGS,
            )
        user = f"{role.value}-{identity}"
        credential = await self.authority.issue_user(self.account, user, permissions, ttl=None)
        return NatsConnectOptions(
            url=url,
            name=label,
            ca_file=self.ca_file,
            creds_file=self._write_creds(user, credential.creds),
            inbox_prefix=role_inbox(s.name, role.value, identity),
        )

    async def _admin_options(self, url: str, label: str) -> NatsConnectOptions:
        if self._admin is None:
            credential = await self.authority.issue_user(
                self.account, _ADMIN_USER, unrestricted(), ttl=None
            )
            self._admin = NatsConnectOptions(
                url=url,
                name=label,
                ca_file=self.ca_file,
                creds_file=self._write_creds(_ADMIN_USER, credential.creds),
            )
        return NatsConnectOptions(
            url=url,
            name=label,
            ca_file=self._admin.ca_file,
            creds_file=self._admin.creds_file,
            # an inbox app accounts send replies to (a test sending events to components)
            inbox_prefix=role_inbox(self.settings.name, "admin", new_identity()),
        )

    # -- refusals --------------------------------------------------------------------

    def count_refusals(self, metrics: HopMetrics | None) -> None:
        """Serve :attr:`refusals` in ``metrics`` as ``kubefox_nats_permission_refusals{role}``.

        A running total read when metrics are collected (the metrics API takes
        gauges, and a total that only grows reads the same as a counter).
        """
        if metrics is None:
            return

        def totals() -> list[tuple[float, dict[str, str]]]:
            return [(float(count), {"role": role}) for role, count in sorted(self.refusals.items())]

        metrics.gauge(
            REFUSALS_METRIC,
            "Permission violations nats-server reported to a platform role, in total.",
            totals,
        )

    def _count_refusal(self, role: str, _reason: str) -> None:
        self.refusals[role] += 1

    # -- lifecycle -------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the system connection and the backend; idempotent."""
        for unlisten in self._unlisten:
            unlisten()
        self._unlisten.clear()
        system, self._system = self._system, None
        if system is not None:
            with contextlib.suppress(Exception):
                await system.close()
        with contextlib.suppress(FileNotFoundError):
            (self.creds_dir / f"{_SYSTEM_USER}.creds").unlink()
        with contextlib.suppress(Exception):
            await self.backend.aclose()

    # -- files -----------------------------------------------------------------------

    def _write_ca_bundle(self, bundle: str) -> None:
        ensure_private_dir(self.tls_dir)
        write_atomic(self.ca_file, bundle.encode(), mode=0o644)

    def _write_creds(self, user: str, creds: str) -> Path:
        ensure_private_dir(self.creds_dir)
        path = self.creds_dir / f"{user}.creds"
        write_atomic(path, creds.encode(), mode=PRIVATE)
        return path


class ComponentCredentials:
    """One NATS user per component process (the operator's ``InstanceCredentials``).

    Each user may subscribe only to its component's subject (in its queue
    group) and its own inbox, publish only to its own ``brk`` subject, its own
    registration key and replies; it expires after ``credential_ttl`` and is
    revoked when the process exits.
    """

    def __init__(self, security: PlatformSecurity) -> None:
        self._security = security
        self._issued: dict[str, UserCredential] = {}

    async def issue(
        self, spec: InstanceSpec, instance_id: str, directory: Path
    ) -> InstanceCredential:
        """Sign the process's user and write it to ``<directory>/nats.creds`` (``0600``)."""
        security = self._security
        s = security.settings
        permissions = component_permissions(
            s.name,
            spec.app,
            spec.component,
            spec.hash,
            instance_id,
            instances_bucket=s.instances_bucket,
        )
        credential = await security.authority.issue_user(
            await security.app_account(spec.app),
            f"{spec.app}.{spec.component}.{instance_id}",
            permissions,
            ttl=timedelta(seconds=s.credential_ttl),
        )
        path = directory / "nats.creds"
        await asyncio.to_thread(write_atomic, path, credential.creds.encode(), mode=PRIVATE)
        self._issued[instance_id] = credential
        return InstanceCredential(
            env={CREDS_FILE_VAR: str(path), CA_FILE_VAR: str(security.ca_file)},
            expires_at=credential.expires_at,
        )

    async def revoke(self, instance_id: str) -> None:
        """Revoke the process's user and push the account to the server at once."""
        credential = self._issued.pop(instance_id, None)
        if credential is None:
            return
        security = self._security
        async with security._push_lock:  # one account document: revocations in turn
            await security.authority.revoke(credential)
            if security._system is not None:
                await security._push([credential.account])
        log.info("instance.credential_revoked", instance=instance_id, user=credential.public_key)

    def issued(self) -> dict[str, UserCredential]:
        """The live credentials by instance id (a copy)."""
        return dict(self._issued)
