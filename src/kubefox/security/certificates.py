"""Certificates for the platform's servers: what to ask for, where the files go, and rotation.

Every server role (nats-server, the API, httpsrv) gets a leaf from the
platform's :class:`~kubefox.security.protocol.CertificateAuthority` naming
``localhost``, ``127.0.0.1``, ``::1``, ``kubefox-<role>`` and whatever host
names and addresses it is reached by. The files are written as nats-server,
uvicorn and ``ssl`` read them::

    <dir>/<name>.crt   [0644] leaf + intermediate (what the server presents)
    <dir>/<name>.key   [0600] its private key
    <dir>/ca.crt       [0644] the trust anchors clients verify against

:class:`CertificateRotator` keeps one such certificate fresh: it renews at a
fraction (2/3 by default) of the lifetime, writes the new files atomically
(key before certificate, so a server never loads a certificate without its
key) and then calls back, for example ``EmbeddedNatsServer.reload``. A failed
renewal is retried until the old certificate expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog

from kubefox.core.errors import InvalidError, KubeFoxError
from kubefox.security import pki
from kubefox.security.private_files import PRIVATE, PUBLIC, ensure_private_dir, write_atomic
from kubefox.security.protocol import CertificateAuthority, IssuedCertificate

log = structlog.get_logger(__name__)

#: Default lifetime of a server certificate; rotation renews it after 2/3 of that.
DEFAULT_TTL = timedelta(days=30)
DEFAULT_RENEW_FRACTION = 2 / 3
#: How long a failed renewal waits before the next try.
RETRY_DELAY = 5.0


class PlatformRole(enum.StrEnum):
    """Platform processes that serve TLS."""

    NATS = "nats"
    API = "api"
    HTTPSRV = "httpsrv"
    BROKER = "broker"
    OPERATOR = "operator"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CertificateSpec:
    """What a certificate must name and how long it lives."""

    common_name: str
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    ttl: timedelta = DEFAULT_TTL

    @classmethod
    def for_role(
        cls,
        role: PlatformRole,
        *,
        hostnames: Sequence[str] = (),
        ip_addresses: Sequence[str] = (),
        ttl: timedelta = DEFAULT_TTL,
    ) -> CertificateSpec:
        """The loopback names every role answers on, plus ``hostnames`` and ``ip_addresses``."""
        name = f"kubefox-{role.value}"
        dns = dict.fromkeys(("localhost", name, *hostnames))
        ips = dict.fromkeys(("127.0.0.1", "::1", *ip_addresses))
        return cls(common_name=name, dns_names=tuple(dns), ip_addresses=tuple(ips), ttl=ttl)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CertificateFiles:
    """Where a server's certificate chain, key and CA bundle are."""

    cert_file: Path
    key_file: Path
    ca_file: Path

    @classmethod
    def at(cls, directory: Path, name: str) -> CertificateFiles:
        """``<directory>/<name>.crt``, ``<name>.key`` and ``ca.crt``."""
        return cls(
            cert_file=directory / f"{name}.crt",
            key_file=directory / f"{name}.key",
            ca_file=directory / "ca.crt",
        )

    def exist(self) -> bool:
        """Whether all three files are there."""
        return all(p.is_file() for p in (self.cert_file, self.key_file, self.ca_file))


async def issue_certificate(ca: CertificateAuthority, spec: CertificateSpec) -> IssuedCertificate:
    """Ask ``ca`` for a certificate matching ``spec``."""
    return await ca.issue(
        spec.common_name, dns_names=spec.dns_names, ip_addresses=spec.ip_addresses, ttl=spec.ttl
    )


def write_certificate_files(issued: IssuedCertificate, files: CertificateFiles) -> None:
    """Write ``issued`` to ``files``: key first (``0600``), then the CA bundle and the chain."""
    for path in (files.cert_file, files.key_file, files.ca_file):
        ensure_private_dir(path.parent)
    write_atomic(files.key_file, issued.private_key.encode(), mode=PRIVATE)
    write_atomic(files.ca_file, issued.ca_bundle.encode(), mode=PUBLIC)
    write_atomic(files.cert_file, issued.chain.encode(), mode=PUBLIC)


