"""The snapshot a Stable release is served from: building a ReleaseManifest, and its name.

When a release is activated under a ``Stable`` policy the operator freezes
everything it depends on (§1.8): the Environment, the VirtualEnvironment,
every released AppDeployment, every HTTPAdapter their components depend on
(each pinned by uid, resourceVersion and generation) and the merged data.
Released traffic is then routed and validated with the manifest, so later
edits to the Environment or the VirtualEnvironment change nothing until the
next release.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from kubefox.resources import (
    API_VERSION,
    AppDeployment,
    ComponentType,
    Data,
    Details,
    Environment,
    HTTPAdapter,
    ManifestAdapters,
    ManifestAppDeployment,
    ManifestEnvironment,
    ManifestHTTPAdapter,
    ManifestVirtualEnvironment,
    ObjectMeta,
    ObjectRef,
    OwnerReference,
    ReleaseManifest,
    ReleaseManifestSpec,
    VirtualEnvironment,
)
from kubefox.resources.names import MAX_NAME_LENGTH


def manifest_name(ve: str, resource_version: str | None, now: datetime) -> str:
    """``<ve>-<ve resourceVersion>-<UTC YYYYMMDD-HHMMSS>``, upstream's name.

    The VirtualEnvironment's name is cut so the whole stays a DNS label.
    """
    suffix = f"-{resource_version or 0}-{_utc(now).strftime('%Y%m%d-%H%M%S')}"
    return ve[: MAX_NAME_LENGTH - len(suffix)].rstrip("-") + suffix


def used_adapters(
    deployments: Mapping[str, AppDeployment], adapters: Mapping[str, HTTPAdapter]
) -> list[HTTPAdapter]:
    """Every existing HTTPAdapter a component of ``deployments`` depends on, by name."""
    names = {
        dependency
        for deployment in deployments.values()
        for component in deployment.spec.components.values()
        for dependency, declared in component.dependencies.items()
        if declared.type is ComponentType.HTTP_ADAPTER and dependency in adapters
    }
    return [adapters[name] for name in sorted(names)]


def build_manifest(
    *,
    ve: VirtualEnvironment,
    environment: Environment,
    deployments: Mapping[str, AppDeployment],
    adapters: Mapping[str, HTTPAdapter],
    data: Data,
    release_id: str,
    now: datetime,
) -> ReleaseManifest:
    """The ReleaseManifest of release ``release_id`` of ``ve``, activated at ``now``.

    Args:
        ve: the VirtualEnvironment, as read (its resourceVersion names the manifest).
        environment: its Environment.
        deployments: the released AppDeployments (app name -> deployment).
        adapters: the live HTTPAdapters, by name; the used ones are captured.
        data: the merged data the release is served with.
        release_id: the id of the release being activated.
        now: the activation time.
    """
    name = manifest_name(ve.metadata.name, ve.metadata.resource_version, now)
    return ReleaseManifest(
        metadata=ObjectMeta(
            name=name,
            namespace=ve.metadata.namespace,
            owner_references=[
                OwnerReference(
                    api_version=API_VERSION,
                    kind="VirtualEnvironment",
                    name=ve.metadata.name,
                    uid=ve.metadata.uid or "",
                )
            ],
        ),
        spec=ReleaseManifestSpec(
            release_id=release_id,
            environment=ManifestEnvironment(
                metadata=_ref(environment.metadata),
                spec=environment.spec,
                data=environment.data,
                details=environment.details,
            ),
            virtual_environment=ManifestVirtualEnvironment(
                metadata=_ref(ve.metadata),
                spec=ve.spec,
                data=ve.data,
                details=ve.details,
            ),
            app_deployments=[
                ManifestAppDeployment(
                    metadata=_ref(deployment.metadata),
                    spec=deployment.spec,
                    details=deployment.details,
                )
                for _, deployment in sorted(deployments.items())
            ],
            adapters=ManifestAdapters(
                http=[
                    ManifestHTTPAdapter(
                        metadata=_ref(adapter.metadata),
                        spec=adapter.spec,
                        details=adapter.details,
                    )
                    for adapter in used_adapters(deployments, adapters)
                ]
            ),
        ),
        data=data,
        details=(
            Details(title=ve.details.title, description=ve.details.description)
            if ve.details is not None
            else None
        ),
    )


def _ref(meta: ObjectMeta) -> ObjectRef:
    return ObjectRef(
        namespace=meta.namespace,
        name=meta.name,
        uid=meta.uid or "",
        resource_version=meta.resource_version or "0",
        generation=meta.generation or 0,
    )


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
