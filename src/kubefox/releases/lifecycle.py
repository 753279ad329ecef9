"""The release state machine of one VirtualEnvironment (upstream's VE controller, §1.11).

:func:`reconcile_release` is a pure function: it takes the VirtualEnvironment,
its Environment, the AppDeployments, HTTPAdapters and ReleaseManifests that
exist, the routes other VirtualEnvironments' active releases serve, and the
time; it returns the new status and what the caller must write. The operator
(:mod:`kubefox.operator.releases`) gathers the inputs and writes the outcome;
tests drive every transition without processes or a store.

The steps, as upstream:

1. *rollback*: the last pending release missed its deadline
   (``ReleasePending=False/PendingDeadlineExceeded`` and
   ``pendingReleaseFailed``) and ``spec.release`` still asks for it: restore
   ``spec.release`` to the active release's apps (or none) and stop;
2. clear ``pendingReleaseFailed``;
3. no ``spec.release``: archive the active and pending releases
   (``Superseded``), conditions ``NoRelease``;
4. ``spec.release`` equal to the active release clears the pending one;
   otherwise, if it differs from the pending one, it becomes the new pending
   release (uuid4 id, ``requestTime`` now);
5. the pending release without problems (and with its Environment) is
   activated: the old active one is archived ``Superseded``, and under a
   ``Stable`` policy a ReleaseManifest is created; past its deadline it is
   archived ``PendingDeadlineExceeded`` and ``pendingReleaseFailed`` set;
   otherwise it stays pending (``ProblemsFound``);
6. the active release's problems are recomputed (with its manifest's data and
   adapters when it has one): ``ActiveReleaseAvailable`` ``ContextAvailable``
   or ``ProblemsFound``, or ``ReleasePending`` when nothing is active;
7. a missing Environment turns both conditions to ``EnvironmentNotFound`` and
   clears the problem lists;
8. history sorted newest ``archiveTime`` first, trimmed to the count limit,
   then every entry older than the age limit dropped (upstream keeps the
   first expired entry, an off-by-one fixed here);
9. while a release is pending, call again when its deadline passes;
10. this VirtualEnvironment's manifests that neither the active release nor
    the history references are deleted.

Deliberate differences (each tested): a pending release replaced by another
request, or dropped because ``spec.release`` went back to the active release,
is archived ``Superseded`` instead of vanishing; an activation sets the
message ``Release was activated.`` (upstream keeps a stale deadline message);
``RouteConflict`` (see :mod:`kubefox.resources.release_routes`).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from kubefox.releases.conditions import (
    MSG_ACTIVE_AVAILABLE,
    MSG_ACTIVE_PROBLEMS,
    MSG_ACTIVE_RELEASE_PENDING,
    MSG_DEADLINE_EXCEEDED,
    MSG_NO_RELEASE,
    MSG_PENDING_PROBLEMS,
    MSG_RELEASE_ACTIVATED,
    find_condition,
    set_condition,
)
from kubefox.releases.manifests import build_manifest
from kubefox.releases.problems import (
    ReleaseCheck,
    app_problems,
    conflict_problems,
    manifest_not_found,
)
from kubefox.resources import (
    AppDeployment,
    ArchiveReason,
    ConditionReason,
    ConditionStatus,
    ConditionType,
    Data,
    Environment,
    HTTPAdapter,
    ObservedProblem,
    Problem,
    Release,
    ReleaseApp,
    ReleaseManifest,
    ReleasePolicyType,
    ReleaseStatus,
    VirtualEnvironment,
    VirtualEnvironmentStatus,
    effective_policy,
    merge_data,
)
from kubefox.resources.release_routes import ActiveRoutes, ReleasedRoute, released_routes
from kubefox.resources.validation import AnyHTTPAdapter
from kubefox.store.typed import LABEL_VIRTUAL_ENVIRONMENT

_TRUE, _FALSE = ConditionStatus.TRUE, ConditionStatus.FALSE
#: Seconds added to a requeue, so the next pass is surely past the deadline.
_REQUEUE_SLACK = 0.01


def _new_id() -> str:
    return str(uuid.uuid4())


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseInputs:
    """Everything one pass of the state machine reads.

    Attributes:
        ve: the VirtualEnvironment, with its ``metadata.resourceVersion``.
        environment: its Environment, ``None`` if it does not exist.
        app_deployments: the AppDeployments that exist, by name (at least
            those the releases name; more is fine).
        adapters: the HTTPAdapters that exist, by name.
        manifests: the ReleaseManifests that exist, by name (at least this
            VirtualEnvironment's).
        others: the routes of the other VirtualEnvironments' active releases.
        now: the time of this pass (timezone-aware).
        new_id: makes a release id (uuid4 by default).
    """

    ve: VirtualEnvironment
    environment: Environment | None
    app_deployments: Mapping[str, AppDeployment]
    adapters: Mapping[str, HTTPAdapter]
    manifests: Mapping[str, ReleaseManifest]
    others: Sequence[ActiveRoutes] = ()
    now: datetime
    new_id: Callable[[], str] = _new_id


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Rollback:
    """Write ``spec.release := release`` (``None``: no release), nothing else."""

    release: Release | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseOutcome:
    """What one pass decided; the caller writes it.

    Attributes:
        status: the VirtualEnvironment's new status (unchanged after a rollback).
        rollback: a ``spec.release`` to write instead of the status, if any.
        manifest: a ReleaseManifest to create before writing the status.
        delete_manifests: names of this VirtualEnvironment's manifests to delete
            after the status is written.
        requeue_after: seconds after which to run again (a pending deadline).
    """

    status: VirtualEnvironmentStatus
    rollback: Rollback | None = None
    manifest: ReleaseManifest | None = None
    delete_manifests: tuple[str, ...] = ()
    requeue_after: float | None = None


def same_release(a: ReleaseStatus | Release | None, b: ReleaseStatus | Release | None) -> bool:
    """Whether two releases (recorded or requested) name the same apps and versions."""
    if a is None or b is None:
        return a is None and b is None
    return _apps_key(a.apps) == _apps_key(b.apps)


def _apps_key(apps: Mapping[str, ReleaseApp]) -> dict[str, tuple[str, str]]:
    return {name: (app.app_deployment, app.version or "") for name, app in apps.items()}


def reconcile_release(inputs: ReleaseInputs) -> ReleaseOutcome:
    """One pass of the state machine (see the module docstring for the steps)."""
    return _Pass(inputs).run()


class _Pass:
    """One run of the steps over a copy of the status; :meth:`run` returns the outcome."""

    def __init__(self, inputs: ReleaseInputs) -> None:
        self.inputs = inputs
        self.ve = inputs.ve
        self.now = _utc(inputs.now)
        self.old = inputs.ve.status or VirtualEnvironmentStatus()
        self.status = self.old.model_copy(deep=True)
        self.generation = inputs.ve.metadata.generation or 0
        self.policy = effective_policy(inputs.environment, inputs.ve)
        pending = find_condition(self.status.conditions, ConditionType.RELEASE_PENDING)
        self.pending_condition = pending
        # Upstream keeps a missed deadline visible on ReleasePending until a
        # release is activated or expires again.
        self.kept: tuple[str, str] | None = (
            (ConditionReason.PENDING_DEADLINE_EXCEEDED, MSG_DEADLINE_EXCEEDED)
            if pending is not None and pending.reason == ConditionReason.PENDING_DEADLINE_EXCEEDED
            else None
        )

    def run(self) -> ReleaseOutcome:
        rollback = self.rollback()  # 1.
        if rollback is not None:
            return ReleaseOutcome(status=self.old, rollback=rollback)
        status = self.status
        status.pending_release_failed = False  # 2.
        manifest: ReleaseManifest | None = None
        requeue_after: float | None = None
        if self.ve.spec.release is None:
            self.no_release()  # 3.
        else:
            self.choose_pending(self.ve.spec.release)  # 4.
            manifest, requeue_after = self.evaluate_pending()  # 5.
            manifests = dict(self.inputs.manifests)
            if manifest is not None:
                manifests[manifest.metadata.name] = manifest
            self.evaluate_active(manifests)  # 6.
            if self.inputs.environment is None:
                self.environment_missing()  # 7.
        self.trim_history()  # 8.
        return ReleaseOutcome(
            status=status,
            manifest=manifest,
            delete_manifests=self.unused_manifests(),  # 10.
            requeue_after=requeue_after,  # 9.
        )

    def condition(self, kind: ConditionType, value: ConditionStatus, reason: str, msg: str) -> None:
        self.status.conditions = set_condition(
            self.status.conditions,
            kind=kind,
            status=value,
            reason=reason,
            message=msg,
            generation=self.generation,
            now=self.now,
        )

    def archive(self, release: ReleaseStatus, reason: ArchiveReason) -> None:
        release.archive_time = self.now
        release.archive_reason = reason
        self.status.release_history.insert(0, release)

    def rollback(self) -> Rollback | None:
        status, spec_release = self.status, self.ve.spec.release
        pending = self.pending_condition
        if (
            self.kept is None
            or pending is None
            or pending.status is not _FALSE
            or not status.pending_release_failed
            or same_release(status.active_release, spec_release)
        ):
            return None
        active = status.active_release
        return Rollback(release=Release(apps=dict(active.apps)) if active is not None else None)

    def no_release(self) -> None:
        self.condition(
            ConditionType.ACTIVE_RELEASE_AVAILABLE,
            _FALSE,
            ConditionReason.NO_RELEASE,
            MSG_NO_RELEASE,
        )
        reason, message = self.kept or (ConditionReason.NO_RELEASE, MSG_NO_RELEASE)
        self.condition(ConditionType.RELEASE_PENDING, _FALSE, reason, message)
        status = self.status
        for leaving in (status.active_release, status.pending_release):
            if leaving is not None:
                self.archive(leaving, ArchiveReason.SUPERSEDED)
        status.active_release = status.pending_release = None

    def choose_pending(self, requested: Release) -> None:
        status = self.status
        pending = status.pending_release
        if same_release(status.active_release, requested):
            if pending is not None:
                self.archive(pending, ArchiveReason.SUPERSEDED)
            status.pending_release = None
        elif not same_release(pending, requested):
            if pending is not None:
                self.archive(pending, ArchiveReason.SUPERSEDED)
            status.pending_release = ReleaseStatus(
                id=self.inputs.new_id(), apps=dict(requested.apps), request_time=self.now
            )

    def evaluate_pending(self) -> tuple[ReleaseManifest | None, float | None]:
        """Activate, expire or keep the pending release; the manifest and the requeue time."""
        status, inputs, now = self.status, self.inputs, self.now
        pending = status.pending_release
        if pending is None:
            reason, message = self.kept or (
                ConditionReason.RELEASE_ACTIVATED,
                MSG_RELEASE_ACTIVATED,
            )
            self.condition(ConditionType.RELEASE_PENDING, _FALSE, reason, message)
            return None, None
        data = _live_data(inputs)
        others = [o for o in inputs.others if o.virtual_environment != self.ve.metadata.name]
        problems = app_problems(self.check(pending), data=data, adapters=dict(inputs.adapters))
        problems += conflict_problems(
            _routes(inputs, pending, data), sorted(others, key=ActiveRoutes.order)
        )
        pending.problems = _observed(problems, pending.problems, now)
        if not problems and inputs.environment is not None:
            return self.activate(pending, data, inputs.environment), None
        waited = (now - _utc(pending.request_time or now)).total_seconds()
        remaining = self.policy.activation_deadline_seconds - waited
        if remaining <= 0:
            self.archive(pending, ArchiveReason.PENDING_DEADLINE_EXCEEDED)
            status.pending_release = None
            status.pending_release_failed = True
            self.condition(
                ConditionType.RELEASE_PENDING,
                _FALSE,
                ConditionReason.PENDING_DEADLINE_EXCEEDED,
                MSG_DEADLINE_EXCEEDED,
            )
            return None, None
        self.condition(
            ConditionType.RELEASE_PENDING,
            _TRUE,
            ConditionReason.PROBLEMS_FOUND,
            MSG_PENDING_PROBLEMS,
        )
        return None, remaining + _REQUEUE_SLACK

    def activate(
        self, pending: ReleaseStatus, data: Data, environment: Environment
    ) -> ReleaseManifest | None:
        status = self.status
        manifest = None
        if status.active_release is not None:
            self.archive(status.active_release, ArchiveReason.SUPERSEDED)
        pending.activation_time = self.now
        if self.policy.type is ReleasePolicyType.STABLE:
            manifest = build_manifest(
                ve=self.ve,
                environment=environment,
                deployments=_deployments(self.inputs, pending),
                adapters=self.inputs.adapters,
                data=data,
                release_id=pending.id,
                now=self.now,
            )
            pending.release_manifest = manifest.metadata.name
        status.active_release, status.pending_release = pending, None
        self.condition(
            ConditionType.RELEASE_PENDING,
            _FALSE,
            ConditionReason.RELEASE_ACTIVATED,
            MSG_RELEASE_ACTIVATED,
        )
        return manifest

    def evaluate_active(self, manifests: Mapping[str, ReleaseManifest]) -> None:
        """The active release's problems and ``ActiveReleaseAvailable``."""
        active = self.status.active_release
        if active is None:
            self.condition(
                ConditionType.ACTIVE_RELEASE_AVAILABLE,
                _FALSE,
                ConditionReason.RELEASE_PENDING,
                MSG_ACTIVE_RELEASE_PENDING,
            )
            return
        inputs, ve = self.inputs, self.ve
        problems: list[Problem] = []
        data = _live_data(inputs)
        adapters: dict[str, AnyHTTPAdapter] = dict(inputs.adapters)
        if active.release_manifest:
            manifest = manifests.get(active.release_manifest)
            if manifest is None:
                problems.append(manifest_not_found(ve, active.release_manifest, active.id))
            else:
                data = manifest.data
                adapters = {a.metadata.name: a for a in manifest.spec.adapters.http}
        mine = ActiveRoutes(
            virtual_environment=ve.metadata.name, activation_time=active.activation_time, routes=()
        ).order()
        earlier = [
            o
            for o in inputs.others
            if o.virtual_environment != ve.metadata.name and o.order() < mine
        ]
        problems += app_problems(self.check(active), data=data, adapters=adapters)
        problems += conflict_problems(
            _routes(inputs, active, data), sorted(earlier, key=ActiveRoutes.order)
        )
        active.problems = _observed(problems, active.problems, self.now)
        if not problems and inputs.environment is not None:
            self.condition(
                ConditionType.ACTIVE_RELEASE_AVAILABLE,
                _TRUE,
                ConditionReason.CONTEXT_AVAILABLE,
                MSG_ACTIVE_AVAILABLE,
            )
        else:
            self.condition(
                ConditionType.ACTIVE_RELEASE_AVAILABLE,
                _FALSE,
                ConditionReason.PROBLEMS_FOUND,
                MSG_ACTIVE_PROBLEMS,
            )

    def environment_missing(self) -> None:
        message = f"Environment '{self.ve.spec.environment}' not found."
        for kind, value in (
            (ConditionType.RELEASE_PENDING, _TRUE),
            (ConditionType.ACTIVE_RELEASE_AVAILABLE, _FALSE),
        ):
            current = find_condition(self.status.conditions, kind)
            if current is not None and current.status is value:
                self.condition(kind, value, ConditionReason.ENVIRONMENT_NOT_FOUND, message)
        for release in (self.status.pending_release, self.status.active_release):
            if release is not None:
                release.problems = []

    def check(self, release: ReleaseStatus) -> ReleaseCheck:
        return ReleaseCheck(
            ve=self.ve,
            apps=release.apps,
            deployments=self.inputs.app_deployments,
            version_required=self.policy.type is ReleasePolicyType.STABLE,
        )

    def trim_history(self) -> None:
        limits, now = self.policy.history_limits, self.now
        history = sorted(
            self.status.release_history,
            key=lambda entry: _utc(entry.archive_time or now),
            reverse=True,  # stable: entries archived together keep their order
        )[: limits.count]
        if limits.age_days > 0:
            oldest = now - timedelta(days=limits.age_days)
            history = [entry for entry in history if _utc(entry.archive_time or now) >= oldest]
        self.status.release_history = history

    def unused_manifests(self) -> tuple[str, ...]:
        status, name = self.status, self.ve.metadata.name
        referenced = {entry.release_manifest for entry in status.release_history}
        if status.active_release is not None:
            referenced.add(status.active_release.release_manifest)
        return tuple(
            sorted(
                manifest
                for manifest, candidate in self.inputs.manifests.items()
                if _belongs_to(candidate, name) and manifest not in referenced
            )
        )


def _live_data(inputs: ReleaseInputs) -> Data:
    env = inputs.environment
    return merge_data(env.data if env is not None else Data(), inputs.ve.data)


def _deployments(inputs: ReleaseInputs, release: ReleaseStatus) -> dict[str, AppDeployment]:
    """App name -> the released AppDeployment, for the apps whose deployment exists."""
    found = {
        app: inputs.app_deployments.get(entry.app_deployment) for app, entry in release.apps.items()
    }
    return {app: deployment for app, deployment in found.items() if deployment is not None}


def _routes(inputs: ReleaseInputs, release: ReleaseStatus, data: Data) -> list[ReleasedRoute]:
    return released_routes(inputs.ve.metadata.name, _deployments(inputs, release), data.vars)


def _observed(
    problems: Sequence[Problem], before: Sequence[ObservedProblem], now: datetime
) -> list[ObservedProblem]:
    """``problems`` with the time each was first seen (kept from ``before`` if seen there)."""
    observed: list[ObservedProblem] = []
    for problem in problems:
        seen = next(
            (
                old.observed_time
                for old in before
                if (old.type, old.message, old.causes)
                == (problem.type, problem.message, problem.causes)
            ),
            None,
        )
        observed.append(
            ObservedProblem(
                type=problem.type,
                message=problem.message,
                causes=list(problem.causes),
                observed_time=seen or now,
            )
        )
    return observed


def _belongs_to(manifest: ReleaseManifest, ve: str) -> bool:
    label = manifest.metadata.labels.get(LABEL_VIRTUAL_ENVIRONMENT)
    return (label or manifest.spec.virtual_environment.metadata.name) == ve


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