def read_certificate(files: CertificateFiles) -> pki.CertificateInfo | None:
    """The leaf in ``files.cert_file``, or ``None`` if the files are missing or unreadable."""
    if not files.exist():
        return None
    try:
        return pki.certificate_info(files.cert_file.read_text())
    except (InvalidError, OSError):
        return None


class CertificateRotator:
    """Keeps the certificate in ``files`` valid, renewing it before it expires.

    ``on_rotated`` is awaited after each renewal with the files (already
    written); it is not called for the certificate :meth:`ensure` finds or
    makes at start, which the server reads when it starts.
    """

    def __init__(
        self,
        ca: CertificateAuthority,
        spec: CertificateSpec,
        files: CertificateFiles,
        *,
        on_rotated: Callable[[CertificateFiles], Awaitable[None]] | None = None,
        renew_fraction: float = DEFAULT_RENEW_FRACTION,
        retry_delay: float = RETRY_DELAY,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not 0 < renew_fraction < 1:
            raise ValueError("renew_fraction must be between 0 and 1")
        self._ca = ca
        self.spec = spec
        self.files = files
        self._on_rotated = on_rotated
        self._fraction = renew_fraction
        self._retry_delay = retry_delay
        self._clock = clock
        self._stopped = asyncio.Event()
        self._valid_from: datetime | None = None
        self._not_after: datetime | None = None
        self.rotations = 0

    @property
    def renew_at(self) -> datetime | None:
        """When the current certificate will be renewed; ``None`` before the first one."""
        if self._valid_from is None or self._not_after is None:
            return None
        return self._valid_from + (self._not_after - self._valid_from) * self._fraction

    async def ensure(self) -> CertificateFiles:
        """Make sure valid files exist: keep a certificate not yet due for renewal, else issue."""
        found = read_certificate(self.files)
        if found is not None and found.not_after > self._clock() and self._names_match(found):
            self._valid_from, self._not_after = found.not_before, found.not_after
            renew_at = self.renew_at
            if renew_at is not None and renew_at > self._clock():
                return self.files
        await self._renew()
        return self.files

    async def rotate(self) -> CertificateFiles:
        """Renew now, write the files and call ``on_rotated``."""
        await self._renew()
        self.rotations += 1
        log.info(
            "certificate.rotated",
            common_name=self.spec.common_name,
            cert_file=str(self.files.cert_file),
            not_after=self._not_after.isoformat() if self._not_after else None,
        )
        if self._on_rotated is not None:
            await self._on_rotated(self.files)
        return self.files

    async def run(self) -> None:
        """Renew at each ``renew_at`` until :meth:`stop`; failures are retried.

        Calls :meth:`ensure` first unless it already ran.
        """
        if self.renew_at is None:
            await self.ensure()
        while not self._stopped.is_set():
            renew_at = self.renew_at
            delay = 0.0 if renew_at is None else (renew_at - self._clock()).total_seconds()
            if await self._sleep(delay):
                return
            try:
                await self.rotate()
            except KubeFoxError as exc:
                # A CA that is down must not take the server down with it: the
                # old certificate is still valid, so try again shortly.
                log.warning(
                    "certificate.rotation_failed",
                    common_name=self.spec.common_name,
                    error=str(exc),
                    retry_in=self._retry_delay,
                )
                if await self._sleep(self._retry_delay):
                    return

    def stop(self) -> None:
        """End :meth:`run`; idempotent and safe to call from a signal handler."""
        self._stopped.set()

    def _names_match(self, found: pki.CertificateInfo) -> bool:
        """Whether ``found`` names everything :attr:`spec` asks for (else it is reissued)."""
        return (
            found.common_name == self.spec.common_name
            and set(self.spec.dns_names) <= set(found.dns_names)
            and set(self.spec.ip_addresses) <= set(found.ip_addresses)
        )

    async def _renew(self) -> None:
        issued_at = self._clock()
        issued = await issue_certificate(self._ca, self.spec)
        await asyncio.to_thread(write_certificate_files, issued, self.files)
        self._valid_from = max(issued_at, issued.not_before)
        self._not_after = issued.not_after

    async def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` or until stopped; ``True`` if stopped."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self._stopped.wait()
        return self._stopped.is_set()
