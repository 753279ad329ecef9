"""Why a release cannot be (or stay) active: the problems of §1.11, upstream's messages.

For each released app, in app name order: the AppDeployment must exist
(``AppDeploymentNotFound``), validate against the release's data and adapters
(§1.10: ``VarNotFound``, ``DependencyNotFound`` ...), have every component
available (``AppDeploymentFailed``), carry a version when the policy is
``Stable`` (``PolicyViolation``) and the version the release asks for
(``VersionConflict``). Then every route it serves must not be served already
by an earlier active release (``RouteConflict``, which upstream never emits).

*Decision:* a deployment counts as available only when its ``Available``
condition is ``True`` at its current generation. Upstream only objects to an
explicit ``False``, so a release of a deployment the operator has not looked
at yet activates at once, before anything runs; the issue asks for activation
"once every component of every released AppDeployment is available".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from kubefox.resources import (
    AppDeployment,
    Condition,
    ConditionReason,
    ConditionStatus,
    ConditionType,
    Data,
    Problem,
    ProblemSource,
    ProblemSourceKind,
    ProblemType,
    ReleaseApp,
    VirtualEnvironment,
    validate_app_deployment,
)
from kubefox.resources.release_routes import ActiveRoutes, ReleasedRoute, route_conflicts
from kubefox.resources.validation import AnyHTTPAdapter

_NOT_FAILED = frozenset({ConditionReason.COMPONENTS_DEPLOYED, ConditionReason.PROBLEMS_FOUND})


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseCheck:
    """Everything one release is checked against.

    Attributes:
        ve: the VirtualEnvironment the release belongs to.
        apps: the release's apps (app name -> AppDeployment and version).
        deployments: the AppDeployments that exist, by name.
        version_required: whether the effective policy is ``Stable``.
    """

    ve: VirtualEnvironment
    apps: Mapping[str, ReleaseApp]
    deployments: Mapping[str, AppDeployment]
    version_required: bool


def app_problems(
    check: ReleaseCheck,
    *,
    data: Data,
    adapters: Mapping[str, AnyHTTPAdapter],
) -> list[Problem]:
    """The per-app problems of a release, in app name order (see the module docstring).

    ``data`` and ``adapters`` are the manifest's for a release that has one,
    else the live ones.
    """
    ve = check.ve
    problems: list[Problem] = []
    for app_name in sorted(check.apps):
        app = check.apps[app_name]
        deployment = check.deployments.get(app.app_deployment)
        if deployment is None:
            problems.append(_not_found(ve, app_name, app))
            continue
        problems += validate_app_deployment(deployment, data, adapters=adapters)
        problems += _availability(deployment)
        version = app.version or ""
        if check.version_required and not version:
            problems.append(_policy_violation(ve, app_name))
        if version and version != (deployment.spec.version or ""):
            problems.append(_version_conflict(ve, app_name, version, deployment))
    return problems


def conflict_problems(
    routes: Sequence[ReleasedRoute], claimed: Sequence[ActiveRoutes]
) -> list[Problem]:
    """A ``RouteConflict`` for each route an earlier active release already serves."""
    problems: list[Problem] = []
    for route, owner in route_conflicts(routes, claimed):
        problems.append(
            Problem(
                type=ProblemType.ROUTE_CONFLICT,
                message=(
                    f'Route "{route.rule}" of Component "{route.component}" in AppDeployment '
                    f'"{route.app_deployment}" conflicts with the same Route of AppDeployment '
                    f'"{owner.app_deployment}" released to VirtualEnvironment '
                    f'"{owner.virtual_environment}".'
                ),
                causes=[
                    ProblemSource(
                        kind=ProblemSourceKind.APP_DEPLOYMENT,
                        name=route.app_deployment,
                        path=f"$.spec.components.{route.component}.routes[{route.index}]",
                        value=route.rule,
                    ),
                    ProblemSource(
                        kind=ProblemSourceKind.VIRTUAL_ENVIRONMENT,
                        name=owner.virtual_environment,
                        path=f"$.status.activeRelease.apps.{owner.app}",
                        value=owner.app_deployment,
                    ),
                ],
            )
        )
    return problems


def manifest_not_found(ve: VirtualEnvironment, manifest: str, release_id: str) -> Problem:
    """The active release's ReleaseManifest is gone.

    *Decision:* type ``ReleaseManifestNotFound``; upstream reports this as
    ``AppDeploymentNotFound`` (a bug), with the same message.
    """
    return Problem(
        type=ProblemType.RELEASE_MANIFEST_NOT_FOUND,
        message=f'ReleaseManifest "{manifest}" for active Release "{release_id}" not found.',
        causes=[
            _ve_cause(ve, "$.status.activeRelease.releaseManifest", manifest),
            ProblemSource(kind=ProblemSourceKind.RELEASE_MANIFEST, name=manifest, path="$"),
        ],
    )


def _ve_cause(ve: VirtualEnvironment, path: str, value: str | None) -> ProblemSource:
    return ProblemSource(
        kind=ProblemSourceKind.VIRTUAL_ENVIRONMENT,
        name=ve.metadata.name,
        observed_generation=ve.metadata.generation or 0,
        path=path,
        value=value,
    )


def _deployment_cause(deployment: AppDeployment, path: str, value: str | None) -> ProblemSource:
    return ProblemSource(
        kind=ProblemSourceKind.APP_DEPLOYMENT,
        name=deployment.metadata.name,
        observed_generation=deployment.metadata.generation or 0,
        path=path,
        value=value,
    )


def _not_found(ve: VirtualEnvironment, app_name: str, app: ReleaseApp) -> Problem:
    return Problem(
        type=ProblemType.APP_DEPLOYMENT_NOT_FOUND,
        message=f'AppDeployment "{app.app_deployment}" for App "{app_name}" not found.',
        causes=[
            _ve_cause(ve, f"$.spec.release.apps.{app_name}.appDeployment", app.app_deployment),
            ProblemSource(kind=ProblemSourceKind.APP_DEPLOYMENT, name=app.app_deployment, path="$"),
        ],
    )


def _current(deployment: AppDeployment, kind: ConditionType) -> Condition | None:
    """The condition of ``kind``, if observed at the deployment's current generation."""
    status = deployment.status
    if status is None:
        return None
    generation = deployment.metadata.generation or 0
    for condition in status.conditions:
        if condition.type == kind and condition.observed_generation in (None, generation):
            return condition
    return None


