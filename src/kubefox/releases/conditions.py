"""The VirtualEnvironment's release conditions: upstream's messages and how they change.

``ActiveReleaseAvailable`` and ``ReleasePending`` carry upstream's reasons and
messages verbatim (§1.12), because users and tools match on them. A condition
keeps its ``lastTransitionTime`` unless its status changes (the Kubernetes
convention), so a pass that changes nothing writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from kubefox.resources import Condition, ConditionStatus, ConditionType

MSG_ACTIVE_AVAILABLE = (
    "Release AppDeployments are available, Routes and Adapters are valid and compatible "
    "with the VirtualEnv."
)
MSG_NO_RELEASE = "No Release set for VirtualEnvironment."
MSG_ACTIVE_RELEASE_PENDING = "No active Release, Release is pending activation."
MSG_ACTIVE_PROBLEMS = (
    "One or more problems found with the active Release causing it to be unavailable, "
    "see `status.activeRelease` for details."
)
MSG_RELEASE_ACTIVATED = "Release was activated."
MSG_DEADLINE_EXCEEDED = "Deadline exceeded before pending Release could be activated."
MSG_PENDING_PROBLEMS = (
    "One or more problems found with Release preventing it from being activated, "
    "see `status.pendingRelease` for details."
)


def find_condition(conditions: Sequence[Condition], kind: ConditionType) -> Condition | None:
    """The condition of type ``kind``, if there is one."""
    return next((c for c in conditions if c.type == kind), None)


def set_condition(
    conditions: Sequence[Condition],
    *,
    kind: ConditionType,
    status: ConditionStatus,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
) -> list[Condition]:
    """``conditions`` with the one of type ``kind`` set; others kept, in place.

    ``lastTransitionTime`` is ``now`` when the status changes (or the condition
    is new), else the old one.
    """
    old = find_condition(conditions, kind)
    since = now
    if old is not None and old.status is status and old.last_transition_time is not None:
        since = old.last_transition_time
    new = Condition(
        type=kind,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=since,
        observed_generation=generation,
    )
    if old is None:
        return [*conditions, new]
    return [new if c.type == kind else c for c in conditions]
