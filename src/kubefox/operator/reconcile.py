"""The operator: AppDeployments in, running component instances and their status out.

One reconcile pass (upstream ``ComponentManager.ReconcileApps``):

1. *distil*: the distinct (app, component, hash) of every AppDeployment in
   the view, each one instance set (:func:`~kubefox.operator.status.referenced_components`);
2. *ensure* each with the scheduler (a missing or unusable artifact becomes a
   problem on the deployments that use it, never a crash of the operator);
3. *remove* the instance sets nobody references any more;
4. *report*: compute each AppDeployment's ``Available``/``Progressing``
   conditions and problems from the scheduler and the live registrations,
   and write the status only if it says something new, compare-and-set on
   ``metadata.resourceVersion`` with a retry.

Passes run on every change of the view, the registrations or the scheduler
(a burst is gathered into one pass by a short debounce) and every
``resync_interval`` seconds otherwise. The operator runs what it is given:
:meth:`Operator.run` follows the view and the registrations and runs the
scheduler, and stopping it stops every instance the scheduler started.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from kubefox.core.errors import (
    ConflictError,
    DeadlineExceededError,
    KubeFoxError,
    NotFoundError,
    UnavailableError,
)
from kubefox.operator.releases import ReleaseController
from kubefox.operator.scheduler import InstanceSpec, Scheduler, instance_key
from kubefox.operator.settings import OperatorSettings
from kubefox.operator.status import (
    ComponentRef,
    Observation,
    condition,
    desired_status,
    merge_status,
    referenced_components,
    same_status,
)
from kubefox.resources import (
    AppDeployment,
    ConditionReason,
    ConditionStatus,
    ConditionType,
    HTTPAdapter,
)
from kubefox.router.view import ResourceView
from kubefox.store.artifacts import ArtifactStore, artifact_name
from kubefox.store.instance_records import Registrations
from kubefox.store.protocol import ResourceStore
from kubefox.store.secrets import ResourceSecrets
from kubefox.store.typed import TypedStore

log = structlog.get_logger(__name__)

_MAX_STATUS_ATTEMPTS = 5
_RETRY_AFTER_FAILURE = 1.0  # seconds before a failed pass is tried again
_FAILED_REASONS = frozenset(
    {ConditionReason.COMPONENT_DEPLOYMENT_FAILED, ConditionReason.PROBLEMS_FOUND}
)


class Operator:
    """Keeps one instance set running per distinct component of the namespace's AppDeployments.

    Args:
        settings: The operator's settings (namespace, platform, timings).
        store: Where AppDeployment statuses are written.
        artifacts: Where component artifacts are looked up before starting them.
        scheduler: What runs the instance sets; :meth:`run` runs it and closes it.
        registry: The live registrations; :meth:`run` follows it.
        view: The namespace's resources; :meth:`run` follows it.
        component_env: More variables every component process gets (the
            ``KUBEFOX_KIT_TELEMETRY_*`` of the platform's telemetry settings).
        secrets: Where the secrets of the ReleaseManifests it writes go (a snapshot
            of the Environment's and VirtualEnvironment's, see :mod:`kubefox.store.secrets`).
    """

    def __init__(
        self,
        settings: OperatorSettings,
        *,
        store: ResourceStore,
        artifacts: ArtifactStore,
        scheduler: Scheduler,
        registry: Registrations,
        view: ResourceView,
        component_env: Mapping[str, str] | None = None,
        secrets: ResourceSecrets | None = None,
    ) -> None:
        self._settings = settings
        self._component_env = dict(component_env or {})
        self._typed = TypedStore(store, namespace=settings.namespace, secrets=secrets)
        self._artifacts = artifacts
        self._scheduler = scheduler
        self._registry = registry
        self._view = view
        # The VirtualEnvironment controller: releases, deadlines, manifests.
        self.releases = ReleaseController(self._typed, view)
        self._ensured: dict[str, InstanceSpec] = {}
        self._missing: dict[str, str] = {}  # key -> name of the artifact that does not exist
        self._errors: dict[str, str] = {}  # key -> why the scheduler could not start it
        self._removing: set[str] = set()
        self._dirty = asyncio.Event()
        # Set after the first complete pass: statuses then describe this run, not the last.
        self._reconciled = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tg: asyncio.TaskGroup | None = None
        self._event_loop: asyncio.AbstractEventLoop | None = None
        self._started = False

    # -- lifecycle -----------------------------------------------------------------------

    async def run(self) -> None:
        """Reconcile until :meth:`stop`; then stop every instance and return.

        Raises:
            RuntimeError: the operator ran before.
        """
        if self._started:
            raise RuntimeError("an operator runs once")
        self._started = True
        self._event_loop = asyncio.get_running_loop()
        for source in (self._view, self._registry, self._scheduler):
            source.on_change(self._poke)
        log.info("operator.starting", namespace=self._settings.namespace)
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            scheduler = tg.create_task(self._scheduler.run(), name="scheduler")
            followers = [
                tg.create_task(self._follow("view", self._view.run())),
                tg.create_task(self._follow("registry", self._registry.run())),
            ]
            loop = tg.create_task(self._reconcile_forever(), name="reconcile")
            releases = tg.create_task(self.releases.run(), name="releases")
            await self._stopping.wait()
            log.info("operator.stopping")
            loop.cancel()
            releases.cancel()
            await asyncio.wait([loop, releases])  # no new ensure() once the scheduler closes
            await self._scheduler.aclose()
            await scheduler
            for follower in followers:
                follower.cancel()
        self._tg = None
        log.info("operator.stopped")

    def stop(self) -> None:
        """Ask :meth:`run` to finish; idempotent, safe from signal handlers and other threads."""
        loop = self._event_loop
        if loop is None or loop.is_closed():
            self._stopping.set()
            return
        try:
            loop.call_soon_threadsafe(self._stopping.set)
        except RuntimeError:  # the loop closed meanwhile: nothing left to stop
            return

    async def wait_reconciled(self) -> None:
        """Return once a reconcile pass of this run has completed.

        Statuses stored by an earlier run (before a restart) may still say
        ``Available`` for instances that no longer run; after this, every status
        that changed has been written by this run.
        """
        await self._reconciled.wait()

    async def wait_available(self, name: str, timeout: float) -> AppDeployment:  # noqa: ASYNC109
        """See :func:`wait_available`; waits on this operator's view."""
        return await wait_available(self._view, name, timeout=timeout)

    async def _follow(self, what: str, following: Coroutine[Any, Any, None]) -> None:
        await following
        if not self._stopping.is_set():
            # Without its inputs the operator would act on stale state.
            log.warning("operator.input_ended", input=what)
            self.stop()

    def _poke(self) -> None:
        self._dirty.set()

    async def _reconcile_forever(self) -> None:
        await self._view.wait_ready()
        await self._registry.wait_ready()
        self._dirty.set()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.resync_interval):
                    await self._dirty.wait()
            if self._settings.reconcile_debounce:
                await asyncio.sleep(self._settings.reconcile_debounce)
            self._dirty.clear()
            try:
                await self.reconcile()
            except Exception:  # the loop must outlive one bad pass; logged, then retried
                log.exception("operator.reconcile_failed")
                await asyncio.sleep(_RETRY_AFTER_FAILURE)
                self._dirty.set()
            else:
                self._reconciled.set()

    # -- one pass ------------------------------------------------------------------------

    async def reconcile(self) -> None:
        """One pass: ensure, remove, report (see the module docstring)."""
        appdeps = self._view.all(AppDeployment)
        wanted = referenced_components(appdeps)
        for ref in wanted.values():
            await self._ensure(ref)
        for state in self._scheduler.instances():
            if state.key not in wanted and state.key not in self._removing:
                await self._remove_soon(state.key)
        for gone in set(self._ensured) - set(wanted):
            del self._ensured[gone]
        self._missing = {k: v for k, v in self._missing.items() if k in wanted}
        self._errors = {k: v for k, v in self._errors.items() if k in wanted}
        observations = self._observe(wanted)
        adapters = {adapter.metadata.name: adapter for adapter in self._view.all(HTTPAdapter)}
        for appdep in appdeps:
            await self._report(appdep, observations, adapters)

    def spec_for(self, ref: ComponentRef) -> InstanceSpec:
        """What the scheduler is told to run for ``ref``: its artifact and ``KUBEFOX_KIT_*``."""
        s = self._settings
        return InstanceSpec(
            app=ref.app,
            component=ref.component,
            hash=ref.hash,
            artifact=artifact_name(ref.app, ref.component, ref.hash),
            env={
                "KUBEFOX_KIT_PLATFORM": s.platform,
                "KUBEFOX_KIT_APP": ref.app,
                "KUBEFOX_KIT_NAME": ref.component,
                "KUBEFOX_KIT_HASH": ref.hash,
                "KUBEFOX_KIT_NATS_URL": s.nats_url,
                "KUBEFOX_KIT_LOG_FORMAT": s.log_format,
                "KUBEFOX_KIT_LOG_LEVEL": s.log_level,
                "KUBEFOX_KIT_INSTANCES_BUCKET": s.instances_bucket,
                # Refresh the registration well within its TTL, and finish draining
                # before the supervisor's grace runs out.
                "KUBEFOX_KIT_HEARTBEAT_INTERVAL": f"{s.instance_ttl / 3:g}",
                "KUBEFOX_KIT_SHUTDOWN_GRACE": f"{s.stop_grace * 0.8:g}",
                **self._component_env,
            },
        )

    async def _ensure(self, ref: ComponentRef) -> None:
        spec = self.spec_for(ref)
        key = spec.key
        running = {state.key for state in self._scheduler.instances()}
        if self._ensured.get(key) == spec and key in running:
            return
        try:
            if not await self._artifacts.exists(spec.artifact):
                self._note_missing(key, spec.artifact)
                return
            await self._scheduler.ensure(spec)
        except NotFoundError:  # deleted between the check and the fetch
            self._note_missing(key, spec.artifact)
            return
        except UnavailableError as exc:
            # Transient (the artifact store is unreachable): try again on a later pass.
            log.warning("instance.ensure_deferred", key=key, error=str(exc))
            return
        except KubeFoxError as exc:
            log.warning("instance.unusable", key=key, error=str(exc))
            self._errors[key] = exc.cause or exc.message
            self._missing.pop(key, None)
            return
        self._ensured[key] = spec
        self._missing.pop(key, None)
        self._errors.pop(key, None)

    def _note_missing(self, key: str, artifact: str) -> None:
        if key not in self._missing:
            log.warning("instance.artifact_missing", key=key, artifact=artifact)
        self._missing[key] = artifact
        self._errors.pop(key, None)

    async def _remove_soon(self, key: str) -> None:
        """Stop an unreferenced instance set, in the background when running."""
        self._removing.add(key)
        if self._tg is None:
            await self._remove(key)
        else:
            self._tg.create_task(self._remove(key), name=f"remove {key}")

    async def _remove(self, key: str) -> None:
        try:
            log.info("instance.unreferenced", key=key)
            await self._scheduler.remove(key)
        except KubeFoxError as exc:
            log.warning("instance.remove_failed", key=key, error=str(exc))
        finally:
            self._removing.discard(key)
            self._poke()

    def _observe(self, wanted: Mapping[str, ComponentRef]) -> dict[str, Observation]:
        states = {state.key: state for state in self._scheduler.instances()}
        registered = collections.Counter(
            instance_key(record.app, record.name, record.hash)
            for record in self._registry.records()
            if record.platform == self._settings.platform
        )
        return {
            key: Observation(
                registered=registered[key],
                state=states.get(key),
                missing_artifact=self._missing.get(key),
                start_error=self._errors.get(key),
            )
            for key in wanted
        }

    async def _report(
        self,
        appdep: AppDeployment,
        observations: Mapping[str, Observation],
        adapters: Mapping[str, HTTPAdapter],
    ) -> None:
        """Write ``appdep``'s status if it changed, re-reading it after a lost race."""
        name = appdep.metadata.name
        for _ in range(_MAX_STATUS_ATTEMPTS):
            conditions, problems = desired_status(
                appdep,
                observations,
                adapters=adapters,
                failed_after=self._settings.failed_after_restarts,
            )
            status = merge_status(appdep.status, conditions, problems, now=datetime.now(UTC))
            if same_status(appdep.status, status):
                return
            try:
                await self._typed.update(appdep.model_copy(update={"status": status}))
            except ConflictError:
                try:
                    appdep = await self._typed.get(AppDeployment, name)
                except NotFoundError:
                    return
                continue
            except NotFoundError:
                return  # deleted meanwhile
            log.info(
                "appdeployment.status_written",
                name=name,
                **{c.type.lower(): f"{c.status}/{c.reason}" for c in status.conditions},
            )
            return
        log.warning("appdeployment.status_contended", name=name)


