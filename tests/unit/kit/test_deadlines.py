"""Handler deadlines from one shared timer: each scope expires at its own deadline, never early."""

from __future__ import annotations

import asyncio

import pytest

from kubefox.kit._deadlines import Deadlines


async def _wait_watched(deadlines: Deadlines, scope: asyncio.Timeout, when: float) -> None:
    """Wait forever in ``scope``, which ``deadlines`` expires at ``when``, as the Kit does."""
    async with scope:
        deadlines.watch(scope, when)
        try:
            await asyncio.Event().wait()
        finally:
            deadlines.forget(scope)


async def _expires_at(deadlines: Deadlines, when: float) -> float:
    """The loop time a scope watched until ``when`` expired at."""
    scope = asyncio.timeout_at(None)
    with pytest.raises(TimeoutError):
        await _wait_watched(deadlines, scope, when)
    assert scope.expired()
    return asyncio.get_running_loop().time()


async def test_scopes_expire_in_deadline_order_not_in_watch_order() -> None:
    """A scope watched later with an earlier deadline expires first; none expires early."""
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    now = loop.time()
    whens = [now + 0.12, now + 0.04, now + 0.08]

    async with asyncio.TaskGroup() as tasks:
        waits = [tasks.create_task(_expires_at(deadlines, when)) for when in whens]

    expired = [wait.result() for wait in waits]
    assert all(at >= when for at, when in zip(expired, whens, strict=True))
    assert expired[1] < expired[2] < expired[0]
    assert len(deadlines) == 0


async def test_a_scope_left_in_time_does_not_expire() -> None:
    """A handler that finishes before its deadline leaves nothing behind to expire."""
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    scope = asyncio.timeout_at(None)

    async with scope:
        deadlines.watch(scope, loop.time() + 0.02)
        deadlines.forget(scope)
    await _expires_at(deadlines, loop.time() + 0.04)

    assert not scope.expired()
    assert len(deadlines) == 0


async def test_a_deadline_already_past_expires_at_the_next_turn() -> None:
    """Watching with a deadline in the past expires the scope as ``timeout_at`` would."""
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)

    at = await _expires_at(deadlines, loop.time() - 1)

    assert at >= loop.time() - 0.01
    assert len(deadlines) == 0


async def test_a_timeout_inside_the_handler_is_its_own() -> None:
    """A handler's own shorter timeout fires first and leaves the watched scope unexpired."""
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    scope = asyncio.timeout_at(None)

    async with scope:
        deadlines.watch(scope, loop.time() + 5)
        try:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.01):
                    await asyncio.Event().wait()
        finally:
            deadlines.forget(scope)

    assert not scope.expired()
    deadlines.close()
