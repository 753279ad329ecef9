"""Problems: why an AppDeployment or release cannot serve in a given context.

A problem is data, not an exception: the operator stores problems in
statuses, the broker renders them into the body of an ``invalid`` error, and
``fox release`` prints them. Their types, messages and YAML form are
upstream's, because users read and grep them; :func:`problems_to_yaml` gives
the exact body shape upstream's broker sends (keys in alphabetical order).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import yaml
from pydantic import ConfigDict, Field

from kubefox.resources.meta import KubeFoxModel


class ProblemType(enum.StrEnum):
    """Every problem type upstream declares (some are never emitted there)."""

    ADAPTER_NOT_FOUND = "AdapterNotFound"
    APP_DEPLOYMENT_FAILED = "AppDeploymentFailed"
    APP_DEPLOYMENT_NOT_FOUND = "AppDeploymentNotFound"
    DEPENDENCY_INVALID = "DependencyInvalid"
    DEPENDENCY_NOT_FOUND = "DependencyNotFound"
    DEPLOYMENT_FAILED = "DeploymentFailed"
    DEPLOYMENT_NOT_FOUND = "DeploymentNotFound"
    DEPLOYMENT_UNAVAILABLE = "DeploymentUnavailable"
    PARSE_ERROR = "ParseError"
    POLICY_VIOLATION = "PolicyViolation"
    RELEASE_MANIFEST_FAILED = "ReleaseManifestFailed"
    RELEASE_MANIFEST_NOT_FOUND = "ReleaseManifestNotFound"
    RELEASE_MANIFEST_UNAVAILABLE = "ReleaseManifestUnavailable"
    ROUTE_CONFLICT = "RouteConflict"
    VAR_NOT_FOUND = "VarNotFound"
    VAR_WRONG_TYPE = "VarWrongType"
    VERSION_CONFLICT = "VersionConflict"


class ProblemSourceKind(enum.StrEnum):
    """What kind of object a problem's cause points into."""

    APP_DEPLOYMENT = "AppDeployment"
    COMPONENT = "Component"
    DEPLOYMENT = "Deployment"
    HTTP_ADAPTER = "HTTPAdapter"
    RELEASE_MANIFEST = "ReleaseManifest"
    VIRTUAL_ENVIRONMENT = "VirtualEnvironment"


class ProblemSource(KubeFoxModel):
    """One place that causes a problem: an object, its generation and a JSON path in it."""

    model_config = ConfigDict(frozen=True)

    kind: ProblemSourceKind
    name: str
    observed_generation: int = Field(default=0, ge=0)
    path: str
    value: str | None = None


class Problem(KubeFoxModel):
    """A problem of a given type, its upstream message, and the places that cause it."""

    model_config = ConfigDict(frozen=True)

    type: ProblemType
    message: str
    causes: list[ProblemSource] = Field(default_factory=list)


class ObservedProblem(Problem):
    """A problem as a status records it: with the time it was observed."""

    observed_time: datetime | None = None


def _cause_document(cause: ProblemSource) -> dict[str, Any]:
    document: dict[str, Any] = {
        "kind": str(cause.kind),
        "name": cause.name,
        "observedGeneration": cause.observed_generation,
        "path": cause.path,
    }
    if cause.value is not None:
        document["value"] = cause.value
    return document


def problems_to_yaml(problems: Iterable[Problem]) -> str:
    """Problems as the YAML list upstream's broker puts in an ``invalid`` body.

    One item per problem with keys ``causes``, ``message``, ``type`` (in that,
    alphabetical, order); each cause has ``kind``, ``name``,
    ``observedGeneration``, ``path`` and, if set, ``value``. No observed time.
    An empty iterable gives ``[]`` and a newline.
    """
    documents = [
        {
            "causes": [_cause_document(cause) for cause in problem.causes],
            "message": problem.message,
            "type": str(problem.type),
        }
        for problem in problems
    ]
    return yaml.safe_dump(
        documents, sort_keys=True, default_flow_style=False, allow_unicode=True, width=1 << 16
    )
