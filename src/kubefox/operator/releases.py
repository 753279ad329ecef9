"""The operator's VirtualEnvironment controller: runs the release state machine and writes it.

Every change the operator's view sees (a VirtualEnvironment, an Environment,
an AppDeployment and its status, an HTTPAdapter, a ReleaseManifest) starts a
pass over every VirtualEnvironment; a pending release's deadline starts one
too. A pass gathers the inputs of :func:`~kubefox.releases.reconcile_release`
from the view, then writes what it decided through the
:class:`~kubefox.store.typed.TypedStore` (so admission applies), in an order
that never leaves a dangling reference: the manifest first, then the status
that names it, then the deletion of manifests nothing references any more.
A lost compare-and-set re-reads the VirtualEnvironment and decides again.

VirtualEnvironments are taken oldest request first, and each one's active
routes are updated before the next is decided, so of two releases whose
routes collide the one requested first activates and the other gets the
``RouteConflict`` (a pass that decided both from the same snapshot would
activate both).

Passes are not debounced: release propagation (a release written until it
routes) is on the path users wait on, and a burst of changes is gathered
anyway while a pass runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TypeVar

import structlog

from kubefox.core.errors import ConflictError, NotFoundError
from kubefox.releases import ReleaseInputs, ReleaseOutcome, reconcile_release, same_release
from kubefox.resources import (
    AppDeployment,
    Environment,
    HTTPAdapter,
    Release,
    ReleaseApp,
    ReleaseManifest,
    VirtualEnvironment,
    VirtualEnvironmentSpec,
    VirtualEnvironmentStatus,
)
from kubefox.resources.release_routes import ActiveRoutes, release_vars, released_routes
from kubefox.router.view import ResourceView
from kubefox.store.admission import ProtectedError
from kubefox.store.typed import LABEL_VIRTUAL_ENVIRONMENT, TypedStore

log = structlog.get_logger(__name__)

_MAX_ATTEMPTS = 5
_RETRY_AFTER_FAILURE = 1.0  # seconds before a failed pass is tried again
_NEVER = datetime.min.replace(tzinfo=UTC)

R = TypeVar("R", AppDeployment, HTTPAdapter, ReleaseManifest)


class ReleaseController:
    """Keeps every VirtualEnvironment's release status true to its ``spec.release``.

    Args:
        store: where statuses, rollbacks and manifests are written.
        view: the namespace's resources; someone else runs it (the operator does).
        clock: the current time (timezone-aware); tests pass a fake.
    """

    def __init__(
        self,
        store: TypedStore,
        view: ResourceView,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._view = view
        self._clock = clock
        self._dirty = asyncio.Event()
        self.passes = 0

    async def run(self) -> None:
        """Reconcile on every view change and at pending deadlines, until cancelled."""
        self._view.on_change(self._dirty.set)
        await self._view.wait_ready()
        self._dirty.set()
        requeue: float | None = None
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(requeue):
                    await self._dirty.wait()
            self._dirty.clear()
            try:
                requeue = await self.reconcile()
            except Exception:  # the loop must outlive one bad pass; logged, then retried
                log.exception("releases.reconcile_failed")
                requeue = _RETRY_AFTER_FAILURE

    async def reconcile(self) -> float | None:
        """One pass over every VirtualEnvironment; seconds until the next deadline, if any."""
        self.passes += 1
        view = self._view
        now = self._clock()
        ves = view.all(VirtualEnvironment)
        active: dict[str, ActiveRoutes] = {}
        for ve in ves:
            routes = self._active_routes(ve)
            if routes is not None:
                active[ve.metadata.name] = routes
        requeue: float | None = None
        for ve in sorted(ves, key=lambda ve: _request_order(ve, now)):
            name = ve.metadata.name
            others = [routes for other, routes in active.items() if other != name]
            written, after = await self._reconcile_one(ve, others)
            active.pop(name, None)
            routes = self._active_routes(written) if written is not None else None
            if routes is not None:
                active[name] = routes
            if after is not None:
                requeue = after if requeue is None else min(requeue, after)
        await self._remove_orphans({ve.metadata.name for ve in ves})
        return requeue

    def _active_routes(self, ve: VirtualEnvironment) -> ActiveRoutes | None:
        """The routes ``ve``'s active release serves, resolved as the router resolves them."""
        active = ve.status.active_release if ve.status is not None else None
        if active is None:
            return None
        view = self._view
        manifest = (
            view.get(ReleaseManifest, active.release_manifest) if active.release_manifest else None
        )
        variables = release_vars(ve, view.get(Environment, ve.spec.environment), manifest)
        if variables is None:
            return None
        deployments = {
            app: deployment
            for app, entry in active.apps.items()
            if (deployment := view.get(AppDeployment, entry.app_deployment)) is not None
        }
        return ActiveRoutes(
            virtual_environment=ve.metadata.name,
            activation_time=active.activation_time,
            routes=tuple(released_routes(ve.metadata.name, deployments, variables)),
        )

    def _inputs(self, ve: VirtualEnvironment, others: list[ActiveRoutes]) -> ReleaseInputs:
        view = self._view
        return ReleaseInputs(
            ve=ve,
            environment=view.get(Environment, ve.spec.environment),
            app_deployments=_by_name(view.all(AppDeployment)),
            adapters=_by_name(view.all(HTTPAdapter)),
            manifests=_by_name(view.all(ReleaseManifest)),
            others=others,
            now=self._clock(),
        )

    async def _reconcile_one(
        self, ve: VirtualEnvironment, others: list[ActiveRoutes]
    ) -> tuple[VirtualEnvironment | None, float | None]:
        """Decide and write ``ve``; the VirtualEnvironment as written and its requeue time."""
        name = ve.metadata.name
        current: VirtualEnvironment | None = ve
        for _ in range(_MAX_ATTEMPTS):
            if current is None:
                return None, None
            outcome = reconcile_release(self._inputs(current, others))
            try:
                if outcome.rollback is not None:
                    current = await self._roll_back(current, outcome.rollback.release)
                    continue  # decide again on the restored spec.release
                written = await self._write(current, outcome)
            except ConflictError:
                current = await self._reread(name)
                continue
            except NotFoundError:
                return None, None  # deleted meanwhile
            await self._delete_manifests(name, outcome.delete_manifests)
            return written, outcome.requeue_after
        log.warning("releases.status_contended", virtual_environment=name)
        return current, _RETRY_AFTER_FAILURE

    async def _roll_back(
        self, ve: VirtualEnvironment, release: Release | None
    ) -> VirtualEnvironment:
        spec: VirtualEnvironmentSpec = ve.spec.model_copy(update={"release": release})
        written = await self._store.update(ve.model_copy(update={"spec": spec}))
        log.info(
            "release.rolled_back",
            virtual_environment=ve.metadata.name,
            release=_describe(release.apps if release is not None else None),
        )
        return written

    async def _write(self, ve: VirtualEnvironment, outcome: ReleaseOutcome) -> VirtualEnvironment:
        if outcome.manifest is not None:
            await self._create_manifest(outcome.manifest)
        if outcome.status == (ve.status or VirtualEnvironmentStatus()):
            return ve
        written = await self._store.update(ve.model_copy(update={"status": outcome.status}))
        self._log_transition(ve, written)
        return written

    async def _create_manifest(self, manifest: ReleaseManifest) -> None:
        try:
            await self._store.create(manifest)
        except ConflictError:
            # A pass that crashed before its status write may have created it.
            existing = await self._store.get(ReleaseManifest, manifest.metadata.name)
            if existing.spec.release_id != manifest.spec.release_id:
                raise
        log.info("release_manifest.created", name=manifest.metadata.name)

    async def _delete_manifests(self, ve: str, names: tuple[str, ...]) -> None:
        for name in names:
            try:
                await self._store.delete(ReleaseManifest, name)
            except NotFoundError:
                continue
            except ProtectedError as exc:  # referenced again meanwhile: keep it
                log.info("release_manifest.kept", name=name, reason=exc.cause)
                continue
            log.info("release_manifest.deleted", name=name, virtual_environment=ve)

    async def _remove_orphans(self, ves: set[str]) -> None:
        """Delete manifests whose VirtualEnvironment no longer exists (nothing can use them)."""
        for manifest in self._view.all(ReleaseManifest):
            owner = manifest.metadata.labels.get(
                LABEL_VIRTUAL_ENVIRONMENT, manifest.spec.virtual_environment.metadata.name
            )
            if owner not in ves:
                with contextlib.suppress(NotFoundError, ProtectedError):
                    await self._store.delete(ReleaseManifest, manifest.metadata.name)
                    log.info("release_manifest.deleted", name=manifest.metadata.name, orphan=True)

    async def _reread(self, name: str) -> VirtualEnvironment | None:
        try:
            return await self._store.get(VirtualEnvironment, name)
        except NotFoundError:
            return None

    @staticmethod
    def _log_transition(before: VirtualEnvironment, after: VirtualEnvironment) -> None:
        old, new = before.status, after.status
        if new is None:
            return
        old_active = old.active_release if old is not None else None
        old_pending = old.pending_release if old is not None else None
        name = after.metadata.name
        if new.active_release is not None and (
            old_active is None or old_active.id != new.active_release.id
        ):
            log.info(
                "release.activated",
                virtual_environment=name,
                release=_describe(new.active_release.apps),
                manifest=new.active_release.release_manifest,
            )
        if new.pending_release is not None and (
            old_pending is None or old_pending.id != new.pending_release.id
        ):
            log.info(
                "release.pending",
                virtual_environment=name,
                release=_describe(new.pending_release.apps),
                problems=[str(p.type) for p in new.pending_release.problems],
            )
        if new.pending_release_failed and not (old is not None and old.pending_release_failed):
            log.warning("release.deadline_exceeded", virtual_environment=name)


def _request_order(ve: VirtualEnvironment, now: datetime) -> tuple[datetime, str]:
    """Oldest request first: settled VirtualEnvironments, then pending by request time."""
    status = ve.status
    requested = ve.spec.release
    pending = status.pending_release if status is not None else None
    active = status.active_release if status is not None else None
    if requested is None or same_release(active, requested):
        when = _NEVER
    elif pending is not None and same_release(pending, requested) and pending.request_time:
        when = pending.request_time
    else:
        when = now  # a new request: it becomes pending in this pass
    return (when if when.tzinfo is not None else when.replace(tzinfo=UTC), ve.metadata.name)


def _by_name(resources: list[R]) -> dict[str, R]:
    return {resource.metadata.name: resource for resource in resources}


def _describe(apps: Mapping[str, ReleaseApp] | None) -> dict[str, str] | None:
    if apps is None:
        return None
    return {app: entry.app_deployment for app, entry in apps.items()}
