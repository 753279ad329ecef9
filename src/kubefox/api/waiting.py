"""Waiting, on the server, until an AppDeployment is available: ``fox publish --wait``.

The API follows the store with a :class:`~kubefox.router.ResourceView`, so a
waiter is woken by the change it waits for instead of polling. Before it
judges, it lets the view catch up with the store's current revision: a
deployment updated a moment ago by the same client must be judged by its new
generation, never by the status of the old one. (The operator has the same
rule for its own callers; the API may not import the operator, a sibling.)
"""

from __future__ import annotations

import asyncio

from kubefox.core.errors import DeadlineExceededError, NotFoundError, UnavailableError
from kubefox.resources import AppDeployment, ConditionReason, ConditionStatus, ConditionType
from kubefox.router import ResourceView
from kubefox.store.protocol import ResourceStore

_FAILED = frozenset({ConditionReason.COMPONENT_DEPLOYMENT_FAILED, ConditionReason.PROBLEMS_FOUND})


def _judge(appdep: AppDeployment) -> bool:
    """True once available; raises once failed; False while still on its way."""
    status = appdep.status
    if status is None:
        return False
    generation = appdep.metadata.generation or 0
    current = {
        c.type: c
        for c in status.conditions
        if c.observed_generation is None or c.observed_generation == generation
    }
    available = current.get(ConditionType.AVAILABLE)
    if available is not None and available.status is ConditionStatus.TRUE:
        return True
    progressing = current.get(ConditionType.PROGRESSING)
    if (
        progressing is not None
        and progressing.status is ConditionStatus.FALSE
        and progressing.reason in _FAILED
    ):
        name = appdep.metadata.name
        raise UnavailableError(
            f'AppDeployment "{name}" failed: {progressing.reason}: {progressing.message}',
            name=name,
            problems=[p.model_dump(mode="json", by_alias=True) for p in status.problems],
        )
    return False


async def wait_available(
    view: ResourceView,
    store: ResourceStore,
    name: str,
    *,
    timeout: float,  # noqa: ASYNC109 - a deadline for the caller, not for one I/O call
) -> AppDeployment:
    """Return AppDeployment ``name`` once ``Available`` is ``True`` at its generation.

    Raises:
        NotFoundError: there is no such AppDeployment.
        UnavailableError: it failed (``Progressing=False``, reason
            ``ComponentDeploymentFailed`` or ``ProblemsFound``); ``details``
            holds its problems.
        DeadlineExceededError: it was not available within ``timeout`` seconds.
    """
    try:
        async with asyncio.timeout(timeout):
            await view.wait_for_revision(await store.revision())
            while True:
                revision = view.revision
                appdep = view.get(AppDeployment, name)
                if appdep is None:
                    raise NotFoundError(f'AppDeployment "{name}" not found', name=name)
                if _judge(appdep):
                    return appdep
                await view.wait_for_revision(revision + 1)
    except TimeoutError:
        raise DeadlineExceededError(
            f'AppDeployment "{name}" did not become available within {timeout:g}s; '
            f"see its status with: fox get appdeployment {name} -o yaml",
            name=name,
        ) from None
