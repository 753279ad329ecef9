"""AppDeployment status from what runs: deployment distillation, conditions and problems.

Pure functions, so the rules can be read and tested without processes or
NATS. The reconcile loop (:mod:`kubefox.operator.reconcile`) gathers an
:class:`Observation` per instance set and calls these.

*Deployment distillation* (upstream ``ComponentManager.ReconcileApps``): one
instance set per distinct (app, component, hash) across **all**
AppDeployments, so deployments that share a component at the same hash share
its processes, and only changed components get new ones.

Conditions keep upstream's types, reasons and messages verbatim (reference
§1.12) because users and tools match on them; upstream reads them from
Kubernetes Deployments, here they come from the scheduler and the
registrations:

* a component is *available* when at least one live instance registered
  with its hash;
* it has *failed* when its artifact is missing or unusable, or when its
  process keeps exiting (``failed_after`` quick restarts in a row) without
  any instance registering;
* otherwise it is *progressing*.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from kubefox.operator.scheduler import InstanceState, instance_key
from kubefox.resources import (
    AppDeployment,
    AppDeploymentStatus,
    ComponentType,
    Condition,
    ConditionReason,
    ConditionStatus,
    ConditionType,
    HTTPAdapter,
    ObservedProblem,
    Problem,
    ProblemSource,
    ProblemSourceKind,
    ProblemType,
    validate_app_deployment,
)

MSG_COMPONENTS_AVAILABLE = "Component Deployments have minimum required Pods available."
MSG_COMPONENT_UNAVAILABLE = (
    "One or more Component Deployments is unavailable, see `status.problems` for details."
)
MSG_PROBLEMS_FOUND = "One or more problems found, see `status.problems` for details."
MSG_COMPONENTS_DEPLOYED = "Component Deployments completed successfully."
MSG_COMPONENT_DEPLOYMENT_FAILED = (
    "One or more Component Deployments has failed, see `status.problems` for details."
)
MSG_COMPONENT_DEPLOYMENT_PROGRESSING = "One or more Component Deployments is progressing."

_TRUE, _FALSE = ConditionStatus.TRUE, ConditionStatus.FALSE

MSG_DEPLOYMENT_NOT_FOUND = "Component Deployment not found."
MSG_DEPLOYMENT_UNAVAILABLE = "Component Deployment does not have minimum availability."


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ComponentRef:
    """One component of one app at one hash: what an instance set runs."""

    app: str
    component: str
    hash: str

    @property
    def key(self) -> str:
        """The instance set's key (:func:`~kubefox.operator.scheduler.instance_key`)."""
        return instance_key(self.app, self.component, self.hash)


def referenced_components(appdeps: Iterable[AppDeployment]) -> dict[str, ComponentRef]:
    """Deployment distillation: every distinct component the deployments run, by key.

    Only ``KubeFox`` components run as instances; adapters are platform processes.
    """
    found: dict[str, ComponentRef] = {}
    for appdep in appdeps:
        for name, component in appdep.spec.components.items():
            if component.type is not ComponentType.KUBEFOX:
                continue
            ref = ComponentRef(app=appdep.spec.app_name, component=name, hash=component.hash)
            found.setdefault(ref.key, ref)
    return dict(sorted(found.items()))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """What the operator knows about one instance set when it computes statuses.

    Attributes:
        registered: Live registrations of instances at this hash.
        state: What the scheduler reports, ``None`` if it runs nothing for it.
        missing_artifact: Name of the artifact that does not exist, if so.
        start_error: Why the scheduler could not start it, if so.
    """

    registered: int = 0
    state: InstanceState | None = None
    missing_artifact: str | None = None
    start_error: str | None = None


def desired_status(
    appdep: AppDeployment,
    observations: Mapping[str, Observation],
    *,
    adapters: Mapping[str, HTTPAdapter] | None = None,
    failed_after: int = 3,
) -> tuple[list[Condition], list[Problem]]:
    """The ``Available`` and ``Progressing`` conditions of ``appdep`` and their problems.

    Conditions carry ``observedGeneration`` but no ``lastTransitionTime``
    (see :func:`merge_status`). Dependency problems (validation without data,
    as upstream) win over everything: both conditions are then ``False`` with
    reason ``ProblemsFound``.
    """
    generation = appdep.metadata.generation or 0
    problems = validate_app_deployment(appdep, None, adapters=adapters)
    if problems:
        return [
            _condition(ConditionType.AVAILABLE, _FALSE, ConditionReason.PROBLEMS_FOUND, generation),
            _condition(
                ConditionType.PROGRESSING, _FALSE, ConditionReason.PROBLEMS_FOUND, generation
            ),
        ], problems

    unavailable: list[Problem] = []
    failures: list[Problem] = []
    failed = progressing = False
    for name in sorted(appdep.spec.components):
        component = appdep.spec.components[name]
        if component.type is not ComponentType.KUBEFOX:
            continue
        key = instance_key(appdep.spec.app_name, name, component.hash)
        seen = observations.get(key, Observation())
        if seen.registered > 0:
            continue
        component_cause = ProblemSource(
            kind=ProblemSourceKind.COMPONENT,
            name=name,
            observed_generation=generation,
            path=f"$.spec.components.{name}",
        )
        deployment_cause = ProblemSource(kind=ProblemSourceKind.DEPLOYMENT, name=key, path="$")
        if seen.missing_artifact is not None or (seen.state is None and seen.start_error is None):
            message = (
                f'Component artifact "{seen.missing_artifact}" not found.'
                if seen.missing_artifact is not None
                else MSG_DEPLOYMENT_NOT_FOUND
            )
            unavailable.append(
                Problem(
                    type=ProblemType.DEPLOYMENT_NOT_FOUND,
                    message=message,
                    causes=[component_cause],
                )
            )
            failed = True
            continue
        unavailable.append(
            Problem(
                type=ProblemType.DEPLOYMENT_UNAVAILABLE,
                message=MSG_DEPLOYMENT_UNAVAILABLE,
                causes=[deployment_cause, component_cause],
            )
        )
        reason = _failure(seen, failed_after)
        if reason is None:
            progressing = True
            continue
        failed = True
        failures.append(
            Problem(
                type=ProblemType.DEPLOYMENT_FAILED,
                message=reason,
                causes=[deployment_cause, component_cause],
            )
        )

    if unavailable:
        available = (_FALSE, ConditionReason.COMPONENT_UNAVAILABLE)
    else:
        available = (_TRUE, ConditionReason.COMPONENTS_AVAILABLE)
    if failed:
        progress = (_FALSE, ConditionReason.COMPONENT_DEPLOYMENT_FAILED)
    elif progressing:
        progress = (_TRUE, ConditionReason.COMPONENT_DEPLOYMENT_PROGRESSING)
    else:
        progress = (_FALSE, ConditionReason.COMPONENTS_DEPLOYED)
    return [
        _condition(ConditionType.AVAILABLE, *available, generation),
        _condition(ConditionType.PROGRESSING, *progress, generation),
    ], unavailable + failures


