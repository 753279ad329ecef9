"""Status conditions: the Kubernetes ``Condition`` shape and upstream's exact values.

The types and reasons are upstream KubeFox's strings, kept verbatim because
users and tools (``kubectl wait --for=condition=Available``) match on them.
``type`` and ``reason`` stay plain strings on the model so that a status
written by a newer peer still loads; the enums are for writers.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from kubefox.resources.meta import KubeFoxModel


class ConditionStatus(enum.StrEnum):
    """Kubernetes condition status; a string, never a boolean."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class ConditionType(enum.StrEnum):
    """Condition types set on Platform, AppDeployment and VirtualEnvironment."""

    AVAILABLE = "Available"
    PROGRESSING = "Progressing"
    ACTIVE_RELEASE_AVAILABLE = "ActiveReleaseAvailable"
    RELEASE_PENDING = "ReleasePending"


class ConditionReason(enum.StrEnum):
    """Every condition reason upstream sets."""

    # Platform
    PLATFORM_COMPONENTS_AVAILABLE = "PlatformComponentsAvailable"
    NATS_UNAVAILABLE = "NATSUnavailable"
    BROKER_UNAVAILABLE = "BrokerUnavailable"
    HTTPSRV_UNAVAILABLE = "HTTPSrvUnavailable"
    RECONCILE_FAILED = "ReconcileFailed"
    # AppDeployment
    COMPONENTS_AVAILABLE = "ComponentsAvailable"
    COMPONENT_UNAVAILABLE = "ComponentUnavailable"
    PROBLEMS_FOUND = "ProblemsFound"
    COMPONENTS_DEPLOYED = "ComponentsDeployed"
    COMPONENT_DEPLOYMENT_FAILED = "ComponentDeploymentFailed"
    COMPONENT_DEPLOYMENT_PROGRESSING = "ComponentDeploymentProgressing"
    # VirtualEnvironment
    CONTEXT_AVAILABLE = "ContextAvailable"
    NO_RELEASE = "NoRelease"
    RELEASE_PENDING = "ReleasePending"
    ENVIRONMENT_NOT_FOUND = "EnvironmentNotFound"
    RELEASE_ACTIVATED = "ReleaseActivated"
    PENDING_DEADLINE_EXCEEDED = "PendingDeadlineExceeded"


def _status_from_yaml(value: Any) -> Any:
    # YAML 1.1 reads an unquoted True/False as a boolean; Kubernetes means the string.
    if isinstance(value, bool):
        return ConditionStatus.TRUE if value else ConditionStatus.FALSE
    return value


class Condition(KubeFoxModel):
    """One observation of a resource's state (``metav1.Condition``)."""

    type: str = Field(min_length=1)
    status: Annotated[ConditionStatus, BeforeValidator(_status_from_yaml)]
    reason: str = ""
    message: str = ""
    last_transition_time: datetime | None = None
    observed_generation: int | None = Field(default=None, ge=0)
