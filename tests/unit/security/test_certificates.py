"""Certificate files and the rotator, against the embedded CA (fast and real)."""

from __future__ import annotations

import asyncio
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kubefox.core.errors import UnavailableError
from kubefox.security.certificates import (
    CertificateFiles,
    CertificateRotator,
    CertificateSpec,
    PlatformRole,
    read_certificate,
)
from kubefox.security.embedded import EmbeddedSecretsBackend
from kubefox.security.protocol import IssuedCertificate


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


class FailingCA(EmbeddedSecretsBackend):
    failures = 1

    async def issue(self, *args: Any, **kwargs: Any) -> IssuedCertificate:
        if self.failures:
            self.failures -= 1
            raise UnavailableError("the CA is down")
        return await super().issue(*args, **kwargs)


def test_a_role_spec_names_the_loopback_addresses_and_the_role() -> None:
    """localhost, 127.0.0.1, ::1 and kubefox-<role>, then what the caller adds, no duplicates."""
    spec = CertificateSpec.for_role(
        PlatformRole.NATS, hostnames=["nats.example", "localhost"], ip_addresses=["10.1.2.3"]
    )

    assert spec.common_name == "kubefox-nats"
    assert spec.dns_names == ("localhost", "kubefox-nats", "nats.example")
    assert spec.ip_addresses == ("127.0.0.1", "::1", "10.1.2.3")


async def test_ensure_writes_the_files_with_a_private_key(tmp_path: Path) -> None:
    """cert (chain), key 0600, CA bundle; a second ensure keeps the same certificate."""
    files = CertificateFiles.at(tmp_path / "tls", "api")
    rotator = CertificateRotator(
        EmbeddedSecretsBackend(tmp_path / "state"),
        CertificateSpec.for_role(PlatformRole.API),
        files,
    )

    await rotator.ensure()
    first = read_certificate(files)
    await rotator.ensure()

    assert first is not None
    assert stat.S_IMODE(files.key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.cert_file.stat().st_mode) == 0o644
    assert files.cert_file.read_text().count("BEGIN CERTIFICATE") == 2
    assert read_certificate(files) == first
    assert rotator.rotations == 0


async def test_renewal_is_due_at_two_thirds_of_the_lifetime(tmp_path: Path) -> None:
    """renew_at = valid_from + 2/3 (valid_from = when we got it, not the backdated start)."""
    clock = Clock()
    rotator = CertificateRotator(
        EmbeddedSecretsBackend(tmp_path / "state"),
        CertificateSpec.for_role(PlatformRole.HTTPSRV, ttl=timedelta(hours=3)),
        CertificateFiles.at(tmp_path / "tls", "httpsrv"),
        clock=clock,
    )
    await rotator.ensure()

    assert rotator.renew_at is not None
    assert abs(rotator.renew_at - (clock.now + timedelta(hours=2))) < timedelta(seconds=2)


async def test_a_certificate_past_its_renewal_time_is_replaced_at_start(tmp_path: Path) -> None:
    """A process that restarts late does not keep a nearly expired certificate."""
    clock = Clock()
    ca = EmbeddedSecretsBackend(tmp_path / "state")
    files = CertificateFiles.at(tmp_path / "tls", "nats")
    spec = CertificateSpec.for_role(PlatformRole.NATS, ttl=timedelta(hours=3))
    await CertificateRotator(ca, spec, files, clock=clock).ensure()
    old = read_certificate(files)

    clock.now += timedelta(hours=2, minutes=30)
    await CertificateRotator(ca, spec, files, clock=clock).ensure()

    new = read_certificate(files)
    assert old is not None
    assert new is not None
    assert new.serial != old.serial


async def test_run_renews_when_due_and_calls_back(tmp_path: Path) -> None:
    """Once renew_at has passed, run() issues a new certificate and awaits on_rotated."""
    clock = Clock()
    seen: asyncio.Queue[CertificateFiles] = asyncio.Queue()

    async def on_rotated(files: CertificateFiles) -> None:
        seen.put_nowait(files)

    files = CertificateFiles.at(tmp_path / "tls", "nats")
    rotator = CertificateRotator(
        EmbeddedSecretsBackend(tmp_path / "state"),
        CertificateSpec.for_role(PlatformRole.NATS, ttl=timedelta(days=30)),
        files,
        on_rotated=on_rotated,
        clock=clock,
    )
    await rotator.ensure()
    first = read_certificate(files)
    clock.now += timedelta(days=21)

    async with asyncio.TaskGroup() as group:
        group.create_task(rotator.run())
        async with asyncio.timeout(5):
            assert await seen.get() == files
        rotator.stop()
        rotator.stop()  # idempotent

    second = read_certificate(files)
    assert first is not None
    assert second is not None
    assert second.serial != first.serial
    assert rotator.rotations == 1


async def test_a_failed_renewal_is_retried(tmp_path: Path) -> None:
    """A CA outage is logged and retried; the old certificate stays in place meanwhile."""
    clock = Clock()
    ca = FailingCA(tmp_path / "state")
    files = CertificateFiles.at(tmp_path / "tls", "nats")
    spec = CertificateSpec.for_role(PlatformRole.NATS, ttl=timedelta(days=30))
    ca.failures = 0
    await CertificateRotator(ca, spec, files, clock=clock).ensure()
    ca.failures = 1
    done = asyncio.Event()

    async def on_rotated(_: CertificateFiles) -> None:
        done.set()

    rotator = CertificateRotator(
        ca, spec, files, on_rotated=on_rotated, retry_delay=0.01, clock=clock
    )
    await rotator.ensure()
    clock.now += timedelta(days=25)

    async with asyncio.TaskGroup() as group:
        group.create_task(rotator.run())
        async with asyncio.timeout(5):
            await done.wait()
        rotator.stop()

    assert ca.failures == 0
    assert rotator.rotations == 1


def test_the_renew_fraction_must_be_a_fraction(tmp_path: Path) -> None:
    """0 and 1 would renew constantly or never."""
    for fraction in (0.0, 1.0):
        with pytest.raises(ValueError, match="fraction"):
            CertificateRotator(
                EmbeddedSecretsBackend(tmp_path),
                CertificateSpec.for_role(PlatformRole.API),
                CertificateFiles.at(tmp_path, "api"),
                renew_fraction=fraction,
            )
