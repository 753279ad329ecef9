"""``fox publish``: turn the committed app into artifacts and an AppDeployment.

The steps, in an order chosen so that a failure leaves nothing half-written:

1. read the app at HEAD (:mod:`kubefox.publish.snapshot`), refusing
   uncommitted changes;
2. export every component's definition by running it, so a broken component
   fails the publish before anything is stored;
3. build the AppDeployment and, when it must not change (a version is given,
   or the existing one has a version), check it against what is stored: the
   same spec is "unchanged", another one a ``ConflictError``;
4. store each component's artifact unless one with that hash is there already
   (the hash names the contents, so "there" means "identical": upstream's
   "exists, skipping build");
5. write the AppDeployment last, so whoever sees it finds its artifacts.

An unversioned AppDeployment (``<app>-<branch>``) is updated in place on every
publish; a versioned one (``<app>-<version>``) is immutable, as upstream's
webhook makes it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kubefox.core.errors import ConflictError, InvalidError
from kubefox.publish.definitions import export_definition
from kubefox.publish.packaging import package
from kubefox.publish.repo import GitRepo
from kubefox.publish.snapshot import Snapshot, read_snapshot
from kubefox.resources import (
    AppDeployment,
    ComponentDefinition,
    app_deployment_name,
    clean_name,
)
from kubefox.store.artifacts import ArtifactStore, artifact_name
from kubefox.store.typed import TypedStore

#: Receives one line per step worth telling the user about.
Progress = Callable[[str], None]


class PublishStatus(enum.StrEnum):
    """What happened to the AppDeployment."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ComponentResult:
    """One component: its hash, and whether this publish stored its artifact."""

    name: str
    hash: str
    stored: bool


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PublishResult:
    """The outcome of :func:`publish`."""

    name: str
    status: PublishStatus
    components: tuple[ComponentResult, ...]
    app_deployment: AppDeployment

    @property
    def created(self) -> bool:
        """Whether the AppDeployment is new."""
        return self.status is PublishStatus.CREATED

    @property
    def updated(self) -> bool:
        """Whether an existing AppDeployment was changed."""
        return self.status is PublishStatus.UPDATED

    @property
    def unchanged(self) -> bool:
        """Whether the stored AppDeployment already said exactly this."""
        return self.status is PublishStatus.UNCHANGED


async def publish(
    app_dir: Path,
    *,
    store: TypedStore,
    artifacts: ArtifactStore,
    version: str | None = None,
    name: str | None = None,
    progress: Progress | None = None,
) -> PublishResult:
    """Publish the app in (or above) ``app_dir`` as committed at HEAD.

    Args:
        app_dir: the app's directory (holding ``app.yaml``) or any directory
            below it, inside a git working tree.
        store: where the AppDeployment goes (its namespace is the store's).
        artifacts: where component artifacts go.
        version: makes the AppDeployment ``<app>-<version>`` and immutable.
        name: the AppDeployment's name instead of the derived one (cleaned).
        progress: called with one line per component and for the AppDeployment.

    Raises:
        InvalidError: no repository, no commit, uncommitted changes, a bad
            ``app.yaml``, no component, or a component whose export fails.
        ConflictError: a versioned AppDeployment of that name exists with
            another spec.
    """
    report = progress or _silent
    if version is not None and not version.strip():
        raise InvalidError("a version must not be empty")
    snapshot = await asyncio.to_thread(read_snapshot, app_dir)
    for skipped in snapshot.skipped:
        report(f"skipping {skipped}: no main.py")
    definitions = {
        component.name: await export_definition(
            component.name, component.files, hash=component.hash
        )
        for component in snapshot.components
    }
    deployment = build_app_deployment(snapshot, definitions, version=version, name=name)
    deployment_name = deployment.metadata.name
    existing = await _find(store, deployment_name)
    if existing is not None and _immutable(existing, version) and not _same(existing, deployment):
        raise _conflict(deployment_name)
    components = await _store_artifacts(snapshot, artifacts, report)
    status, written = await _write(store, deployment, existing, version=version)
    report(f'AppDeployment "{deployment_name}" {status}')
    return PublishResult(
        name=deployment_name, status=status, components=components, app_deployment=written
    )