async def wait_available(view: ResourceView, name: str, *, timeout: float) -> AppDeployment:  # noqa: ASYNC109
    """Return AppDeployment ``name`` once its ``Available`` condition is ``True``.

    Only conditions observed at the deployment's current generation count.
    Someone must be running ``view`` (an :class:`Operator` does).

    Raises:
        UnavailableError: it reached ``Progressing=False`` with reason
            ``ComponentDeploymentFailed`` or ``ProblemsFound``; ``details``
            holds the problems.
        DeadlineExceededError: neither happened within ``timeout`` seconds.
    """
    try:
        async with asyncio.timeout(timeout):
            while True:
                revision = view.revision
                appdep = view.get(AppDeployment, name)
                if appdep is not None and appdep.status is not None:
                    generation = appdep.metadata.generation or 0
                    available = condition(appdep.status, ConditionType.AVAILABLE)
                    progressing = condition(appdep.status, ConditionType.PROGRESSING)
                    if (
                        available is not None
                        and available.status is ConditionStatus.TRUE
                        and available.observed_generation == generation
                    ):
                        return appdep
                    if (
                        progressing is not None
                        and progressing.status is ConditionStatus.FALSE
                        and progressing.reason in _FAILED_REASONS
                        and progressing.observed_generation == generation
                    ):
                        raise UnavailableError(
                            f"AppDeployment {name} failed: {progressing.reason}",
                            name=name,
                            problems=[
                                p.model_dump(mode="json", by_alias=True)
                                for p in appdep.status.problems
                            ],
                        )
                await view.wait_for_revision(revision + 1)
    except TimeoutError:
        raise DeadlineExceededError(
            f"AppDeployment {name} did not become available within {timeout:g}s",
            name=name,
        ) from None
