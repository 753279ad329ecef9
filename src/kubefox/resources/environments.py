"""``Environment`` and ``VirtualEnvironment``: the data and release state apps run in.

An Environment is a shared bag of vars and secrets plus the default release
policy; a VirtualEnvironment points at one, overrides some of its data and
policy, and carries the releases: ``spec.release`` is what the user asked for
and ``status`` records the active, pending and archived releases. There is no
``Release`` kind, exactly as upstream since late 2023.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Literal

from pydantic import Field

from kubefox.resources.conditions import Condition
from kubefox.resources.data import Data, DataDetails
from kubefox.resources.meta import API_VERSION, DNSLabel, KubeFoxModel, ObjectMeta
from kubefox.resources.policy import ReleasePolicy, ReleasePolicyOverride
from kubefox.resources.problems import ObservedProblem


class EnvironmentSpec(KubeFoxModel):
    """What an Environment decides for its VirtualEnvironments: the release policy."""

    release_policy: ReleasePolicy = Field(default_factory=ReleasePolicy)


class Environment(KubeFoxModel):
    """Shared vars, secrets and release policy (cluster-scoped upstream)."""

    api_version: Literal["kubefox.xigxog.io/v1alpha1"] = API_VERSION
    kind: Literal["Environment"] = "Environment"
    metadata: ObjectMeta
    spec: EnvironmentSpec = Field(default_factory=EnvironmentSpec)
    data: Data = Field(default_factory=Data)
    details: DataDetails | None = None


class ReleaseApp(KubeFoxModel):
    """The AppDeployment released for one app, and the version it must have."""

    app_deployment: DNSLabel
    version: str | None = None


class Release(KubeFoxModel):
    """A set of apps released together; one AppDeployment per app."""

    apps: dict[DNSLabel, ReleaseApp] = Field(min_length=1)


class ArchiveReason(enum.StrEnum):
    """Why a release left the active or pending slot."""

    PENDING_DEADLINE_EXCEEDED = "PendingDeadlineExceeded"
    ROLLED_BACK = "RolledBack"
    SUPERSEDED = "Superseded"


class ReleaseStatus(KubeFoxModel):
    """One release's life: requested, maybe activated, maybe archived, and its problems."""

    apps: dict[DNSLabel, ReleaseApp] = Field(default_factory=dict)
    id: str
    release_manifest: str | None = None
    request_time: datetime | None = None
    activation_time: datetime | None = None
    archive_time: datetime | None = None
    archive_reason: ArchiveReason | None = None
    problems: list[ObservedProblem] = Field(default_factory=list)


class VirtualEnvironmentSpec(KubeFoxModel):
    """The Environment to layer on, the requested release, and policy overrides."""

    environment: DNSLabel
    release: Release | None = None
    release_policy: ReleasePolicyOverride | None = None


class VirtualEnvironmentStatus(KubeFoxModel):
    """The release state machine's record for one VirtualEnvironment."""

    data_checksum: str | None = None
    pending_release_failed: bool = False
    active_release: ReleaseStatus | None = None
    pending_release: ReleaseStatus | None = None
    release_history: list[ReleaseStatus] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)


class VirtualEnvironment(KubeFoxModel):
    """A named sandbox over an Environment: its data overrides and its releases."""

    api_version: Literal["kubefox.xigxog.io/v1alpha1"] = API_VERSION
    kind: Literal["VirtualEnvironment"] = "VirtualEnvironment"
    metadata: ObjectMeta
    spec: VirtualEnvironmentSpec
    data: Data = Field(default_factory=Data)
    details: DataDetails | None = None
    status: VirtualEnvironmentStatus | None = None
