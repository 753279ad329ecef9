"""``GET /api/v1/status``: what runs, as one document for ``fox status``.

The parts of the platform come from whoever runs the API (the embedded
platform says where nats-server, httpsrv and the API listen). Component
instances come from two places that can disagree, and the report shows both:
the scheduler says whether a process runs (and how often it restarted), the
instance registry says whether it registered, i.e. serves. An instance set is
healthy when its process runs and at least one instance registered.

The scheduler belongs to the operator, which the API may not import, so it is
described here by the little the report reads (:class:`InstanceSource`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from kubefox.resources import AppDeployment
from kubefox.router import ResourceView
from kubefox.store.instance_records import InstanceRecord


class InstanceStateLike(Protocol):
    """What the report reads of a scheduler's instance set (an operator ``InstanceState``)."""

    @property
    def app(self) -> str: ...
    @property
    def component(self) -> str: ...
    @property
    def hash(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def pid(self) -> int | None: ...
    @property
    def restarts(self) -> int: ...
    @property
    def last_exit_code(self) -> int | None: ...
    @property
    def since(self) -> datetime: ...


class RecordSource(Protocol):
    """Live instance registrations (a ``Registrations``, e.g. the instance registry)."""

    def records(self) -> list[InstanceRecord]:
        """Every live record, sorted by key."""
        ...


class InstanceSource(Protocol):
    """Something that runs instance sets and lists them (the operator's scheduler)."""

    def instances(self) -> Sequence[InstanceStateLike]:
        """Every instance set, sorted by key."""
        ...


#: Says where each part of the platform listens: ``{"nats": url, "http": url, ...}``.
Endpoints = Callable[[], Mapping[str, Any]]

_PART_KEYS = ("nats", "http", "https", "api")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def status_report(
    *,
    platform: str,
    namespace: str,
    endpoints: Endpoints | None,
    view: ResourceView | None,
    registry: RecordSource | None,
    scheduler: InstanceSource | None,
) -> dict[str, Any]:
    """The status document (see ``StatusReport`` in the OpenAPI document)."""
    where = dict(endpoints()) if endpoints is not None else {}
    parts = [
        {"name": name, "url": where.get(name), "healthy": where.get(name) is not None}
        for name in _PART_KEYS
        if name in where
    ]
    parts += [
        {"name": name, "url": None, "healthy": bool(where[name])}
        for name in ("brokers", "operator")
        if name in where
    ]
    records = registry.records() if registry is not None else []
    by_hash: dict[tuple[str, str, str], list[InstanceRecord]] = {}
    for record in records:
        by_hash.setdefault((record.app, record.name, record.hash), []).append(record)
    used: dict[tuple[str, str, str], list[str]] = {}
    if view is not None:
        for appdep in view.all(AppDeployment):
            for component, definition in appdep.spec.components.items():
                key = (appdep.spec.app_name, component, definition.hash)
                used.setdefault(key, []).append(appdep.metadata.name)
    components: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str]] = set()
    for state in scheduler.instances() if scheduler is not None else []:
        key = (state.app, state.component, state.hash)
        seen.add(key)
        registered = by_hash.get(key, [])
        components.append(
            {
                "app": state.app,
                "component": state.component,
                "hash": state.hash,
                "status": str(state.status),
                "pid": state.pid,
                "restarts": state.restarts,
                "lastExitCode": state.last_exit_code,
                "since": _iso(state.since),
                "instances": [_instance(r) for r in registered],
                "healthy": str(state.status) == "running" and bool(registered),
                "appDeployments": sorted(used.get(key, [])),
            }
        )
    for key, registered in sorted(by_hash.items()):
        if key in seen:
            continue
        app, component, hash_ = key
        components.append(
            {
                "app": app,
                "component": component,
                "hash": hash_,
                "status": "external",  # registered, but not started by this platform
                "pid": None,
                "restarts": 0,
                "lastExitCode": None,
                "since": None,
                "instances": [_instance(r) for r in registered],
                "healthy": True,
                "appDeployments": sorted(used.get(key, [])),
            }
        )
    return {
        "platform": platform,
        "namespace": namespace,
        "healthy": all(part["healthy"] for part in parts) and all(c["healthy"] for c in components),
        "parts": parts,
        "components": components,
    }


def _instance(record: InstanceRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "pid": record.pid,
        "startedAt": _iso(record.started_at),
        "heartbeatAt": _iso(record.heartbeat_at),
    }
