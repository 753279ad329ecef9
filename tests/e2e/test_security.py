"""Security on (the default) with hello-world running: what a component's credential may do.

The credential under test is the very file the operator wrote for a running
frontend process; nats-server itself refuses what it must not do, and refuses
the file altogether once the process has stopped.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import nats
import nats.errors
import pytest
from nats.aio.client import Client

from kubefox.core import subjects
from kubefox.operator import InstanceState
from kubefox.platform import EmbeddedPlatform
from kubefox.security.nats_jwt import decode_jwt
from tests.e2e.gitapps import EXAMPLES, app_repo
from tests.e2e.platforms import running_platform

pytestmark = pytest.mark.e2e

QA = {"kf-dep": "hello-world-main", "kf-ve": "qa"}


@dataclass
class Running:
    platform: EmbeddedPlatform
    frontend: InstanceState
    backend: InstanceState
    creds: Path  # a copy of the frontend process's credential


@pytest.fixture
async def hello(tmp_path: Path) -> AsyncIterator[Running]:
    """hello-world-main running on a platform with the default settings (security on)."""
    repo = app_repo(EXAMPLES / "hello-world", tmp_path / "hello-world")
    async with running_platform(tmp_path / "state") as (platform, http):
        await platform.publish(repo)
        await platform.apply_path(repo / "hack" / "environments")
        await platform.wait_available("hello-world-main")
        assert (await http.get("/qa/hello", params=QA)).text == "👋 Hello World!"
        states = {s.component: s for s in platform.scheduler.instances()}
        frontend = states["frontend"]
        original = _creds_file(platform, frontend)
        copy = tmp_path / "frontend.creds"
        shutil.copyfile(original, copy)
        yield Running(platform, frontend, states["backend"], copy)


def _creds_file(platform: EmbeddedPlatform, state: InstanceState) -> Path:
    assert state.instance_id is not None
    return platform.state_dir / "operator" / "instances" / state.instance_id / "nats.creds"


class Violations:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue()

    async def on_error(self, exc: Exception) -> None:
        self.queue.put_nowait(str(exc))

    async def next(self, within: float = 5.0) -> str:
        async with asyncio.timeout(within):
            while True:
                error = await self.queue.get()
                if "permissions violation" in error.lower():
                    return error


async def _connect_as(
    running: Running, state: InstanceState, errors: Violations | None = None
) -> Client:
    platform = running.platform
    inbox = subjects.component_inbox(
        platform.settings.name, state.app, state.component, state.hash, str(state.instance_id)
    )
    return await nats.connect(
        platform.nats.url,
        tls=(await platform.nats_options()).ssl_context(),
        user_credentials=str(running.creds),
        inbox_prefix=inbox,
        allow_reconnect=False,
        connect_timeout=3,
        error_cb=(errors or Violations()).on_error,
    )


async def test_the_operator_gives_each_process_a_private_credential(hello: Running) -> None:
    """The credential file is 0600 in a 0700 directory, and the process got the CA too."""
    original = _creds_file(hello.platform, hello.frontend)

    assert stat.S_IMODE(original.stat().st_mode) == 0o600
    assert stat.S_IMODE(original.parent.stat().st_mode) == 0o700
    assert hello.platform.nats.url.startswith("tls://")
    assert hello.platform.security.ca_file.is_file()


async def test_each_app_has_its_own_nats_account(hello: Running) -> None:
    """The frontend's user is signed by hello-world's account, not the tenant's (the platform's)."""
    security = hello.platform.security
    token = hello.creds.read_text().split("-----BEGIN NATS USER JWT-----\n")[1].split("\n")[0]
    app_account = f"{hello.platform.settings.tenant}.{hello.frontend.app}"

    issuer = decode_jwt(token)["iss"]

    assert issuer == await security.authority.account_public_key(app_account)
    assert issuer != await security.authority.account_public_key(security.account)
    assert app_account in await security.authority.accounts()


async def test_a_component_credential_is_refused_anothers_subjects(hello: Running) -> None:
    """Publishing as the backend, or to its cmp subject, or subscribing to it: all refused."""
    p = hello.platform.settings.name
    backend = hello.backend
    errors = Violations()
    client = await _connect_as(hello, hello.frontend, errors)
    admin = await nats.connect(**(await hello.platform.nats_options()).nats_py_kwargs())
    try:
        spy = await admin.subscribe(f"kf.{p}.>")
        await admin.flush()
        forged = subjects.broker(p, backend.app, backend.component, backend.hash, "forged")
        await client.publish(forged, b"as the backend")
        publish_refusal = await errors.next()
        direct = subjects.component(p, backend.app, backend.component, backend.hash)
        await client.publish(direct, b"straight to the backend")
        direct_refusal = await errors.next()
        await client.subscribe(
            direct,
            queue=subjects.component_queue(p, backend.app, backend.component, backend.hash),
        )
        subscribe_refusal = await errors.next()

        with pytest.raises(nats.errors.TimeoutError):
            await spy.next_msg(timeout=0.5)  # nothing of it reached anyone
    finally:
        await client.close()
        await admin.close()

    assert "publish" in publish_refusal.lower()
    assert forged.lower() in publish_refusal.lower()
    assert direct.lower() in direct_refusal.lower()
    assert "subscription" in subscribe_refusal.lower()
    assert direct.lower() in subscribe_refusal.lower()


async def test_a_stopped_instances_credential_is_refused(hello: Running) -> None:
    """Once the process exits the operator revokes its user: the same file cannot connect."""
    client = await _connect_as(hello, hello.frontend)  # valid while the process runs
    await client.close()
    assert hello.frontend.pid is not None
    os.kill(hello.frontend.pid, signal.SIGTERM)
    async with asyncio.timeout(20):
        while True:  # the operator starts another process with another credential
            now = {s.component: s for s in hello.platform.scheduler.instances()}["frontend"]
            if now.instance_id != hello.frontend.instance_id and now.status == "running":
                break
            await asyncio.sleep(0.1)

    with pytest.raises(nats.errors.Error) as refused:
        await _connect_as(hello, hello.frontend)

    assert "authorization violation" in str(refused.value).lower()
    assert not _creds_file(hello.platform, hello.frontend).exists()


async def test_the_platform_works_with_security_off(tmp_path: Path) -> None:
    """KUBEFOX_PLATFORM_SECURITY=false: plain NATS, no credentials, hello-world still answers."""
    repo = app_repo(EXAMPLES / "hello-world", tmp_path / "hello-world")
    async with running_platform(tmp_path / "state", security=False) as (platform, http):
        await platform.publish(repo)
        await platform.apply_path(repo / "hack" / "environments")
        await platform.wait_available("hello-world-main")
        reply = await http.get("/qa/hello", params=QA)
        anyone = await nats.connect(platform.nats.url)  # no CA, no credential
        await anyone.close()
        instances_dir = platform.state_dir / "operator" / "instances"

    assert (reply.status_code, reply.text) == (200, "👋 Hello World!")
    assert platform.nats.url.startswith("nats://")
    assert not instances_dir.exists()