def build_app_deployment(
    snapshot: Snapshot,
    definitions: Mapping[str, ComponentDefinition],
    *,
    version: str | None = None,
    name: str | None = None,
) -> AppDeployment:
    """The AppDeployment that publishing ``snapshot`` writes (without store metadata).

    Raises:
        InvalidError: the name cannot be made, or the result is not a valid
            AppDeployment.
    """
    app = snapshot.app
    tag = version if version in snapshot.tags else next(iter(snapshot.tags), None)
    deployment_name = deployment_name_for(
        app.name,
        version=version,
        branch=snapshot.branch,
        tag=tag,
        commit=snapshot.commit,
        name=name,
    )
    spec: dict[str, Any] = {
        "appName": app.name,
        "version": version,
        "commit": snapshot.commit,
        "commitTime": snapshot.commit_time,
        "branch": snapshot.branch,
        "tag": tag,
        "repoURL": snapshot.repo_url,
        "containerRegistry": app.container_registry,
        "components": dict(definitions),
    }
    document: dict[str, Any] = {
        "metadata": {"name": deployment_name},
        "spec": {key: value for key, value in spec.items() if value is not None},
    }
    if app.title or app.description:
        document["details"] = {"title": app.title, "description": app.description}
    try:
        return AppDeployment.model_validate(document)
    except ValidationError as exc:
        problems = [
            {"path": ".".join(str(step) for step in error["loc"]), "message": error["msg"]}
            for error in exc.errors(include_url=False)
        ]
        lines = "; ".join(f"{p['path']}: {p['message']}" for p in problems)
        raise InvalidError(
            f'cannot build AppDeployment "{deployment_name}": {lines}', problems=problems
        ) from exc


def deployment_name_for(
    app: str,
    *,
    version: str | None = None,
    branch: str | None = None,
    tag: str | None = None,
    commit: str,
    name: str | None = None,
) -> str:
    """``name`` if given, else ``<app>-<version|branch|tag|commit[:7]>``; always cleaned."""
    if name is not None:
        return clean_name(name)
    return app_deployment_name(app, version=version, branch=branch, tag=tag, commit=commit[:7])


def create_tag(app_dir: Path, version: str) -> str:
    """Tag HEAD of the repository holding ``app_dir`` with ``version`` (a lightweight tag).

    Run it before :func:`publish` so the AppDeployment records the tag. A tag
    already at HEAD is left alone. Returns the commit id tagged.

    Raises:
        InvalidError: no repository or commit, uncommitted changes, or
            ``version`` is no valid tag name.
        ConflictError: the tag exists on another commit.
    """
    repo = GitRepo.find(app_dir)
    commit = repo.head()
    repo.check_clean()
    if not repo.is_valid_tag_name(version):
        raise InvalidError(f'"{version}" is not a valid git tag name', version=version)
    tagged = repo.resolve(f"refs/tags/{version}")
    if tagged == commit:
        return commit
    if tagged is not None:
        raise ConflictError(
            f'tag "{version}" already exists on commit {tagged[:7]}, not on HEAD ({commit[:7]})',
            tag=version,
            commit=tagged,
        )
    repo.run("tag", version, commit)
    return commit


async def _store_artifacts(
    snapshot: Snapshot, artifacts: ArtifactStore, report: Progress
) -> tuple[ComponentResult, ...]:
    results: list[ComponentResult] = []
    for component in snapshot.components:
        key = artifact_name(snapshot.app.name, component.name, component.hash)
        stored = not await artifacts.exists(key)
        if stored:
            await artifacts.put(key, await asyncio.to_thread(package, component.files))
            report(f"{component.name}: {component.hash} stored")
        else:
            report(f"{component.name}: {component.hash} unchanged, skipping")
        results.append(ComponentResult(name=component.name, hash=component.hash, stored=stored))
    return tuple(results)


async def _write(
    store: TypedStore,
    deployment: AppDeployment,
    existing: AppDeployment | None,
    *,
    version: str | None,
) -> tuple[PublishStatus, AppDeployment]:
    if existing is not None and _same(existing, deployment):
        return PublishStatus.UNCHANGED, existing
    if existing is None and version is not None:
        try:
            return PublishStatus.CREATED, await store.create(deployment)
        except ConflictError:
            # Someone published the same version meanwhile; fine if it is ours.
            existing = await store.get(AppDeployment, deployment.metadata.name)
            if _same(existing, deployment):
                return PublishStatus.UNCHANGED, existing
            raise _conflict(deployment.metadata.name) from None
    written = await store.apply(deployment)
    return (PublishStatus.CREATED if existing is None else PublishStatus.UPDATED), written


async def _find(store: TypedStore, name: str) -> AppDeployment | None:
    try:
        return await store.get(AppDeployment, name)
    except LookupError:
        return None


def _immutable(existing: AppDeployment, version: str | None) -> bool:
    return version is not None or existing.spec.version is not None


def _same(existing: AppDeployment, new: AppDeployment) -> bool:
    def contents(deployment: AppDeployment) -> tuple[Any, Any]:
        spec = deployment.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
        details = (
            deployment.details.model_dump(mode="json", by_alias=True, exclude_none=True)
            if deployment.details is not None
            else None
        )
        return spec, details

    return contents(existing) == contents(new)


def _conflict(name: str) -> ConflictError:
    return ConflictError(
        f'AppDeployment "{name}" already exists with other contents; publish a new version',
        name=name,
    )


def _silent(_: str) -> None:
    pass
