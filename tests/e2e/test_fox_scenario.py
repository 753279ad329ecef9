"""The hello-world scenario of upstream's quickstart (§9.3 steps 1-10), driven through ``fox``.

The real ``fox`` executable, in a temporary directory, against a platform it
started with ``fox up``: init, apply the environments, publish, call with an
explicit context, publish v1 and release it, change the frontend, promote,
and check the final inventory with ``fox get``. Every output the scenario
names is checked; requests go to httpsrv over HTTP.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.foxes import fox, running_fox
from tests.e2e.gitapps import commit_all, git

pytestmark = pytest.mark.e2e


def conditions(resource: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """``{type: (status, reason)}`` of a resource's status conditions."""
    return {
        c["type"]: (c["status"], c["reason"])
        for c in resource.get("status", {}).get("conditions", [])
    }


def test_fox_runs_the_hello_world_scenario(tmp_path: Path) -> None:
    """From nothing to two releases with fox alone: §9.3 steps 1 to 10."""
    state = tmp_path / "state"
    app = tmp_path / "kubefox-quickstart"
    app.mkdir()

    def run(*args: str) -> str:
        return fox(*args, cwd=app, state_dir=state, check=True).stdout

    def get(kind: str, name: str | None = None) -> Any:
        return json.loads(run("get", kind, *([name] if name else []), "-o", "json"))

    with (
        running_fox(state, tmp_path) as up,
        httpx.Client(base_url=up["endpoints"]["http"], timeout=30) as http,
    ):

        def hello(path: str, **params: str) -> httpx.Response:
            return http.get(path, params=params)

        # 1. init: the app's files and a git repository with one commit
        init = fox("init", cwd=app, state_dir=state, check=True)
        log = git(app, "log", "--format=%s")

        # 2. environments
        applied = run("apply", "-f", "hack/environments/")

        # 3. publish and wait
        published = fox("publish", "--wait", "5m", cwd=app, state_dir=state, check=True)
        main = get("appdeployment", "hello-world-main")

        # 5. before any release
        no_release = hello("/qa/hello")
        no_ve = hello("/qa/hello", **{"kf-dep": "hello-world-main"})

        # 6. explicit context
        qa = hello("/qa/hello", **{"kf-dep": "hello-world-main", "kf-ve": "qa"})
        prod = hello("/prod/hello", **{"kf-dep": "hello-world-main", "kf-ve": "prod"})
        crossed = hello("/qa/hello", **{"kf-dep": "hello-world-main", "kf-ve": "prod"})
        as_json = http.get(
            "/qa/hello",
            params={"kf-dep": "hello-world-main", "kf-ve": "qa"},
            headers={"accept": "application/json"},
        )

        # 7. versioned publish, release to qa
        v1 = fox("publish", "--version", "v1", "--create-tag", cwd=app, state_dir=state, check=True)
        released_v1 = json.loads(
            run("release", "v1", "--virtual-env", "qa", "--wait", "1m", "-o", "json")
        )
        qa_released = hello("/qa/hello")

        # 8. change the frontend, republish in place
        frontend = app / "components" / "frontend" / "main.py"
        frontend.write_text(frontend.read_text().replace("👋 Hello", "👋 Hey"))
        commit_all(app, "Hey")
        republished = fox("publish", "--wait", "5m", cwd=app, state_dir=state, check=True)
        main_after = get("appdeployment", "hello-world-main")
        matrix = {
            "/qa/hello": hello("/qa/hello").text,
            "v1 prod": hello("/prod/hello", **{"kf-dep": "hello-world-v1", "kf-ve": "prod"}).text,
            "main qa": hello("/qa/hello", **{"kf-dep": "hello-world-main", "kf-ve": "qa"}).text,
            "main prod": hello(
                "/prod/hello", **{"kf-dep": "hello-world-main", "kf-ve": "prod"}
            ).text,
        }
        status_after_change = json.loads(run("status", "-o", "json"))

        # 9. promote: v2 to qa, v1 to prod
        run("publish", "--version", "v2", "--create-tag", "--wait", "5m")
        qa_v2 = json.loads(
            run("release", "v2", "--virtual-env", "qa", "--wait", "1m", "-o", "json")
        )
        prod_v1 = json.loads(
            run("release", "v1", "--virtual-env", "prod", "--wait", "1m", "-o", "json")
        )
        promoted = {"prod": hello("/prod/hello").text, "qa": hello("/qa/hello").text}
        history = json.loads(run("release", "history", "qa", "-o", "json"))

        # 10. the final inventory, as people read it and as scripts do
        tables = {kind: run("get", kind) for kind in ("appdep", "env", "rm", "ve", "platform")}
        deployments = get("appdeployments")["items"]
        manifests = get("releasemanifests")["items"]
        ves = {ve["metadata"]["name"]: ve for ve in get("ve")["items"]}
        status = json.loads(run("status", "-o", "json"))

    # 1
    assert "created the hello-world app" in init.stderr
    assert log == "And so it begins..."
    assert (app / "app.yaml").is_file()
    # 2
    assert applied.splitlines() == [
        "environment/prod created",
        "virtualenvironment/prod created",
        "environment/qa created",
        "virtualenvironment/qa created",
    ]
    # 3
    assert published.stdout.strip() == "hello-world-main"
    assert "backend" in published.stderr
    assert "uploaded" in published.stderr
    labels = main["metadata"]["labels"]
    assert labels["kubefox.xigxog.io/app-branch"] == "main"
    assert labels["kubefox.xigxog.io/app-commit"] == main["spec"]["commit"]
    assert labels["kubefox.xigxog.io/app-commit-short"] == main["spec"]["commit"][:7]
    assert conditions(main)["Available"] == ("True", "ComponentsAvailable")
    assert conditions(main)["Progressing"] == ("False", "ComponentsDeployed")
    # 5
    assert (no_release.status_code, no_release.text) == (404, "route not found")
    assert no_release.headers["kubefox-platform"] == "demo"
    assert no_release.headers["kubefox-event-id"]
    assert no_release.headers["kubefox-adapter"]
    assert no_ve.status_code == 400
    assert no_ve.text.startswith("invalid: event context is invalid")
    # 6
    assert (qa.status_code, qa.text) == (200, "👋 Hello World!")
    assert qa.headers["kubefox-virtual-environment"] == "qa"
    assert qa.headers["kubefox-app-deployment"] == "hello-world-main"
    assert qa.headers["content-type"] == "text/plain; charset=UTF-8"
    assert prod.text == "👋 Hello Universe!"
    assert (crossed.status_code, crossed.text) == (404, "route not found")
    assert as_json.json() == {"msg": "👋 Hello World!"}
    # 7
    assert v1.stdout.strip() == "hello-world-v1"
    assert v1.stderr.count("exists, skipping") == 2
    assert git(app, "tag") == "v1\nv2"
    assert released_v1["spec"]["release"]["apps"]["hello-world"] == {
        "appDeployment": "hello-world-v1",
        "version": "v1",
    }
    active = released_v1["status"]["activeRelease"]
    assert active["id"]
    assert active["requestTime"]
    assert active["activationTime"]
    assert "releaseManifest" not in active
    assert conditions(released_v1)["ActiveReleaseAvailable"] == ("True", "ContextAvailable")
    assert conditions(released_v1)["ReleasePending"] == ("False", "ReleaseActivated")
    assert qa_released.text == "👋 Hello World!"
    # 8
    assert "backend" in republished.stderr
    assert re.search(r"backend: \w+ exists, skipping", republished.stderr)
    assert re.search(r"frontend: \w+ uploaded", republished.stderr)
    assert main_after["metadata"]["generation"] == 2
    assert matrix == {
        "/qa/hello": "👋 Hello World!",
        "v1 prod": "👋 Hello Universe!",
        "main qa": "👋 Hey World!",
        "main prod": "👋 Hey Universe!",
    }
    running = sorted(c["component"] for c in status_after_change["components"])
    assert running == ["backend", "frontend", "frontend"]
    # 9
    assert qa_v2["status"]["activeRelease"]["apps"]["hello-world"]["appDeployment"] == (
        "hello-world-v2"
    )
    assert history["releases"][0]["apps"]["hello-world"]["appDeployment"] == "hello-world-v1"
    assert history["releases"][0]["archiveReason"] == "Superseded"
    manifest = prod_v1["status"]["activeRelease"]["releaseManifest"]
    assert re.fullmatch(r"prod-\d+-\d{8}-\d{6}", manifest)
    assert promoted == {"prod": "👋 Hello Universe!", "qa": "👋 Hey World!"}
    # 10
    assert {d["metadata"]["name"]: d["spec"].get("version") for d in deployments} == {
        "hello-world-main": None,
        "hello-world-v1": "v1",
        "hello-world-v2": "v2",
    }
    assert all(conditions(d)["Available"][0] == "True" for d in deployments)
    assert [m["metadata"]["name"] for m in manifests] == [manifest]
    assert ves["prod"]["status"]["activeRelease"]["releaseManifest"] == manifest
    assert "releaseManifest" not in ves["qa"]["status"]["activeRelease"]
    assert len(tables["appdep"].splitlines()) == 4
    assert len(tables["env"].splitlines()) == 3
    assert len(tables["rm"].splitlines()) == 2
    assert manifest in tables["ve"]
    assert tables["platform"].splitlines()[1].split()[:4] == ["demo", "True", "30", "5242880"]
    assert len(status["components"]) == 3
    assert all(c["healthy"] for c in status["components"])
    assert status["healthy"]


def test_fox_quickstart_runs_the_scenario_by_itself(tmp_path: Path) -> None:
    """fox quickstart starts a platform, runs every step and prints curl commands that work."""
    state = tmp_path / "state"
    try:
        done = fox("quickstart", str(tmp_path / "qs"), cwd=tmp_path, state_dir=state)
    finally:
        info = json.loads((state / "run.json").read_text()) if (state / "run.json").exists() else {}
        fox("down", cwd=tmp_path, state_dir=state)
        if info:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(info["pid"]), signal.SIGKILL)

    assert done.returncode == 0, done.stderr
    assert "starting the platform in the background" in done.stderr
    assert "200 👋 Hey World!" in done.stderr
    assert "200 👋 Hello Universe!" in done.stderr
    assert re.search(r"curl 'http://127\.0\.0\.1:\d+/qa/hello'\n    200 👋 Hey World!", done.stderr)
    assert "hello-world-v2" in done.stdout
    assert re.search(r"prod-\d+-\d{8}-\d{6}", done.stdout)
