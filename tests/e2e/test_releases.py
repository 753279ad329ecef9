"""Releases end to end: hello-world through §9.3 steps 7-10, and what must be refused.

Real nats-server, operator, broker and httpsrv, the example app published from
a temporary git repository and run as real component processes; requests
without ``kf-dep``/``kf-ve`` go over HTTP to whatever the releases serve.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from kubefox.core.errors import NotFoundError, UnavailableError
from kubefox.platform import EmbeddedPlatform
from kubefox.publish import create_tag
from kubefox.releases import release, wait_released
from kubefox.resources import (
    AppDeployment,
    ArchiveReason,
    Environment,
    Platform,
    ProblemType,
    ReleaseManifest,
    VirtualEnvironment,
)
from kubefox.router import ResourceView
from kubefox.store.admission import ProtectedError
from kubefox.store.typed import LABEL_VIRTUAL_ENVIRONMENT
from tests.e2e.gitapps import EXAMPLES, app_repo, commit_all
from tests.e2e.platforms import running_platform

pytestmark = pytest.mark.e2e

T = TypeVar("T")

# The shortest activation deadline a policy allows, so the test waits 3 s, not 300.
PROD_SHORT_DEADLINE = """
apiVersion: kubefox.xigxog.io/v1alpha1
kind: VirtualEnvironment
metadata:
  name: prod
spec:
  environment: prod
  releasePolicy:
    activationDeadlineSeconds: 3
"""

QA_RELEASING_V9 = """
apiVersion: kubefox.xigxog.io/v1alpha1
kind: VirtualEnvironment
metadata:
  name: qa
spec:
  environment: qa
  release:
    apps:
      hello-world:
        appDeployment: hello-world-v9
"""

TWIN = """
apiVersion: kubefox.xigxog.io/v1alpha1
kind: VirtualEnvironment
metadata:
  name: qa-twin
spec:
  environment: qa
