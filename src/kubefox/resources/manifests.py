"""``ReleaseManifest``: a frozen snapshot of everything a Stable release depends on.

The operator writes one when it activates a release under a ``Stable`` policy:
the Environment, the VirtualEnvironment, every released AppDeployment and
every HTTPAdapter they depend on, each pinned by an :class:`ObjectRef`
(uid, resourceVersion, generation), plus the merged data. Released traffic is
then served from the manifest, so later edits do not change a release.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kubefox.resources.adapters import HTTPAdapterSpec
from kubefox.resources.data import Data, DataDetails
from kubefox.resources.deployments import AppDeploymentDetails, AppDeploymentSpec
from kubefox.resources.environments import EnvironmentSpec, VirtualEnvironmentSpec
from kubefox.resources.meta import API_VERSION, Details, KubeFoxModel, ObjectMeta, ObjectRef


class ManifestEnvironment(KubeFoxModel):
    """The Environment as it was when the release was activated."""

    api_version: Literal["kubefox.xigxog.io/v1alpha1"] = API_VERSION
    kind: Literal["Environment"] = "Environment"
    metadata: ObjectRef
    spec: EnvironmentSpec = Field(default_factory=EnvironmentSpec)
    data: Data = Field(default_factory=Data)
    details: DataDetails | None = None


class ManifestVirtualEnvironment(KubeFoxModel):
    """The VirtualEnvironment as it was when the release was activated."""

    api_version: Literal["kubefox.xigxog.io/v1alpha1"] = API_VERSION
    kind: Literal["VirtualEnvironment"] = "VirtualEnvironment"
    metadata: ObjectRef
    spec: VirtualEnvironmentSpec
    data: Data = Field(default_factory=Data)
    details: DataDetails | None = None


class ManifestAppDeployment(KubeFoxModel):
    """A released AppDeployment as it was when the release was activated."""

    api_version: Literal["kubefox.xigxog.io/v1alpha1"] = API_VERSION
    kind: Literal["AppDeployment"] = "AppDeployment"
    metadata: ObjectRef
    spec: AppDeploymentSpec
    details: AppDeploymentDetails | None = None


class ManifestHTTPAdapter(KubeFoxModel):
    """An HTTPAdapter a released component depends on, as it was at activation."""

    api_version: Literal["kubefox.xigxog.io/v1alpha1"] = API_VERSION
    kind: Literal["HTTPAdapter"] = "HTTPAdapter"
    metadata: ObjectRef
    spec: HTTPAdapterSpec
    details: Details | None = None


class ManifestAdapters(KubeFoxModel):
    """Adapters captured by a manifest, by adapter kind."""

    http: list[ManifestHTTPAdapter] = Field(default_factory=list)


class ReleaseManifestSpec(KubeFoxModel):
    """The snapshot itself."""

    release_id: str = Field(min_length=1)
    environment: ManifestEnvironment
    virtual_environment: ManifestVirtualEnvironment
    app_deployments: list[ManifestAppDeployment] = Field(min_length=1)
    adapters: ManifestAdapters = Field(default_factory=ManifestAdapters)


class ReleaseManifestStatus(KubeFoxModel):
    """Declared upstream but never written; accepted so read-back objects load."""


class ReleaseManifest(KubeFoxModel):
    """An immutable snapshot of a Stable release (written by the operator only)."""

    api_version: Literal["kubefox.xigxog.io/v1alpha1"] = API_VERSION
    kind: Literal["ReleaseManifest"] = "ReleaseManifest"
    metadata: ObjectMeta
    spec: ReleaseManifestSpec
    data: Data = Field(default_factory=Data)
    details: Details | None = None
    status: ReleaseManifestStatus | None = None
