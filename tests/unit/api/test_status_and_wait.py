"""The status report and the availability wait: what fox status and fox publish --wait read."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

from kubefox.api import PREFIX
from kubefox.api.status import status_report
from kubefox.cli.client import PREFIX as CLIENT_PREFIX
from kubefox.resources import AppDeployment, AppDeploymentStatus, Condition
from kubefox.store.instance_records import InstanceRecord
from tests.unit.api.bench import Api
from tests.unit.resources.helpers import BACKEND_HASH, FRONTEND_HASH, hello_world


@dataclasses.dataclass(frozen=True, kw_only=True)
class State:
    """A scheduler's instance set, as the operator reports it."""

    app: str
    component: str
    hash: str
    status: str
    pid: int | None = 10
    restarts: int = 0
    last_exit_code: int | None = None
    since: datetime = datetime(2024, 2, 1, tzinfo=UTC)


class Scheduler:
    def __init__(self, *states: State) -> None:
        self.states = list(states)

    def instances(self) -> list[State]:
        return self.states


class Registry:
    def __init__(self, *records: InstanceRecord) -> None:
        self._records = list(records)

    def records(self) -> list[InstanceRecord]:
        return self._records


def record(name: str, hash_: str) -> InstanceRecord:
    key = f"demo.hello-world.{name}.{hash_}.i1"
    return InstanceRecord(
        key=key, platform="demo", app="hello-world", name=name, hash=hash_, id="i1"
    )


async def test_status_marks_running_and_registered_instances_healthy(api: Api) -> None:
    """An instance set is healthy when its process runs and an instance registered."""
    await api.typed.create(hello_world())
    await api.view.wait_for_revision(await api.store.revision())
    report = status_report(
        platform="demo",
        namespace="kubefox-demo",
        endpoints=lambda: {"nats": "nats://x", "http": "http://y", "api": None},
        view=api.view,
        registry=Registry(record("backend", BACKEND_HASH)),
        scheduler=Scheduler(
            State(app="hello-world", component="backend", hash=BACKEND_HASH, status="running"),
            State(app="hello-world", component="frontend", hash=FRONTEND_HASH, status="crashed"),
        ),
    )

    by_name = {c["component"]: c for c in report["components"]}
    assert by_name["backend"]["healthy"] is True
    assert by_name["backend"]["appDeployments"] == ["hello-world-main"]
    assert by_name["frontend"]["healthy"] is False
    assert {p["name"]: p["healthy"] for p in report["parts"]} == {
        "nats": True,
        "http": True,
        "api": False,
    }
    assert report["healthy"] is False


async def test_status_endpoint_answers_the_report(api: Api) -> None:
    """GET /api/v1/status works without a scheduler (nothing scheduled yet)."""
    response = await api.client.get("/api/v1/status")

    assert response.status_code == 200
    assert response.json()["components"] == []
    assert response.json()["platform"] == "demo"


async def test_wait_for_a_missing_app_deployment_is_not_found(api: Api) -> None:
    """Waiting for an AppDeployment that does not exist answers 404 at once."""
    response = await api.client.post("/api/v1/appdeployments/nope/wait")

    assert response.status_code == 404


async def test_wait_returns_once_available_at_the_current_generation(api: Api) -> None:
    """The wait ends when Available=True is observed at the deployment's generation."""
    created = await api.typed.create(hello_world())

    async def become_available() -> None:
        await asyncio.sleep(0)  # let the request start waiting first
        created.status = AppDeploymentStatus(
            conditions=[
                Condition(type="Available", status="True", reason="ComponentsAvailable",
                          observed_generation=1)
            ]
        )  # fmt: skip
        await api.typed.update(created)

    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(become_available())
        response = await api.client.post(
            "/api/v1/appdeployments/hello-world-main/wait", params={"timeoutSeconds": 5}
        )

    assert response.status_code == 200
    assert AppDeployment.model_validate(response.json()).metadata.name == "hello-world-main"


async def test_wait_reports_failure_problems(api: Api) -> None:
    """A deployment that failed answers 503 with its problems as errors."""
    created = await api.typed.create(hello_world())
    created.status = AppDeploymentStatus.model_validate(
        {
            "conditions": [
                {"type": "Progressing", "status": "False", "reason": "ProblemsFound",
                 "observedGeneration": 1},
            ],
            "problems": [
                {"type": "DependencyNotFound", "message": "dependency missing",
                 "causes": [{"kind": "AppDeployment", "name": "hello-world-main",
                             "path": "$.spec.components.frontend.dependencies.backend"}]}
            ],
        }
    )  # fmt: skip
    await api.typed.update(created)

    response = await api.client.post("/api/v1/appdeployments/hello-world-main/wait")

    assert response.status_code == 503
    assert response.json()["errors"][0]["path"] == (
        "$.spec.components.frontend.dependencies.backend"
    )


async def test_wait_times_out_with_a_hint(api: Api) -> None:
    """A deployment that never becomes available ends in a 504 naming how to look at it."""
    await api.typed.create(hello_world())

    response = await api.client.post(
        "/api/v1/appdeployments/hello-world-main/wait", params={"timeoutSeconds": 1}
    )

    assert response.status_code == 504
    assert "fox get appdeployment hello-world-main -o yaml" in response.json()["detail"]


def test_cli_and_api_agree_on_the_prefix() -> None:
    """The CLI keeps its own copy of the URL prefix (so it need not import the server)."""
    assert CLIENT_PREFIX == PREFIX
