"""DeadlineTimer: many deadlines from one loop timer, each handed back at its own time."""

from __future__ import annotations

import asyncio

from kubefox.natsio.deadlines import DeadlineTimer


async def test_keys_come_due_in_deadline_order_never_early() -> None:
    loop = asyncio.get_running_loop()
    came: list[tuple[str, float, float]] = []
    timer: DeadlineTimer[str] = DeadlineTimer(loop, lambda k, w: came.append((k, w, loop.time())))
    now = loop.time()
    timer.watch("late", now + 0.09)
    timer.watch("early", now + 0.03)
    timer.watch("middle", now + 0.06)

    await asyncio.sleep(0.15)

    assert [key for key, _, _ in came] == ["early", "middle", "late"]
    assert all(at >= when - 0.002 for _, when, at in came)  # libuv rounds to milliseconds
    assert len(timer) == 0


async def test_a_forgotten_key_never_comes_due_and_close_stops_all() -> None:
    loop = asyncio.get_running_loop()
    came: list[str] = []
    timer: DeadlineTimer[str] = DeadlineTimer(loop, lambda k, _w: came.append(k))
    timer.watch("answered", loop.time() + 0.02)
    timer.watch("kept", loop.time() + 0.04)
    timer.forget("answered")
    await asyncio.sleep(0.07)
    timer.watch("closed", loop.time() + 0.02)
    timer.close()
    await asyncio.sleep(0.04)

    assert came == ["kept"]
    assert len(timer) == 0