"""


async def until(view: ResourceView, check: Callable[[], T | None], *, within: float = 15.0) -> T:
    """The first truthy ``check()``, re-evaluated on every change the view applies."""
    async with asyncio.timeout(within):
        while True:
            revision = view.revision
            found = check()
            if found:
                return found
            await view.wait_for_revision(revision + 1)


async def released(platform: EmbeddedPlatform, ve: str, ref: str) -> VirtualEnvironment:
    """Release ``ref`` into ``ve`` and wait until it is active."""
    written = await release(platform.resources, virtual_environment=ve, ref=ref)
    return await wait_released(platform.view, ve, timeout=30, release=written.spec.release)


async def published_hello_world(platform: EmbeddedPlatform, repo: Path) -> None:
    """§9.3 steps 2-3: the environments applied, hello-world-main published and available."""
    await platform.publish(repo)
    await platform.apply_path(repo / "hack" / "environments")
    await platform.wait_available("hello-world-main")


def with_pending_problems(platform: EmbeddedPlatform, name: str) -> VirtualEnvironment | None:
    """VirtualEnvironment ``name`` if its pending release has problems."""
    ve = platform.view.get(VirtualEnvironment, name)
    pending = ve.status.pending_release if ve is not None and ve.status is not None else None
    return ve if pending is not None and pending.problems else None


def rolled_back(platform: EmbeddedPlatform, name: str) -> VirtualEnvironment | None:
    """VirtualEnvironment ``name`` once its failed release was rolled back to no release."""
    ve = platform.view.get(VirtualEnvironment, name)
    if ve is None or ve.status is None or ve.spec.release is not None:
        return None
    return None if ve.status.pending_release_failed else ve


async def test_hello_world_release_scenario(tmp_path: Path) -> None:
    """Release v1 to qa, change, promote v2 to qa and v1 to prod: §9.3 steps 7-10 over HTTP."""
    repo = app_repo(EXAMPLES / "hello-world", tmp_path / "hello-world")
    async with running_platform(tmp_path / "state") as (platform, http):
        typed = platform.resources
        await published_hello_world(platform, repo)
        create_tag(repo, "v1")
        await platform.publish(repo, version="v1")
        before = await http.get("/qa/hello")

        qa_v1 = await released(platform, "qa", "v1")
        step7 = await http.get("/qa/hello")

        frontend = repo / "components" / "frontend" / "main.py"
        frontend.write_text(frontend.read_text().replace("👋 Hello", "👋 Hey"))
        commit_all(repo, "Say hey")
        await platform.publish(repo)
        await platform.wait_available("hello-world-main")
        matrix = {
            url: (await http.get(url)).text
            for url in (
                "/qa/hello",
                "/prod/hello?kf-dep=hello-world-v1&kf-ve=prod",
                "/qa/hello?kf-dep=hello-world-main&kf-ve=qa",
                "/prod/hello?kf-dep=hello-world-main&kf-ve=prod",
            )
        }

        create_tag(repo, "v2")
        await platform.publish(repo, version="v2")
        qa = await released(platform, "qa", "v2")
        prod = await released(platform, "prod", "v1")
        prod_hello = await http.get("/prod/hello")
        qa_hello = await http.get("/qa/hello")

        deployments = await typed.find(AppDeployment)
        environments = await typed.find(Environment)
        ves = await typed.find(VirtualEnvironment)
        manifests = await typed.find(ReleaseManifest)
        platforms = await typed.find(Platform)
        running = [
            (state.component, state.hash)
            for state in platform.scheduler.instances()
            if state.status == "running"
        ]

    assert (before.status_code, before.text) == (404, "route not found")
    # step 7: v1 released to qa (Testing: no manifest), served without parameters
    assert qa_v1.spec.release is not None
    assert qa_v1.spec.release.apps["hello-world"].model_dump() == {
        "app_deployment": "hello-world-v1",
        "version": "v1",
    }
    assert qa_v1.status is not None
    active = qa_v1.status.active_release
    assert active is not None
    assert (active.release_manifest, active.request_time is not None) == (None, True)
    assert active.activation_time is not None
    assert {c.type: (c.status, c.reason) for c in qa_v1.status.conditions} == {
        "ActiveReleaseAvailable": ("True", "ContextAvailable"),
        "ReleasePending": ("False", "ReleaseActivated"),
    }
    assert (step7.status_code, step7.text) == (200, "👋 Hello World!")
    assert step7.headers["kubefox-virtual-environment"] == "qa"
    assert step7.headers["kubefox-app-deployment"] == "hello-world-v1"
    assert "kubefox-release-manifest" not in step7.headers
    # step 8: the matrix, exactly
    assert matrix == {
        "/qa/hello": "👋 Hello World!",
        "/prod/hello?kf-dep=hello-world-v1&kf-ve=prod": "👋 Hello Universe!",
        "/qa/hello?kf-dep=hello-world-main&kf-ve=qa": "👋 Hey World!",
        "/prod/hello?kf-dep=hello-world-main&kf-ve=prod": "👋 Hey Universe!",
    }
    # step 9: qa on v2 with v1 in history, prod on v1 with a manifest
    assert qa.status is not None
    assert qa.status.active_release is not None
    assert qa.status.active_release.apps["hello-world"].app_deployment == "hello-world-v2"
    assert qa.status.active_release.release_manifest is None
    assert [
        (h.apps["hello-world"].app_deployment, h.archive_reason) for h in qa.status.release_history
    ] == [("hello-world-v1", ArchiveReason.SUPERSEDED)]
    assert prod.status is not None
    assert prod.status.active_release is not None
    manifest_name = prod.status.active_release.release_manifest
    assert manifest_name is not None
    assert re.fullmatch(r"prod-\d+-\d{8}-\d{6}", manifest_name)
    assert (prod_hello.status_code, prod_hello.text) == (200, "👋 Hello Universe!")
    assert prod_hello.headers["kubefox-release-manifest"] == manifest_name
    assert (qa_hello.status_code, qa_hello.text) == (200, "👋 Hey World!")
    # step 10: the inventory
    assert sorted((d.metadata.name, d.spec.version) for d in deployments) == [
        ("hello-world-main", None),
        ("hello-world-v1", "v1"),
        ("hello-world-v2", "v2"),
    ]
    for deployment in deployments:
        assert deployment.status is not None
        assert {c.type: c.status for c in deployment.status.conditions}["Available"] == "True"
    assert sorted(e.metadata.name for e in environments) == ["prod", "qa"]
    assert sorted(v.metadata.name for v in ves) == ["prod", "qa"]
    assert [m.metadata.name for m in manifests] == [manifest_name]
    assert manifests[0].metadata.labels[LABEL_VIRTUAL_ENVIRONMENT] == "prod"
    [demo] = platforms
    assert demo.metadata.name == "demo"
    assert (demo.spec.events.timeout_seconds, demo.spec.events.max_size) == (30, 5242880)
    assert sorted(component for component, _ in running) == ["backend", "frontend", "frontend"]
    assert len(set(running)) == 3


async def test_unversioned_release_into_stable_is_rolled_back_at_its_deadline(
    tmp_path: Path,
) -> None:
    """hello-world-main into prod stays pending (PolicyViolation), then is rolled back."""
    repo = app_repo(EXAMPLES / "hello-world", tmp_path / "hello-world")
    async with running_platform(tmp_path / "state") as (platform, _):
        await published_hello_world(platform, repo)
        await platform.apply_yaml(PROD_SHORT_DEADLINE)
        written = await release(
            platform.resources, virtual_environment="prod", ref="hello-world-main"
        )
        pending = await until(
            platform.view,
            lambda: with_pending_problems(platform, "prod"),
        )
        with pytest.raises(UnavailableError) as failed:
            await wait_released(platform.view, "prod", timeout=15, release=written.spec.release)
        rolled = await until(
            platform.view,
            lambda: rolled_back(platform, "prod"),
        )

    assert pending.status is not None
    assert {c.type: (c.status, c.reason) for c in pending.status.conditions} == {
        "ActiveReleaseAvailable": ("False", "ReleasePending"),
        "ReleasePending": ("True", "ProblemsFound"),
    }
    [problem] = pending.status.pending_release.problems  # type: ignore[union-attr]
    assert problem.type is ProblemType.POLICY_VIOLATION
    assert problem.message == 'Version is required but not set for App "hello-world".'
    assert "activation deadline passed" in failed.value.cause
    assert rolled.status is not None
    assert (
        rolled.status.release_history[0].archive_reason is ArchiveReason.PENDING_DEADLINE_EXCEEDED
    )
    assert {c.type: (c.status, c.reason) for c in rolled.status.conditions}["ReleasePending"] == (
        "False",
        "PendingDeadlineExceeded",
    )


async def test_colliding_release_gets_route_conflict_and_the_first_keeps_serving(
    tmp_path: Path,
) -> None:
    """The same release in a second VE on qa's data: RouteConflict there; /qa/hello stays qa's."""
    repo = app_repo(EXAMPLES / "hello-world", tmp_path / "hello-world")
    async with running_platform(tmp_path / "state") as (platform, http):
        await published_hello_world(platform, repo)
        await platform.apply_yaml(TWIN)
        await released(platform, "qa", "main")

        await release(platform.resources, virtual_environment="qa-twin", ref="main")
        twin = await until(
            platform.view,
            lambda: with_pending_problems(platform, "qa-twin"),
        )
        served = await http.get("/qa/hello")

    assert twin.status is not None
    assert twin.status.active_release is None
    [problem] = twin.status.pending_release.problems  # type: ignore[union-attr]
    assert problem.type is ProblemType.ROUTE_CONFLICT
    assert 'released to VirtualEnvironment "qa"' in problem.message
    assert (served.status_code, served.text) == (200, "👋 Hello World!")
    assert served.headers["kubefox-virtual-environment"] == "qa"


async def test_deleting_a_released_deployment_is_refused(tmp_path: Path) -> None:
    """hello-world-main, active in qa, cannot be deleted; it stays and keeps serving."""
    repo = app_repo(EXAMPLES / "hello-world", tmp_path / "hello-world")
    async with running_platform(tmp_path / "state") as (platform, http):
        await published_hello_world(platform, repo)
        await released(platform, "qa", "main")

        with pytest.raises(ProtectedError) as refused:
            await platform.resources.delete(AppDeployment, "hello-world-main")
        still = await platform.resources.get(AppDeployment, "hello-world-main")
        served = await http.get("/qa/hello")

    assert str(refused.value) == (
        'delete operation not allowed: AppDeployment "hello-world-main" is used by the active '
        'release of VirtualEnvironment "qa"; release something else first'
    )
    assert still.metadata.name == "hello-world-main"
    assert (served.status_code, served.text) == (200, "👋 Hello World!")


async def test_release_naming_a_missing_deployment_is_app_deployment_not_found(
    tmp_path: Path,
) -> None:
    """A spec.release naming a missing deployment stays pending with AppDeploymentNotFound."""
    repo = app_repo(EXAMPLES / "hello-world", tmp_path / "hello-world")
    async with running_platform(tmp_path / "state") as (platform, _):
        await published_hello_world(platform, repo)
        with pytest.raises(NotFoundError, match="publish it first"):
            await release(platform.resources, virtual_environment="qa", ref="v9")
        await platform.apply_yaml(QA_RELEASING_V9)
        pending = await until(
            platform.view,
            lambda: with_pending_problems(platform, "qa"),
        )

    assert pending.status is not None
    [problem] = pending.status.pending_release.problems  # type: ignore[union-attr]
    assert problem.type is ProblemType.APP_DEPLOYMENT_NOT_FOUND
    assert problem.message == 'AppDeployment "hello-world-v9" for App "hello-world" not found.'
