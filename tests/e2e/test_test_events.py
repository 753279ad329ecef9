"""Built-in test events end to end, on a real embedded platform running hello-world.

Switched on for VE qa alone (its annotation) or for every VE (the Platform
resource), answered by httpsrv itself; the routes event's generated requests
reach the real components; ``fox test send`` (the real executable, run in a
thread so the platform keeps serving) prints the replies.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from kubefox.platform import EmbeddedPlatform
from tests.e2e.foxes import fox
from tests.e2e.gitapps import EXAMPLES, app_repo
from tests.e2e.platforms import running_platform

pytestmark = pytest.mark.e2e

PLATFORM_WITH_BUILTIN_EVENTS = """\
apiVersion: kubefox.xigxog.io/v1alpha1
kind: Platform
metadata:
  name: {name}
spec:
  events:
    builtin: {on}
"""

QA_WITH_BUILTIN_EVENTS = """\
apiVersion: kubefox.xigxog.io/v1alpha1
kind: VirtualEnvironment
metadata:
  name: qa
  annotations:
    kubefox.xigxog.io/builtin-events: "true"
spec:
  environment: qa
"""


async def test_builtin_events_answer_in_qa_only(tmp_path: Path) -> None:
    """health and echo answer 200 in qa (annotated), and are routed as usual (404) in prod."""
    repo = app_repo(EXAMPLES / "hello-world", tmp_path / "hello-world")
    annotated = tmp_path / "qa-builtin.yaml"
    annotated.write_text(QA_WITH_BUILTIN_EVENTS)
    async with running_platform(tmp_path / "state") as (platform, http):
        await platform.publish(repo)
        await platform.apply_path(repo / "hack" / "environments")
        await platform.apply_path(annotated)
        await platform.wait_available("hello-world-main")

        def params(event_type: str, ve: str) -> dict[str, str]:
            return {"kf-type": event_type, "kf-dep": "hello-world-main", "kf-ve": ve}

        health = await http.get("/", params=params("io.kubefox.health", "qa"))
        health_prod = await http.get("/", params=params("io.kubefox.health", "prod"))
        echo = await http.post(
            "/anything",
            params={**params("io.kubefox.echo", "qa"), "x": "1"},
            headers={"authorization": "Bearer s3cret", "x-test": "yes"},
            content=b"hello",
        )
        echo_prod = await http.post("/anything", params=params("io.kubefox.echo", "prod"))

    assert health.status_code == 200, health.text
    document = health.json()
    assert document["appDeployment"] == "hello-world-main"
    assert document["virtualEnvironment"] == "qa"
    assert document["status"] == "healthy"
    assert set(document["components"]) == {"backend", "frontend"}
    assert all(c["live"] is True for c in document["components"].values())
    assert health_prod.status_code == 404, health_prod.text

    assert echo.status_code == 200, echo.text
    echoed = echo.json()
    assert echoed["method"] == "POST"
    assert echoed["path"] == "/anything"
    assert echoed["query"]["x"] == ["1"]
    assert echoed["headers"]["x-test"] == ["yes"]
    assert "authorization" not in echoed["headers"]
    assert echoed["bodyLength"] == 5
    assert echo_prod.status_code == 404, echo_prod.text


def params(event_type: str, ve: str) -> dict[str, str]:
    """The query naming a built-in event for hello-world-main in ``ve``."""
    return {"kf-type": event_type, "kf-dep": "hello-world-main", "kf-ve": ve}


async def seen_by_httpsrv(platform: EmbeddedPlatform) -> None:
    """Return once httpsrv's view holds every write made so far."""
    await platform.view.wait_for_revision(await platform.store.revision())


