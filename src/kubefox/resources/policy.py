"""Release policy: how releases into a VirtualEnvironment are gated and remembered.

An Environment carries the policy with upstream's CRD defaults; a
VirtualEnvironment may override any single field. :func:`effective_policy`
resolves the two into the policy that applies, field by field (VE, then
Environment, then built-in default). As upstream, where Go's zero value meant
"unset", a value of ``0`` also means "use the default". For the history age
the default is 0 (unlimited), so a VirtualEnvironment cannot lift an
Environment's age limit: upstream's rule too.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from kubefox.resources.meta import KubeFoxModel

if TYPE_CHECKING:
    from kubefox.resources.environments import Environment, VirtualEnvironment

DEFAULT_ACTIVATION_DEADLINE_SECONDS = 300
DEFAULT_HISTORY_COUNT = 10
MIN_ACTIVATION_DEADLINE_SECONDS = 3


class ReleasePolicyType(enum.StrEnum):
    """``Stable`` needs a version and freezes data in a manifest; ``Testing`` follows live data."""

    STABLE = "Stable"
    TESTING = "Testing"


def _check_deadline(value: int) -> int:
    if value != 0 and value < MIN_ACTIVATION_DEADLINE_SECONDS:
        raise PydanticCustomError(
            "deadline_too_short",
            "must be at least {minimum} seconds (or 0 for the default)",
            {"minimum": MIN_ACTIVATION_DEADLINE_SECONDS},
        )
    return value


#: Seconds a pending release may wait for its problems to clear; 0 means the default.
ActivationDeadline = Annotated[int, AfterValidator(_check_deadline)]


class HistoryLimits(KubeFoxModel):
    """How many archived releases to keep (count) and for how long (ageDays, 0 = forever)."""

    count: int = Field(default=DEFAULT_HISTORY_COUNT, ge=0)
    age_days: int = Field(default=0, ge=0)


class ReleasePolicy(KubeFoxModel):
    """An Environment's release policy, with upstream's defaults filled in."""

    type: ReleasePolicyType = ReleasePolicyType.STABLE
    activation_deadline_seconds: ActivationDeadline = DEFAULT_ACTIVATION_DEADLINE_SECONDS
    history_limits: HistoryLimits = Field(default_factory=HistoryLimits)


class HistoryLimitsOverride(KubeFoxModel):
    """A VirtualEnvironment's override of some history limits; unset fields inherit."""

    count: int | None = Field(default=None, ge=0)
    age_days: int | None = Field(default=None, ge=0)


class ReleasePolicyOverride(KubeFoxModel):
    """A VirtualEnvironment's override of some policy fields; unset fields inherit."""

    type: ReleasePolicyType | None = None
    activation_deadline_seconds: ActivationDeadline | None = None
    history_limits: HistoryLimitsOverride | None = None


def _pick(*candidates: int | None, default: int) -> int:
    # The first candidate that is set and non-zero; 0 was Go's "unset".
    return next((c for c in candidates if c), default)


def effective_policy(
    env: Environment | None, ve: VirtualEnvironment | None = None
) -> ReleasePolicy:
    """The release policy that applies to ``ve``, resolved field by field.

    Each field comes from the VirtualEnvironment's override if set, else from
    the Environment, else from the built-in default (type ``Stable``, deadline
    300 s, history count 10, history age 0 = unlimited). A value of ``0``
    counts as unset.

    Args:
        env: the Environment the VirtualEnvironment points at, if it exists.
        ve: the VirtualEnvironment, if any.
    """
    base = env.spec.release_policy if env is not None else ReleasePolicy()
    override = (
        ve.spec.release_policy
        if ve is not None and ve.spec.release_policy is not None
        else ReleasePolicyOverride()
    )
    limits = override.history_limits or HistoryLimitsOverride()
    return ReleasePolicy(
        type=override.type or base.type,
        activation_deadline_seconds=_pick(
            override.activation_deadline_seconds,
            base.activation_deadline_seconds,
            default=DEFAULT_ACTIVATION_DEADLINE_SECONDS,
        ),
        history_limits=HistoryLimits(
            count=_pick(limits.count, base.history_limits.count, default=DEFAULT_HISTORY_COUNT),
            age_days=_pick(limits.age_days, base.history_limits.age_days, default=0),
        ),
    )
