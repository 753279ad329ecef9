"""The hello-world acceptance scenario with explicit context (§9.3 steps 1-8), end to end.

Real nats-server, real broker, httpsrv and operator, the example app published
from a temporary git repository and run as real component processes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kubefox.resources import AppDeployment
from tests.e2e.gitapps import EXAMPLES, app_repo, commit_all
from tests.e2e.platforms import running_platform

pytestmark = pytest.mark.e2e

QA = {"kf-dep": "hello-world-main", "kf-ve": "qa"}
PROD = {"kf-dep": "hello-world-main", "kf-ve": "prod"}


async def test_hello_world_explicit_context_scenario(tmp_path: Path) -> None:
    """Publish, apply, call with kf-dep/kf-ve, version, change, republish: §9.3 steps 1-8."""
    repo = app_repo(EXAMPLES / "hello-world", tmp_path / "hello-world")
    async with running_platform(tmp_path / "state") as (platform, http):
        before = await http.get("/qa/hello", params=QA)

        first = await platform.publish(repo)
        await platform.apply_path(repo / "hack" / "environments")
        await platform.wait_available("hello-world-main")
        qa = await http.get("/qa/hello", params=QA)
        qa_headers = await http.get(
            "/qa/hello", headers={"kf-dep": "hello-world-main", "kf-ve": "qa"}
        )
        prod = await http.get("/prod/hello", params=PROD)
        mismatched = await http.get("/qa/hello", params=PROD)
        only_dep = await http.get("/qa/hello", params={"kf-dep": "hello-world-main"})
        only_ve = await http.get("/qa/hello", headers={"kf-ve": "qa"})
        as_json = await http.get("/qa/hello", params=QA, headers={"accept": "application/json"})

        v1 = await platform.publish(repo, version="v1")
        await platform.wait_available("hello-world-v1")
        frontend = repo / "components" / "frontend" / "main.py"
        frontend.write_text(frontend.read_text().replace("👋 Hello", "👋 Hey"))
        commit_all(repo, "Say hey")
        second = await platform.publish(repo)
        main = await platform.wait_available("hello-world-main")
        matrix = {
            (dep, ve): (await http.get(f"/{ve}/hello", params={"kf-dep": dep, "kf-ve": ve})).text
            for dep in ("hello-world-v1", "hello-world-main")
            for ve in ("qa", "prod")
        }
        running = [
            (state.component, state.hash)
            for state in platform.scheduler.instances()
            if state.status == "running"
        ]

    assert before.status_code == 404
    assert first.name == "hello-world-main"
    assert first.created
    assert (qa.status_code, qa.text) == (200, "👋 Hello World!")
    assert qa.headers["content-type"] == "text/plain; charset=UTF-8"
    assert qa.headers["kubefox-virtual-environment"] == "qa"
    assert qa.headers["kubefox-app-deployment"] == "hello-world-main"
    assert qa.headers["kubefox-platform"] == "demo"
    assert qa.headers["kubefox-event-id"]
    assert qa.headers["kubefox-adapter"].startswith("httpsrv-")
    assert (qa_headers.status_code, qa_headers.text) == (200, "👋 Hello World!")
    assert (prod.status_code, prod.text) == (200, "👋 Hello Universe!")
    assert (mismatched.status_code, mismatched.text) == (404, "route not found")
    assert only_dep.status_code == 400
    assert only_dep.text.startswith("invalid: event context is invalid")
    assert only_ve.status_code == 400
    assert as_json.json() == {"msg": "👋 Hello World!"}
    assert v1.name == "hello-world-v1"
    assert not any(component.stored for component in v1.components)
    assert second.name == "hello-world-main"
    assert second.updated
    assert [c.name for c in second.components if c.stored] == ["frontend"]
    assert isinstance(main, AppDeployment)
    assert main.metadata.generation == 2
    assert matrix == {
        ("hello-world-v1", "qa"): "👋 Hello World!",
        ("hello-world-v1", "prod"): "👋 Hello Universe!",
        ("hello-world-main", "qa"): "👋 Hey World!",
        ("hello-world-main", "prod"): "👋 Hey Universe!",
    }
    assert sorted(component for component, _ in running) == ["backend", "frontend", "frontend"]
    assert len(set(running)) == 3


async def test_missing_route_var_is_a_400_naming_the_route(tmp_path: Path) -> None:
    """Removing subPath from an Environment gives 400 VarNotFound at routes[0].subPath."""
    repo = app_repo(EXAMPLES / "hello-world", tmp_path / "hello-world")
    qa_env = repo / "hack" / "environments" / "qa.yaml"
    async with running_platform(tmp_path / "state") as (platform, http):
        await platform.publish(repo)
        await platform.apply_path(repo / "hack" / "environments")
        await platform.wait_available("hello-world-main")
        await platform.apply_yaml(qa_env.read_text().replace("    subPath: qa\n", ""))

        response = await http.get("/qa/hello", params=QA)

    assert response.status_code == 400
    assert response.text.startswith("invalid: event context is invalid\n")
    assert "type: VarNotFound" in response.text
    assert "path: $.spec.components.frontend.routes[0].subPath" in response.text
    assert 'message: Var "subPath" not found but is required.' in response.text
