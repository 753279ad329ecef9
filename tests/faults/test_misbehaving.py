"""Components that break the wire protocol: the caller gets a clean error, the platform stays up.

The ``rogue`` app's ``back`` component answers never, twice, with random bytes,
with nothing, with more than the event size limit, or with an error event
whose content is not an error document (see its ``main.py``). Each is called
straight from httpsrv and through ``front``, a well-behaved component that
relays the answer (so through the broker and the Kit's request path). After
all of them the platform still answers a normal request on both paths.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.e2e.platforms import running_platform
from tests.faults.harness import MARGIN, ROGUE, Outcome, deploy, timed_get

pytestmark = pytest.mark.faults

CONTEXT = {"kf-dep": "rogue-main", "kf-ve": "rogue"}
TIMEOUT = 3.0
BAD_REPLIES = ["twice", "garbage", "empty", "huge", "bad-error"]


async def test_misbehaving_replies_become_clean_errors_and_nothing_breaks(tmp_path: Path) -> None:
    """Never: 504 at the deadline; twice: the first counts; garbage: 5xx; then all still works."""
    async with running_platform(tmp_path / "state") as (platform, http):
        await deploy(platform, ROGUE, tmp_path, event_timeout=TIMEOUT)
        cases = [
            (path, mode) for path in ("back", "front") for mode in ["ok", "never", *BAD_REPLIES]
        ]
        # All at once: the platform must keep the misbehaviours apart, and the
        # two that never answer then cost one deadline, not two.
        answers = await asyncio.gather(
            *(timed_get(http, f"/rogue/{path}/{mode}", params=CONTEXT) for path, mode in cases)
        )
        outcomes: dict[tuple[str, str], Outcome] = dict(zip(cases, answers, strict=True))
        after = [await timed_get(http, f"/rogue/{p}/ok", params=CONTEXT) for p in ("back", "front")]
        health = await http.get("/_kf/health")

    for path in ("back", "front"):
        assert (outcomes[path, "ok"].status, outcomes[path, "ok"].text) == (200, "ok")
        never = outcomes[path, "never"]
        assert never.status == 504, never
        assert TIMEOUT - 0.2 <= never.elapsed <= TIMEOUT + MARGIN
        twice = outcomes[path, "twice"]
        assert (twice.status, twice.text) == (200, "twice")
        for mode in ("garbage", "empty", "huge", "bad-error"):
            outcome = outcomes[path, mode]
            assert outcome.status == 500, (path, mode, outcome)
            assert outcome.text.startswith("unexpected error"), (path, mode, outcome)
            assert outcome.elapsed < TIMEOUT, (path, mode, outcome)
    assert [(o.status, o.text) for o in after] == [(200, "ok"), (200, "ok")]
    assert health.status_code == 200
