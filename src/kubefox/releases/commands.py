"""The release library API: what ``fox release``, ``fox rollback`` and the demo call.

A release is a request written to ``spec.release`` of a VirtualEnvironment;
the operator's state machine (:mod:`kubefox.releases.lifecycle`) makes it
pending, then active. These functions write the request (compare-and-set,
retried when someone else wrote meanwhile) and wait for the outcome.

*Decisions* where upstream is silent or interactive:

* a reference that names several AppDeployments at the same step (a branch
  with a versioned and an unversioned deployment, both published from
  ``main``) picks the one named ``<app>-<ref>`` if there is exactly one, the
  deployment published *as* that reference; otherwise it is an error listing
  the candidates (upstream asks the user to choose);
* a commit may be given by any unique prefix of at least 7 characters;
* :func:`rollback` goes back to the newest history entry that had been
  active, whatever the reason it left (a failed release never was active).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

from kubefox.core.errors import (
    ConflictError,
    DeadlineExceededError,
    InvalidError,
    NotFoundError,
    UnavailableError,
)
from kubefox.releases.lifecycle import same_release
from kubefox.resources import (
    AppDeployment,
    ArchiveReason,
    ObservedProblem,
    Release,
    ReleaseApp,
    ReleaseStatus,
    Resource,
    VirtualEnvironment,
    clean_name,
)
from kubefox.store.typed import (
    LABEL_APP_BRANCH,
    LABEL_APP_COMMIT,
    LABEL_APP_COMMIT_SHORT,
    LABEL_APP_NAME,
    LABEL_APP_TAG,
    LABEL_APP_VERSION,
    TypedStore,
)

R = TypeVar("R", bound=Resource)

_MAX_ATTEMPTS = 10
_HEX = re.compile(r"^[0-9a-f]{7,40}$")
#: How far the operator's clock may lag this process's when matching a failed release.
_CLOCK_SLACK = timedelta(seconds=5)

_LABEL_STEPS = (
    ("commit", LABEL_APP_COMMIT),
    ("short commit", LABEL_APP_COMMIT_SHORT),
    ("version", LABEL_APP_VERSION),
    ("tag", LABEL_APP_TAG),
    ("branch", LABEL_APP_BRANCH),
)


class ReleaseView(Protocol):
    """What :func:`wait_released` reads: a live view of resources (``ResourceView`` is one)."""

    @property
    def revision(self) -> int:
        """The store revision the view has caught up with."""
        ...

    def get(self, model: type[R], name: str) -> R | None:
        """The resource of ``model``'s kind named ``name``, or ``None``."""
        ...

    async def wait_for_revision(self, revision: int) -> None:
        """Return once the view has applied every change up to ``revision``."""
        ...


async def find_app_deployment(
    store: TypedStore, ref: str, *, app: str | None = None
) -> AppDeployment:
    """The AppDeployment ``ref`` names, resolved as ``fox release`` does (§8.2).

    ``ref`` is tried as an AppDeployment name, then against the index labels
    in order: commit (or a unique prefix of at least 7 characters), short
    commit, version, tag, branch. The first step that finds anything decides.

    Args:
        store: where the AppDeployments are.
        ref: an AppDeployment name, commit, short commit, version, tag or branch.
        app: only consider AppDeployments of this app.

    Raises:
        NotFoundError: nothing matches.
        InvalidError: several AppDeployments match at the same step; the
            message lists them.
    """
    try:
        named = await store.get(AppDeployment, ref)
    except (NotFoundError, InvalidError):
        named = None
    if named is not None and (app is None or named.spec.app_name == app):
        return named
    selector = {LABEL_APP_NAME: app} if app else {}
    everything: list[AppDeployment] | None = None
    for what, label in _LABEL_STEPS:
        found = await store.find(AppDeployment, labels={**selector, label: ref})
        if not found and what == "commit" and _HEX.match(ref):
            everything = everything or await store.find(AppDeployment, labels=selector or None)
            found = [d for d in everything if d.spec.commit.startswith(ref)]
        if len(found) == 1:
            return found[0]
        if found:
            return _pick(found, ref, what)
    scope = f' of app "{app}"' if app else ""
    raise NotFoundError(
        f'no AppDeployment{scope} is named "{ref}" or has it as commit, version, tag or branch; '
        "publish it first (fox publish), or check the name with fox get appdeployments",
        ref=ref,
    )