def _failure(seen: Observation, failed_after: int) -> str | None:
    """Why a component that nothing serves counts as failed, or None if it may yet come up."""
    if seen.start_error is not None:
        return f"Component Deployment could not be started: {seen.start_error}."
    state = seen.state
    if state is not None and state.failures >= failed_after:
        code = "none" if state.last_exit_code is None else str(state.last_exit_code)
        return (
            f"Component Deployment has failed: its process exited {state.failures} times in a "
            f"row without registering, last exit code {code}."
        )
    return None


_MESSAGES = {
    ConditionReason.COMPONENTS_AVAILABLE: MSG_COMPONENTS_AVAILABLE,
    ConditionReason.COMPONENT_UNAVAILABLE: MSG_COMPONENT_UNAVAILABLE,
    ConditionReason.PROBLEMS_FOUND: MSG_PROBLEMS_FOUND,
    ConditionReason.COMPONENTS_DEPLOYED: MSG_COMPONENTS_DEPLOYED,
    ConditionReason.COMPONENT_DEPLOYMENT_FAILED: MSG_COMPONENT_DEPLOYMENT_FAILED,
    ConditionReason.COMPONENT_DEPLOYMENT_PROGRESSING: MSG_COMPONENT_DEPLOYMENT_PROGRESSING,
}


def _condition(
    kind: ConditionType, status: ConditionStatus, reason: ConditionReason, generation: int
) -> Condition:
    return Condition(
        type=kind,
        status=status,
        reason=reason,
        message=_MESSAGES[reason],
        observed_generation=generation,
    )


def merge_status(
    current: AppDeploymentStatus | None,
    conditions: Sequence[Condition],
    problems: Sequence[Problem],
    *,
    now: datetime,
) -> AppDeploymentStatus:
    """The status to write: ``conditions`` and ``problems`` with their times settled.

    A condition whose status did not change keeps its ``lastTransitionTime``
    (Kubernetes convention, as upstream); a problem seen before keeps its
    ``observedTime``. Conditions of other types in ``current`` are kept.
    """
    old_conditions = {c.type: c for c in (current.conditions if current else [])}
    merged: list[Condition] = []
    for condition in conditions:
        old = old_conditions.get(condition.type)
        since = now
        if old is not None and old.status == condition.status and old.last_transition_time:
            since = old.last_transition_time
        merged.append(condition.model_copy(update={"last_transition_time": since}))
    ours = {c.type for c in conditions}
    merged += [c for c in (current.conditions if current else []) if c.type not in ours]
    old_problems = list(current.problems) if current else []
    observed: list[ObservedProblem] = []
    for problem in problems:
        match = next((old for old in old_problems if _same_problem(old, problem)), None)
        observed.append(
            ObservedProblem(
                type=problem.type,
                message=problem.message,
                causes=list(problem.causes),
                observed_time=match.observed_time if match and match.observed_time else now,
            )
        )
    return AppDeploymentStatus(conditions=merged, problems=observed)


def same_status(a: AppDeploymentStatus | None, b: AppDeploymentStatus | None) -> bool:
    """Whether two statuses say the same, ignoring ``lastTransitionTime`` and ``observedTime``."""
    return _comparable(a) == _comparable(b)


def _comparable(status: AppDeploymentStatus | None) -> tuple[object, ...]:
    if status is None:
        return ((), ())
    conditions = tuple(
        (c.type, c.status, c.reason, c.message, c.observed_generation) for c in status.conditions
    )
    problems = tuple((p.type, p.message, tuple(p.causes)) for p in status.problems)
    return (conditions, problems)


def _same_problem(a: Problem, b: Problem) -> bool:
    return a.type == b.type and a.message == b.message and list(a.causes) == list(b.causes)


def condition(status: AppDeploymentStatus | None, kind: ConditionType) -> Condition | None:
    """The condition of type ``kind`` in ``status``, if any."""
    if status is None:
        return None
    return next((c for c in status.conditions if c.type == kind), None)
