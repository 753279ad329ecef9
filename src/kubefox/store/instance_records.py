"""Registration records: how a running component instance tells the platform it serves.

A component process (the Kit) puts one JSON record into the ``kubefox-instances``
KV bucket under ``<platform>.<app>.<name>.<hash>.<instance>`` once it serves,
refreshes it every few seconds and deletes it on stop (DESIGN §4). The
operator reads these records to decide whether a deployment is available:
a process that is alive but never registered does not serve anything.

This module holds the value type, its parsing (records come from processes,
so they are untrusted) and the read-side port :class:`Registrations`, which
the operator depends on instead of the NATS-backed
:class:`~kubefox.store.instances.InstanceRegistry`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

import msgspec

from kubefox.core.errors import InvalidError

_KEY_PARTS = 5


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class InstanceRecord:
    """One registered component instance.

    Attributes:
        key: ``<platform>.<app>.<name>.<hash>.<instance>``.
        platform: Platform name.
        app: App name.
        name: Component name.
        hash: Component hash.
        id: Instance id (``KUBEFOX_KIT_INSTANCE_ID``).
        pid: Process id on its host, if given.
        started_at: When the instance started serving, if given.
        heartbeat_at: When it last refreshed the record, if given (its clock).
        definition: What the component declares (routes, env vars, dependencies).
    """

    key: str
    platform: str
    app: str
    name: str
    hash: str
    id: str
    pid: int | None = None
    started_at: datetime | None = None
    heartbeat_at: datetime | None = None
    definition: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def record_key(platform: str, app: str, name: str, hash: str, instance: str) -> str:
    """The registry key of an instance: ``<platform>.<app>.<name>.<hash>.<instance>``."""
    return ".".join((platform, app, name, hash, instance))


def parse_record(key: str, data: bytes) -> InstanceRecord:
    """The record stored under ``key``; the key is authoritative for the identity.

    Raises:
        InvalidError: the key does not have five parts or the value is not a
            JSON object.
    """
    parts = key.split(".")
    if len(parts) != _KEY_PARTS or not all(parts):
        raise InvalidError("a registration key has five non-empty parts", key=key)
    try:
        body = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise InvalidError("a registration record is not JSON", key=key) from exc
    if not isinstance(body, dict):
        raise InvalidError("a registration record is not a JSON object", key=key)
    platform, app, name, hash_, instance = parts
    pid = body.get("pid")
    definition = body.get("definition")
    return InstanceRecord(
        key=key,
        platform=platform,
        app=app,
        name=name,
        hash=hash_,
        id=instance,
        pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
        started_at=_timestamp(body.get("startedAt")),
        heartbeat_at=_timestamp(body.get("heartbeatAt")),
        definition=definition if isinstance(definition, dict) else {},
    )


def _timestamp(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class Registrations(Protocol):
    """The live registrations of one platform, kept current by someone else."""

    def records(self) -> list[InstanceRecord]:
        """Every live record, sorted by key."""
        ...

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every change of :meth:`records`."""
        ...

    async def wait_ready(self) -> None:
        """Return once the records that existed at start have been read."""
        ...

    async def run(self) -> None:
        """Follow the registrations until cancelled or closed."""
        ...