async def run_fox(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``fox ARGS`` against the platform in ``state``, without blocking its event loop."""
    return await asyncio.to_thread(fox, *args, cwd=state, state_dir=state)


def assert_hello_route_answered(report: dict[str, Any], ve: str) -> None:
    """The report of hello-world-main in ``ve``: its one route reached the frontend, 200."""
    assert report["appDeployment"] == "hello-world-main"
    assert report["virtualEnvironment"] == ve
    assert report["status"] == "passed"
    assert report["summary"] == {
        "routes": 1,
        "2xx": 1,
        "3xx": 0,
        "4xx": 0,
        "5xx": 0,
        "errors": 0,
        "skipped": 0,
        "notTried": 0,
    }
    [route] = report["routes"]
    assert route["component"] == "frontend"
    assert route["rule"] == "Path(`/{{.Vars.subPath}}/hello`)"
    assert route["resolvedRule"] == f"Path(`/{ve}/hello`)"
    assert route["request"]["method"] == "GET"
    assert route["request"]["path"] == f"/{ve}/hello"
    assert route["outcome"] == "answered"
    assert route["status"] == 200
    assert 0 < route["durationMs"] < 5000


async def test_the_routes_event_sends_hello_worlds_route_through_the_components(
    tmp_path: Path,
) -> None:
    """In qa (annotated) every route gets a real answer; in prod the event is routed (404)."""
    repo = app_repo(EXAMPLES / "hello-world", tmp_path / "hello-world")
    annotated = tmp_path / "qa-builtin.yaml"
    annotated.write_text(QA_WITH_BUILTIN_EVENTS)
    async with running_platform(tmp_path / "state") as (platform, http):
        await platform.publish(repo)
        await platform.apply_path(repo / "hack" / "environments")
        await platform.apply_path(annotated)
        await platform.wait_available("hello-world-main")

        report = await http.get("/", params=params("io.kubefox.routes", "qa"))
        in_prod = await http.get("/", params=params("io.kubefox.routes", "prod"))
        # The generated request is an ordinary one: the same answer a client gets.
        direct = await http.get("/qa/hello", params={"kf-dep": "hello-world-main", "kf-ve": "qa"})

    assert report.status_code == 200, report.text
    assert report.headers["content-type"] == "application/json"
    assert_hello_route_answered(report.json(), "qa")
    assert direct.status_code == 200
    assert direct.text == "👋 Hello World!"
    assert in_prod.status_code == 404, in_prod.text


async def test_fox_test_send_prints_replies_for_people_and_as_json(tmp_path: Path) -> None:
    """health and the example routes file in qa exit 0; the same event in prod exits 1."""
    repo = app_repo(EXAMPLES / "hello-world", tmp_path / "hello-world")
    annotated = tmp_path / "qa-builtin.yaml"
    annotated.write_text(QA_WITH_BUILTIN_EVENTS)
    health_file = tmp_path / "health.yaml"
    health_file.write_text(
        "type: io.kubefox.health\ndeployment: hello-world-main\nvirtualEnvironment: qa\n"
    )
    routes_file = repo / "hack" / "test-events" / "routes.yaml"
    prod_file = tmp_path / "routes-prod.yaml"
    prod_file.write_text(
        routes_file.read_text().replace("virtualEnvironment: qa", "virtualEnvironment: prod")
    )
    state = tmp_path / "state"
    async with running_platform(state) as (platform, _):
        await platform.publish(repo)
        await platform.apply_path(repo / "hack" / "environments")
        await platform.apply_path(annotated)
        await platform.wait_available("hello-world-main")

        health_text = await run_fox(state, "test", "send", str(health_file))
        health_json = await run_fox(state, "test", "send", str(health_file), "-o", "json")
        routes_text = await run_fox(state, "test", "send", str(routes_file))
        routes_json = await run_fox(state, "test", "send", str(routes_file), "--output", "json")
        prod_text = await run_fox(state, "test", "send", str(prod_file))
        missing = await run_fox(state, "test", "send", str(tmp_path / "nope.yaml"))

    assert health_text.returncode == 0, health_text.stdout + health_text.stderr
    assert health_text.stdout.startswith("status: 200\n")
    assert "content-type: application/json" in health_text.stdout
    assert '"status": "healthy"' in health_text.stdout
    health = json.loads(health_json.stdout)
    assert health["status"] == 200
    assert health["json"]["components"]["frontend"]["live"] is True
    assert json.loads(health["body"]) == health["json"]

    assert routes_text.returncode == 0, routes_text.stdout + routes_text.stderr
    lines = routes_text.stdout.splitlines()
    assert lines[0] == "status: 200"
    assert "io.kubefox.routes: hello-world-main in qa: passed" in lines
    header = next(line for line in lines if line.startswith("COMPONENT"))
    assert header.split() == ["COMPONENT", "ROUTE", "RULE", "REQUEST", "STATUS", "TIME", "NOTE"]
    row = lines[lines.index(header) + 1].split()
    assert row[:5] == ["frontend", "0", "Path(`/qa/hello`)", "GET", "/qa/hello"]
    assert row[5] == "200"
    assert row[6].endswith("ms")
    assert lines[-1] == ("1 routes: 1 2xx, 0 3xx, 0 4xx, 0 5xx, 0 errors, 0 skipped, 0 not tried")
    routes = json.loads(routes_json.stdout)
    assert routes_json.returncode == 0
    assert routes["status"] == 200
    assert_hello_route_answered(routes["json"], "qa")

    assert prod_text.returncode == 1
    assert prod_text.stdout.startswith("status: 404\n")
    assert "built-in events are on for virtual environment 'prod'" in prod_text.stderr
    assert "kubefox.xigxog.io/builtin-events" in prod_text.stderr
    assert missing.returncode == 1
    assert "cannot be read" in missing.stdout + missing.stderr
    assert "Traceback" not in missing.stdout + missing.stderr


async def test_the_platform_switch_turns_builtin_events_on_for_every_ve_and_off_again(
    tmp_path: Path,
) -> None:
    """spec.events.builtin: true answers them in qa and prod; false routes them again (404)."""
    repo = app_repo(EXAMPLES / "hello-world", tmp_path / "hello-world")
    async with running_platform(tmp_path / "state") as (platform, http):
        await platform.publish(repo)
        await platform.apply_path(repo / "hack" / "environments")
        await platform.wait_available("hello-world-main")
        name = platform.settings.name

        async def health_statuses() -> dict[str, int]:
            answers = {
                ve: await http.get("/", params=params("io.kubefox.health", ve))
                for ve in ("qa", "prod")
            }
            return {ve: answer.status_code for ve, answer in answers.items()}

        before = await health_statuses()
        await platform.apply_yaml(PLATFORM_WITH_BUILTIN_EVENTS.format(name=name, on="true"))
        await seen_by_httpsrv(platform)
        switched_on = await health_statuses()
        routes_prod = await http.get("/", params=params("io.kubefox.routes", "prod"))
        echo_prod: httpx.Response = await http.get(
            "/x", params={**params("io.kubefox.echo", "prod"), "a": "1"}
        )
        await platform.apply_yaml(PLATFORM_WITH_BUILTIN_EVENTS.format(name=name, on="false"))
        await seen_by_httpsrv(platform)
        switched_off = await health_statuses()
        routes_off = await http.get("/", params=params("io.kubefox.routes", "prod"))

    assert before == {"qa": 404, "prod": 404}
    assert switched_on == {"qa": 200, "prod": 200}
    assert routes_prod.status_code == 200, routes_prod.text
    assert_hello_route_answered(routes_prod.json(), "prod")
    assert echo_prod.status_code == 200
    assert echo_prod.json()["query"]["a"] == ["1"]
    assert switched_off == {"qa": 404, "prod": 404}
    assert routes_off.status_code == 404
