"""The scheduling port: what the operator needs from whatever runs component instances.

DESIGN §8 makes scheduling a port. The operator decides *which* instance sets
must exist (one per distinct app, component and hash: deployment
distillation) and hands each to a :class:`Scheduler` as an
:class:`InstanceSpec`; the scheduler makes it run and reports what it sees as
:class:`InstanceState`. The local process supervisor
(:class:`~kubefox.operator.local.LocalScheduler`) is the first implementation;
a Kubernetes one (a Deployment per instance set) is meant to slot in without
the operator noticing. Whether an instance *serves* is not the scheduler's
business: instances say so themselves by registering (see
:mod:`kubefox.store.instance_records`).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Protocol


def instance_key(app: str, component: str, hash: str) -> str:
    """The key of the instance set running ``component`` of ``app`` at ``hash``.

    ``<app>-<component>-<hash>``: upstream names its Deployments after the first
    seven characters of the hash only; the full hash is kept here so that two
    builds whose hashes share a prefix never share processes.
    """
    return f"{app}-{component}-{hash}"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class InstanceSpec:
    """What to run: one component of one app at one hash, from one artifact.

    ``env`` is what the instance is told (the ``KUBEFOX_KIT_*`` variables);
    the scheduler adds ``KUBEFOX_KIT_INSTANCE_ID``, fresh for every start.
    """

    app: str
    component: str
    hash: str
    artifact: str
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def key(self) -> str:
        """See :func:`instance_key`."""
        return instance_key(self.app, self.component, self.hash)


class InstanceStatus(enum.StrEnum):
    """Where an instance set's process is in its life."""

    STARTING = "starting"  # being prepared or spawned
    RUNNING = "running"  # the process is alive
    CRASHED = "crashed"  # the process exited without being asked to
    BACKOFF = "backoff"  # waiting before the next start
    STOPPING = "stopping"  # asked to stop, not yet gone
    STOPPED = "stopped"  # gone for good


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class InstanceState:
    """What a scheduler knows about one instance set, at one moment.

    Attributes:
        key: The instance set (:func:`instance_key`).
        app: App name.
        component: Component name.
        hash: Component hash.
        status: Where the current process is in its life.
        pid: The current process id, if one is alive.
        instance_id: The ``KUBEFOX_KIT_INSTANCE_ID`` of the current or last process.
        restarts: Restarts since the instance set was created.
        failures: Restarts in a row after a quick exit; back to 0 once a process
            has run for the backoff reset time. The operator reads a high value
            as "keeps crashing".
        last_exit_code: Exit status of the last process (negative: killed by
            that signal), ``None`` before the first exit.
        since: When ``status`` was entered.
    """

    key: str
    app: str
    component: str
    hash: str
    status: InstanceStatus
    pid: int | None
    instance_id: str | None
    restarts: int
    failures: int
    last_exit_code: int | None
    since: datetime


class Scheduler(Protocol):
    """Runs instance sets and reports on them.

    :meth:`run` does the background work (supervision) and returns after
    :meth:`aclose`; :meth:`ensure` and :meth:`remove` may be called before
    :meth:`run` has started. Errors: ``NotFoundError`` when the artifact of a
    spec does not exist, ``InvalidError`` when it cannot be used,
    ``UnavailableError`` after :meth:`aclose`.
    """

    async def ensure(self, spec: InstanceSpec) -> None:
        """Make the instance set ``spec.key`` run ``spec``; a no-op if it already does.

        A different spec under the same key replaces the running one.
        """
        ...

    async def remove(self, key: str) -> None:
        """Stop the instance set ``key`` and forget it; return once it is gone.

        Unknown keys are ignored.
        """
        ...

    def instances(self) -> list[InstanceState]:
        """Every instance set, sorted by key."""
        ...

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` whenever what :meth:`instances` returns may have changed."""
        ...

    async def run(self) -> None:
        """Supervise until :meth:`aclose`."""
        ...

    async def aclose(self) -> None:
        """Stop everything this scheduler started in this process. Idempotent."""
        ...
