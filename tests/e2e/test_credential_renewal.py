"""Credential renewal under load: hello-world with 10-second credentials, not one request lost.

At two thirds of a credential's life the operator starts a successor process,
waits until it has registered, and only then stops the old one (which drains)
and revokes its credential. Requests sent all the while must all succeed.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
import nats
import nats.errors
import pytest

from kubefox.core import subjects
from kubefox.operator import InstanceState
from kubefox.platform import EmbeddedPlatform
from tests.e2e.gitapps import EXAMPLES, app_repo
from tests.e2e.platforms import running_platform
from tests.unit.operator.helpers import Signal

pytestmark = pytest.mark.e2e

QA = {"kf-dep": "hello-world-main", "kf-ve": "qa"}
TTL = 10.0  # the smallest credential_ttl the settings allow: renewal after ~6.7 s
EVERY = 0.02  # pause between two requests of one sender
SENDERS = 2


def _states(platform: EmbeddedPlatform) -> dict[str, InstanceState]:
    return {state.component: state for state in platform.scheduler.instances()}


def _creds_file(platform: EmbeddedPlatform, state: InstanceState) -> Path:
    assert state.instance_id is not None
    return platform.state_dir / "operator" / "instances" / state.instance_id / "nats.creds"


async def _send(http: httpx.AsyncClient, outcomes: list[str], stop: asyncio.Event) -> None:
    """Send requests one after another until ``stop``; record each outcome."""
    while not stop.is_set():
        try:
            reply = await http.get("/qa/hello", params=QA)
            outcomes.append(f"{reply.status_code} {reply.text}")
        except httpx.HTTPError as exc:
            outcomes.append(repr(exc))
        await asyncio.sleep(EVERY)


def _renewed(platform: EmbeddedPlatform, before: Mapping[str, InstanceState]) -> bool:
    """Both components run a new process and the old ones' credentials are revoked."""
    now = _states(platform)
    issued = platform.security.components
    assert issued is not None
    live = issued.issued()
    return all(
        now[name].instance_id != old.instance_id
        and now[name].status == "running"
        and old.instance_id not in live
        for name, old in before.items()
    )


async def test_renewing_credentials_under_load_loses_no_request(tmp_path: Path) -> None:
    """Both components renew under load: every request succeeds; the old credential is refused."""
    repo = app_repo(EXAMPLES / "hello-world", tmp_path / "hello-world")
    async with running_platform(tmp_path / "state", credential_ttl=TTL) as (platform, http):
        await platform.publish(repo)
        await platform.apply_path(repo / "hack" / "environments")
        await platform.wait_available("hello-world-main")
        before = _states(platform)
        old_creds = tmp_path / "frontend.creds"
        shutil.copyfile(_creds_file(platform, before["frontend"]), old_creds)
        changes = Signal()
        platform.scheduler.on_change(changes)
        outcomes: list[str] = []
        stop = asyncio.Event()
        started = time.monotonic()

        async with asyncio.TaskGroup() as senders:
            for _ in range(SENDERS):
                senders.create_task(_send(http, outcomes, stop))
            try:
                await changes.until(lambda: _renewed(platform, before), timeout=2 * TTL)
                await asyncio.sleep(0.5)  # and a little traffic to the successors only
            finally:
                stop.set()
        elapsed = time.monotonic() - started
        after = _states(platform)
        inbox = subjects.component_inbox(
            platform.settings.name, "hello-world", "frontend", before["frontend"].hash, "x"
        )
        with pytest.raises(nats.errors.Error) as refused:
            await nats.connect(
                platform.nats.url,
                tls=(await platform.nats_options()).ssl_context(),
                user_credentials=str(old_creds),
                inbox_prefix=inbox,
                allow_reconnect=False,
                connect_timeout=3,
            )

    failed = [outcome for outcome in outcomes if outcome != "200 👋 Hello World!"]
    assert failed == [], f"{len(failed)} of {len(outcomes)} requests failed: {failed[:5]}"
    assert len(outcomes) >= 50, (len(outcomes), elapsed)
    for name, old in before.items():
        assert after[name].instance_id != old.instance_id
        assert after[name].pid not in (None, old.pid)
        assert after[name].restarts == 0  # a renewal is not a crash
    assert "authorization violation" in str(refused.value).lower()
    assert not _creds_file(platform, before["frontend"]).exists()
