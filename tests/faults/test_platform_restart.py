"""The whole embedded platform stopped and started again with the same state directory.

Everything a user made comes back as it was: the AppDeployments, Environments
and VirtualEnvironments (the resource store is JetStream on disk), the
component artifacts (the object store), the releases and their history; the
operator starts the instances again from the artifacts, and requests succeed
at the same URL (httpsrv's port is remembered).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubefox.platform import EmbeddedPlatform
from kubefox.releases import history, release, wait_released
from kubefox.resources import AppDeployment, Environment, VirtualEnvironment, dump
from tests.e2e.gitapps import app_repo
from tests.e2e.platforms import running_platform
from tests.faults.harness import STEADY, deploy, platform_yaml, timed_get

pytestmark = pytest.mark.faults

TIMEOUT = 3.0
MAIN = {"kf-dep": "steady-main", "kf-ve": "steady"}
V1 = {"kf-dep": "steady-v1", "kf-ve": "steady"}


async def _inventory(platform: EmbeddedPlatform) -> dict[str, dict[str, Any]]:
    """Every user-made resource as written: kind/name -> spec and data (status left out)."""
    found: dict[str, dict[str, Any]] = {}
    for model in (AppDeployment, Environment, VirtualEnvironment):
        for resource in await platform.resources.find(model):
            document = dump(resource)
            document.pop("status", None)
            document["metadata"] = {
                key: document["metadata"].get(key) for key in ("name", "labels", "generation")
            }
            found[f"{resource.kind}/{resource.metadata.name}"] = document
    return found


async def test_a_restarted_platform_serves_its_apps_as_before(tmp_path: Path) -> None:
    """Stop everything, start again on the same state dir: same resources, same URL, 200s."""
    state = tmp_path / "state"
    async with running_platform(state) as (platform, http):
        await deploy(platform, STEADY, tmp_path, event_timeout=TIMEOUT)
        await platform.publish(tmp_path / "steady", version="v1")
        await platform.wait_available("steady-v1")
        for index in range(20):
            await platform.resources.create(
                VirtualEnvironment.model_validate(
                    {"metadata": {"name": f"ve-{index}"}, "spec": {"environment": "steady"}}
                )
            )
        before = await _inventory(platform)
        url = platform.http_url
        answered_before = (await timed_get(http, "/steady/chain", params=MAIN)).status

    async with running_platform(state) as (platform, http):
        await platform.wait_available("steady-main")
        await platform.wait_available("steady-v1")
        after = await _inventory(platform)
        same_url = platform.http_url == url
        main = await timed_get(http, "/steady/chain", params=MAIN)
        v1 = await timed_get(http, "/steady/chain", params=V1)

    assert answered_before == 200
    assert len(before) == 2 + 1 + 21
    assert after == before
    assert same_url
    assert main.status == 200
    assert v1.status == 200


async def test_a_restarted_platform_keeps_releases_and_their_history(tmp_path: Path) -> None:
    """Release v1 then main into a VE, restart: main still serves without context, history kept."""
    state = tmp_path / "state"
    repo = app_repo(STEADY, tmp_path / "steady")
    async with running_platform(state) as (platform, http):
        await platform.apply_yaml(platform_yaml(timeout=TIMEOUT))
        await platform.publish(repo, version="v1")
        await platform.publish(repo)
        await platform.apply_path(repo / "hack" / "environments")
        await platform.wait_available("steady-v1")
        for ref in ("steady-v1", "steady-main"):
            written = await release(platform.resources, virtual_environment="steady", ref=ref)
            await wait_released(platform.view, "steady", timeout=30, release=written.spec.release)
        history_before = await history(platform.resources, "steady")
        released_before = await timed_get(http, "/steady/ok")

    async with running_platform(state) as (platform, http):
        await platform.wait_available("steady-main")
        ve = await platform.resources.get(VirtualEnvironment, "steady")
        history_after = await history(platform.resources, "steady")
        released_after = await timed_get(http, "/steady/ok")

    assert released_before.status == 200
    assert ve.status is not None
    assert ve.status.active_release is not None
    assert [entry.model_dump() for entry in history_after] == [
        entry.model_dump() for entry in history_before
    ]
    assert len(history_after) >= 1
    assert released_after.status == 200
    assert released_after.text.startswith("front ")