def _pick(found: list[AppDeployment], ref: str, what: str) -> AppDeployment:
    try:
        wanted = {f"{clean_name(d.spec.app_name)}-{clean_name(ref)}" for d in found}
    except InvalidError:
        wanted = set()
    preferred = [d for d in found if d.metadata.name in wanted]
    if len(preferred) == 1:
        return preferred[0]
    names = ", ".join(sorted(d.metadata.name for d in found))
    raise InvalidError(
        f'"{ref}" is ambiguous: it is the {what} of AppDeployments {names}; '
        "name the AppDeployment to release instead",
        ref=ref,
        candidates=sorted(d.metadata.name for d in found),
    )


async def release(
    store: TypedStore, *, virtual_environment: str, ref: str, app: str | None = None
) -> VirtualEnvironment:
    """Request the release of the AppDeployment ``ref`` names into ``virtual_environment``.

    Sets ``spec.release.apps[<app>] = {appDeployment, version}`` (the
    deployment's own version) and leaves the other apps' releases alone. The
    operator then makes it pending and, once it has no problems, active; wait
    for that with :func:`wait_released`.

    Returns:
        The VirtualEnvironment as written.

    Raises:
        NotFoundError: the VirtualEnvironment or the AppDeployment does not exist.
        InvalidError: ``ref`` is ambiguous (see :func:`find_app_deployment`).
    """
    deployment = await find_app_deployment(store, ref, app=app)
    entry = ReleaseApp(
        app_deployment=deployment.metadata.name, version=deployment.spec.version or None
    )
    app_name = deployment.spec.app_name

    def change(ve: VirtualEnvironment) -> Release | None:
        apps = dict(ve.spec.release.apps) if ve.spec.release is not None else {}
        apps[app_name] = entry
        return Release(apps=apps)

    return await _write_release(store, virtual_environment, change)


async def history(store: TypedStore, virtual_environment: str) -> list[ReleaseStatus]:
    """The archived releases of ``virtual_environment``, newest first.

    Raises:
        NotFoundError: the VirtualEnvironment does not exist.
    """
    ve = await _get_ve(store, virtual_environment)
    entries = list(ve.status.release_history) if ve.status is not None else []
    never = datetime.min.replace(tzinfo=UTC)
    return sorted(entries, key=lambda entry: entry.archive_time or never, reverse=True)


async def rollback(store: TypedStore, virtual_environment: str) -> VirtualEnvironment:
    """Request the release that was active before the current one again.

    That is the newest history entry that had been activated; its apps become
    ``spec.release`` and go through the state machine like any release.

    Raises:
        NotFoundError: the VirtualEnvironment does not exist, or its history
            holds no release that was ever active.
    """
    entries = await history(store, virtual_environment)
    previous = next((entry for entry in entries if entry.activation_time is not None), None)
    if previous is None:
        raise NotFoundError(
            f'VirtualEnvironment "{virtual_environment}" has no earlier active release to roll '
            "back to; release a version explicitly instead",
            virtual_environment=virtual_environment,
        )
    target = Release(apps=dict(previous.apps))
    return await _write_release(store, virtual_environment, lambda _: target)


async def wait_released(
    view: ReleaseView,
    virtual_environment: str,
    *,
    timeout: float,  # noqa: ASYNC109 - the wait is the whole point of the call
    release: Release | None = None,
) -> VirtualEnvironment:
    """Return ``virtual_environment`` once its requested release is active.

    Args:
        view: a live view of the resources, e.g. a ``ResourceView`` someone runs.
        virtual_environment: the VirtualEnvironment's name.
        timeout: seconds to wait.
        release: the release to wait for; by default the ``spec.release`` the
            view shows first. Pass what :func:`release` wrote, so that a view
            lagging behind the write cannot report the previous release.

    Raises:
        UnavailableError: the release failed: its activation deadline passed with
            problems and the operator rolled it back, or another release replaced
            it; ``details["problems"]`` holds its problems.
        DeadlineExceededError: it was still pending after ``timeout`` seconds;
            ``details["problems"]`` holds the pending problems.
        NotFoundError: the VirtualEnvironment did not appear in the view
            within ``timeout`` seconds.
    """
    waiter = _Waiter(release, started=datetime.now(UTC))
    last: VirtualEnvironment | None = None
    try:
        async with asyncio.timeout(timeout):
            while True:
                revision = view.revision
                ve = view.get(VirtualEnvironment, virtual_environment)
                if ve is not None:  # else the view may not have caught up yet
                    last = ve
                    if waiter.settled(ve):
                        return ve
                await view.wait_for_revision(revision + 1)
    except TimeoutError:
        if last is None:
            raise NotFoundError(
                f'VirtualEnvironment "{virtual_environment}" not found; apply it first',
                virtual_environment=virtual_environment,
            ) from None
        pending = last.status.pending_release if last.status is not None else None
        problems = list(pending.problems) if pending is not None else []
        raise DeadlineExceededError(
            f'the release into VirtualEnvironment "{virtual_environment}" was not active within '
            f"{timeout:g}s{_problem_text(problems)}",
            virtual_environment=virtual_environment,
            problems=_dump(problems),
        ) from None