def _availability(deployment: AppDeployment) -> list[Problem]:
    problems: list[Problem] = []
    name = deployment.metadata.name
    available = _current(deployment, ConditionType.AVAILABLE)
    if available is None or (
        available.status is not ConditionStatus.TRUE
        and available.reason != ConditionReason.PROBLEMS_FOUND
    ):
        value = "Unknown," if available is None else f"{available.status},{available.reason}"
        problems.append(
            Problem(
                type=ProblemType.APP_DEPLOYMENT_FAILED,
                message=(
                    f'One or more Component Deployments of AppDeployment "{name}" are unavailable.'
                ),
                causes=[
                    _deployment_cause(
                        deployment,
                        "$.status.conditions[?(@.type=='Available')].status,reason",
                        value,
                    )
                ],
            )
        )
    progressing = _current(deployment, ConditionType.PROGRESSING)
    if (
        progressing is not None
        and progressing.status is ConditionStatus.FALSE
        and progressing.reason not in _NOT_FAILED
    ):
        problems.append(
            Problem(
                type=ProblemType.APP_DEPLOYMENT_FAILED,
                message=f'One or more Component Deployments of AppDeployment "{name}" failed.',
                causes=[
                    _deployment_cause(
                        deployment,
                        "$.status.conditions[?(@.type=='Progressing')].status,reason",
                        f"{progressing.status},{progressing.reason}",
                    )
                ],
            )
        )
    return problems


def _policy_violation(ve: VirtualEnvironment, app_name: str) -> Problem:
    return Problem(
        type=ProblemType.POLICY_VIOLATION,
        message=f'Version is required but not set for App "{app_name}".',
        causes=[
            _ve_cause(ve, "$.spec.releasePolicy.versionRequired", "Stable"),
            _ve_cause(ve, f"$.spec.release.apps.{app_name}.version", ""),
        ],
    )


def _version_conflict(
    ve: VirtualEnvironment, app_name: str, version: str, deployment: AppDeployment
) -> Problem:
    actual = deployment.spec.version or ""
    return Problem(
        type=ProblemType.VERSION_CONFLICT,
        message=(
            f'AppDeployment "{deployment.metadata.name}" version "{actual}" does not match '
            f'App "{app_name}" version "{version}".'
        ),
        causes=[
            _ve_cause(ve, f"$.spec.release.apps.{app_name}.version", version),
            _deployment_cause(deployment, "$.spec.version", actual),
        ],
    )
