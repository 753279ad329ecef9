"""Per-process credentials for the local scheduler: the ports it depends on, and their files.

A component process gets a credential of its own (:class:`InstanceCredentials`
issues it: the embedded platform's NATS users) in a private directory
``<work_dir>/instances/<instance id>/``, and loses it once it has exited.
:class:`ProcessCredentials` keeps that bookkeeping (directory, logging,
clean-up) out of the supervisor. :class:`InstanceReadiness` is the other
port a renewal needs: when a successor process takes events.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Protocol

import structlog

from kubefox.core.errors import KubeFoxError
from kubefox.operator.processes import note
from kubefox.operator.scheduler import InstanceSpec

log = structlog.get_logger(__name__)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class InstanceCredential:
    """What one process was given: variables to add to its environment, and their expiry."""

    env: Mapping[str, str] = dataclasses.field(repr=False)
    expires_at: datetime | None = None


class InstanceCredentials(Protocol):
    """Issues a credential per component process and revokes it when the process is gone."""

    async def issue(
        self, spec: InstanceSpec, instance_id: str, directory: Path
    ) -> InstanceCredential:
        """A credential for process ``instance_id`` of ``spec``, its files in ``directory``.

        ``directory`` exists, is private (``0700``) and is removed after :meth:`revoke`.
        """
        ...

    async def revoke(self, instance_id: str) -> None:
        """Revoke what :meth:`issue` gave ``instance_id``; idempotent."""
        ...


class InstanceReadiness(Protocol):
    """Tells when a new process of an instance set takes events (used at renewals)."""

    async def __call__(self, spec: InstanceSpec, instance_id: str) -> None:
        """Return once process ``instance_id`` of ``spec`` is ready to take events.

        The scheduler bounds the wait (``ready_timeout``) and cancels it when
        it gives up; an exception means "not ready".
        """
        ...


class CredentialFailedError(Exception):
    """No credential could be issued; the start counts as failed (already logged)."""


class ProcessCredentials:
    """Issues and revokes the credentials of one scheduler's processes (none: all no-ops)."""

    def __init__(self, credentials: InstanceCredentials | None, directory: Path) -> None:
        self._credentials = credentials
        self._directory = directory

    async def issue(
        self, spec: InstanceSpec, instance_id: str, log_path: Path
    ) -> InstanceCredential | None:
        """The credential of a new process (``None``: credentials are off).

        Raises:
            CredentialFailedError: it could not be issued (logged, and noted in ``log_path``).
        """
        if self._credentials is None:
            return None
        directory = self._directory / instance_id
        try:
            await asyncio.to_thread(_private_dir, directory)
            return await self._credentials.issue(spec, instance_id, directory)
        except (KubeFoxError, OSError) as exc:
            log.warning("instance.credential_failed", key=spec.key, error=str(exc))
            note(log_path, f"no credential: {exc}")
            await asyncio.to_thread(_remove_dir, directory)
            raise CredentialFailedError from exc

    async def revoke(self, instance_id: str) -> None:
        """Revoke the credential of a process that has exited and remove its files."""
        if self._credentials is None:
            return
        try:
            await self._credentials.revoke(instance_id)
        except Exception as exc:  # noqa: BLE001 - a revocation failure must not stop supervision
            log.warning("instance.revocation_failed", instance=instance_id, error=str(exc))
        await asyncio.to_thread(_remove_dir, self._directory / instance_id)


def _remove_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _private_dir(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.mkdir(mode=0o700, exist_ok=True)
    path.chmod(0o700)
