"""Handler deadlines from one shared timer: each task is cancelled at its own deadline, never early.

:class:`Deadlines` does for the Kit's handler tasks what ``asyncio.timeout_at``
does for a scope; these tests hold it to asyncio's rules: the cancel is the
deadline's only if nobody else cancelled too, a handler's own shorter timeout
stays its own, and nothing is left behind.
"""

from __future__ import annotations

import asyncio

import pytest

from kubefox.kit._deadlines import Deadlines


def _this_task() -> asyncio.Task[object]:
    """The task running the caller: the one a handler's deadline cancels."""
    task = asyncio.current_task()
    assert task is not None
    return task


async def _wait_watched(deadlines: Deadlines, when: float) -> tuple[bool, int]:
    """Wait forever under a deadline at ``when``, as the Kit runs a handler.

    Returns whether the deadline cancelled the wait and the task's outstanding
    cancels after the deadline's was withdrawn.
    """
    task = _this_task()
    deadlines.watch(task, when)
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        expired = deadlines.forget(task)
        return expired, task.cancelling()
    raise AssertionError("unreachable: the wait never ends by itself")


async def _expires_at(deadlines: Deadlines, when: float) -> float:
    """The loop time a task watched until ``when`` was cancelled at."""
    expired, cancelling = await _wait_watched(deadlines, when)
    assert expired
    assert cancelling == 0
    return asyncio.get_running_loop().time()


async def test_tasks_are_cancelled_in_deadline_order_not_in_watch_order() -> None:
    """A task watched later with an earlier deadline is cancelled first; none early."""
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


async def test_a_task_done_in_time_is_not_cancelled() -> None:
    """A handler that finishes before its deadline leaves nothing behind to fire."""
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    task = _this_task()

    deadlines.watch(task, loop.time() + 0.02)
    await asyncio.sleep(0)
    assert deadlines.forget(task) is False
    await _expires_at(deadlines, loop.time() + 0.04)  # outlives the first deadline

    assert task.cancelling() == 0
    assert len(deadlines) == 0


async def test_a_deadline_already_past_cancels_at_the_next_turn() -> None:
    """Watching with a deadline in the past cancels as ``timeout_at`` would: at the next wait."""
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)

    at = await _expires_at(deadlines, loop.time() - 1)

    assert at >= loop.time() - 0.01
    assert len(deadlines) == 0


async def test_a_timeout_inside_the_handler_is_its_own() -> None:
    """A handler's own shorter timeout fires first, as a TimeoutError, and the deadline stays."""
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    task = _this_task()

    deadlines.watch(task, loop.time() + 5)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await asyncio.Event().wait()

    assert deadlines.forget(task) is False
    assert task.cancelling() == 0
    deadlines.close()


async def test_the_deadline_inside_a_handlers_own_timeout_is_the_deadlines() -> None:
    """The deadline firing inside a longer handler timeout is not that timeout's TimeoutError."""
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    task = _this_task()

    deadlines.watch(task, loop.time() + 0.01)
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(5):
            await asyncio.Event().wait()

    assert deadlines.forget(task) is True
    assert task.cancelling() == 0


async def test_another_cancel_stays_outstanding_with_the_deadlines() -> None:
    """A shutdown cancel arriving with the deadline's is still outstanding once that is withdrawn.

    That is how the server tells them apart: only a cancel that was the
    deadline's alone becomes a deadline error; stopping the Kit goes on.
    """
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)

    async def handler() -> tuple[bool, int]:
        return await _wait_watched(deadlines, loop.time() - 1)  # fires at the next turn

    task = asyncio.create_task(handler())
    await asyncio.sleep(0)  # the handler waits now
    task.cancel()  # the other cancel, in the same turn as the deadline's
    _, cancelling = await task

    assert cancelling == 1
    assert len(deadlines) == 0
