"""Built-in test events end to end: switched on for VE qa alone, answered by httpsrv there only."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.gitapps import EXAMPLES, app_repo
from tests.e2e.platforms import running_platform

pytestmark = pytest.mark.e2e

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
