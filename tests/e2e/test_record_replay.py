"""Record and replay end to end: hello-world's traffic in qa, replayed against the ``Hey`` change.

A real embedded platform in this process (nats-server, operator, broker,
httpsrv, API); the real ``fox`` executable (run in a thread, so the platform
keeps serving) records, lists, shows and replays.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kubefox.platform import EmbeddedPlatform
from kubefox.publish import create_tag
from kubefox.releases import release, wait_released
from tests.e2e.foxes import fox
from tests.e2e.gitapps import EXAMPLES, app_repo, commit_all
from tests.e2e.platforms import running_platform

pytestmark = pytest.mark.e2e

SECRET = "Bearer s3cret-token-never-stored"  # noqa: S105 - a fake credential to redact


async def run_fox(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``fox ARGS`` against the platform in ``state``, without blocking its event loop."""
    return await asyncio.to_thread(fox, *args, cwd=state, state_dir=state)


async def stored(platform: EmbeddedPlatform, state: Path, recording: str, count: int) -> Any:
    """The recording once ``count`` exchanges are stored (they are written asynchronously)."""
    async with asyncio.timeout(15):
        while True:
            shown = await run_fox(state, "record", "list", "-o", "json")
            found = {r["id"]: r for r in json.loads(shown.stdout)["items"]}[recording]
            if found["requests"] >= count:
                return found
            await asyncio.sleep(0.2)  # another process appends: nothing to wait on but the count


async def test_replay_against_hey_shows_ten_body_changes_and_none_against_v1(
    tmp_path: Path,
) -> None:
    """Ten qa requests recorded on v1 differ only in body against the Hey deployment, not v1."""
    repo = app_repo(EXAMPLES / "hello-world", tmp_path / "hello-world")
    state = tmp_path / "state"
    async with running_platform(state) as (platform, http):
        await platform.publish(repo)
        await platform.apply_path(repo / "hack" / "environments")
        await platform.wait_available("hello-world-main")
        create_tag(repo, "v1")
        await platform.publish(repo, version="v1")
        await platform.wait_available("hello-world-v1")
        written = await release(platform.resources, virtual_environment="qa", ref="v1")
        await wait_released(platform.view, "qa", timeout=30, release=written.spec.release)

        started = await run_fox(
            state, "record", "start", "-e", "qa", "--deployment", "hello-world-v1", "-o", "json"
        )
        recording = json.loads(started.stdout)
        answers = [
            await http.get("/qa/hello", headers={"authorization": SECRET} if i == 0 else {})
            for i in range(10)
        ]
        await stored(platform, state, recording["id"], 10)
        stopped = await run_fox(state, "record", "stop", recording["id"], "-o", "json")
        after_stop = await http.get("/qa/hello")
        shown = await run_fox(state, "record", "show", recording["id"])
        listed = await run_fox(state, "record", "list")

        frontend = repo / "components" / "frontend" / "main.py"
        frontend.write_text(frontend.read_text().replace("👋 Hello", "👋 Hey"))
        commit_all(repo, "Say hey")
        await platform.publish(repo)
        await platform.wait_available("hello-world-main")

        against_hey = await run_fox(
            state, "replay", recording["id"], "-d", "hello-world-main", "-e", "qa", "-o", "json"
        )
        against_hey_text = await run_fox(
            state, "replay", recording["id"], "-d", "hello-world-main", "-e", "qa", "--diff"
        )
        against_v1 = await run_fox(
            state, "replay", recording["id"], "-d", "hello-world-v1", "-e", "qa", "-o", "json"
        )
        final = await run_fox(state, "record", "list", "-o", "json")

    assert started.returncode == 0, started.stderr
    assert recording["observedBy"]
    assert recording["state"] == "Recording"
    assert [(a.status_code, a.text) for a in answers] == [(200, "👋 Hello World!")] * 10
    assert json.loads(stopped.stdout)["state"] == "Stopped"
    assert after_stop.status_code == 200
    exchanges = json.loads(shown.stdout)["exchanges"]
    assert len(exchanges) == 10  # the request after stop is not recorded
    assert SECRET not in shown.stdout
    assert "s3cret" not in shown.stdout
    assert exchanges[0]["redacted"] == ["authorization"]
    assert all(name != "authorization" for name, _ in exchanges[0]["request"]["headers"])
    assert {e["appDeployment"] for e in exchanges} == {"hello-world-v1"}
    assert recording["id"] in listed.stdout
    assert json.loads(final.stdout)["items"][0]["requests"] == 10
    # against the Hey deployment: exactly ten differences, each the body's greeting
    assert against_hey.returncode == 1, against_hey.stderr
    report = json.loads(against_hey.stdout)
    assert (report["requests"], report["differing"]) == (10, 10)
    assert [
        [(d["field"], d["recorded"], d["replayed"]) for d in r["differences"]]
        for r in report["results"]
    ] == [[("body", "👋 Hello World!", "👋 Hey World!")]] * 10
    assert all((r["recordedStatus"], r["replayedStatus"]) == (200, 200) for r in report["results"])
    assert against_hey_text.returncode == 1
    assert against_hey_text.stdout.count("-👋 Hello World!") == 10
    assert against_hey_text.stdout.count("+👋 Hey World!") == 10
    assert "10 of 10 requests differ" in against_hey_text.stderr
    # against v1 itself: nothing
    assert against_v1.returncode == 0, against_v1.stdout + against_v1.stderr
    assert json.loads(against_v1.stdout)["differing"] == 0