class _Waiter:
    """Follows one VirtualEnvironment until a wanted release is active or has failed."""

    def __init__(self, wanted: Release | None, *, started: datetime) -> None:
        self.wanted = wanted
        self.started = started
        self.pending_ids: set[str] = set()
        # Only a request seen in spec.release can later be "replaced": a view that
        # lags behind the write still shows the previous one.
        self.requested = False

    def settled(self, ve: VirtualEnvironment) -> bool:
        """True once the release is active; raise if it failed; False while it may come."""
        if self.wanted is None:
            self.wanted = ve.spec.release
            if self.wanted is None:
                raise InvalidError(
                    f'VirtualEnvironment "{ve.metadata.name}" has no release to wait for; '
                    "release something first",
                    virtual_environment=ve.metadata.name,
                )
        wanted = self.wanted
        status = ve.status
        if status is not None:
            if same_release(status.active_release, wanted):
                return True
            pending = status.pending_release
            if pending is not None and same_release(pending, wanted):
                self.pending_ids.add(pending.id)
            for entry in status.release_history:
                if self._failed(entry, wanted):
                    raise UnavailableError(
                        f'the release into VirtualEnvironment "{ve.metadata.name}" failed: its '
                        "activation deadline passed and it was rolled back"
                        f"{_problem_text(entry.problems)}",
                        virtual_environment=ve.metadata.name,
                        problems=_dump(entry.problems),
                    )
        if same_release(wanted, ve.spec.release):
            self.requested = True
        elif self.requested:
            raise UnavailableError(
                f'the release into VirtualEnvironment "{ve.metadata.name}" was replaced by '
                "another release before it became active",
                virtual_environment=ve.metadata.name,
                problems=[],
            )
        return False

    def _failed(self, entry: ReleaseStatus, wanted: Release) -> bool:
        if entry.archive_reason is not ArchiveReason.PENDING_DEADLINE_EXCEEDED:
            return False
        if entry.id in self.pending_ids:
            return True
        return (
            same_release(entry, wanted)
            and entry.request_time is not None
            and entry.request_time >= self.started - _CLOCK_SLACK
        )


def _problem_text(problems: list[ObservedProblem]) -> str:
    if not problems:
        return ""
    return "; problems: " + " ".join(f"{p.type}: {p.message}" for p in problems)


def _dump(problems: list[ObservedProblem]) -> list[dict[str, object]]:
    return [p.model_dump(mode="json", by_alias=True, exclude_none=True) for p in problems]


async def _get_ve(store: TypedStore, name: str) -> VirtualEnvironment:
    try:
        return await store.get(VirtualEnvironment, name)
    except NotFoundError:
        raise NotFoundError(
            f'VirtualEnvironment "{name}" not found; apply it first (fox apply)',
            virtual_environment=name,
        ) from None


async def _write_release(
    store: TypedStore, name: str, change: Callable[[VirtualEnvironment], Release | None]
) -> VirtualEnvironment:
    """Set ``spec.release`` to ``change(ve)``, compare-and-set, re-reading after a lost race."""
    for _ in range(_MAX_ATTEMPTS):
        ve = await _get_ve(store, name)
        wanted = change(ve)
        if ve.spec.release == wanted:
            return ve
        updated = ve.model_copy(update={"spec": ve.spec.model_copy(update={"release": wanted})})
        try:
            return await store.update(updated)
        except ConflictError:
            continue
    raise ConflictError(
        f'VirtualEnvironment "{name}" kept changing while its release was written; try again',
        virtual_environment=name,
    )
