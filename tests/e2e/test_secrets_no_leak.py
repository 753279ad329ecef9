"""Secrets never leak: hello-world plus an HTTPAdapter with secrets, and the secret is nowhere.

The qa Environment and VirtualEnvironment carry distinctive secrets, applied
with the real ``fox apply``; an app calls an external service (a server this
test runs) through an HTTPAdapter whose headers are ``{{.Secrets.x}}``
templates, and another adapter whose URL holds a secret and whose service is
down. Requests are recorded and traced (``kf-sample=true``). Then every place
a secret could leak is searched: ``fox`` output, the API's JSON, the resource
store's documents, the spans and log lines in the telemetry store, the
recording, every byte of every file in the state directory (logs, the
JetStream store, the telemetry database) and the test's own captured output.
The only holder is the secrets backend, whose file is encrypted.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from kubefox.core.errors import NotFoundError
from kubefox.platform import EmbeddedPlatform
from kubefox.store import ResourceKey
from kubefox.store.secrets import MASK
from kubefox.telemetry.records import Trace
from tests.e2e.foxes import fox
from tests.e2e.gitapps import EXAMPLES, TEST_APPS, app_repo
from tests.e2e.platforms import running_platform

pytestmark = pytest.mark.e2e

TOKEN_ENV = "kfsecret-env-7c1e9b2d5a"  # noqa: S105 - fake; the VE's overrides it, never used
TOKEN_VE = "kfsecret-ve-4f8a0c6e31"  # noqa: S105 - a fake credential to search for
API_KEY = "kfsecret-key-93b5d1a7f0"
SECRETS = (TOKEN_ENV, TOKEN_VE, API_KEY)
#: A var, which the store keeps in clear: finding it shows the search reads the store's files.
VISIBLE = "kfvisible-var-5e2d8c"
KINDS = ("Environment", "VirtualEnvironment", "HTTPAdapter", "AppDeployment", "Platform")
_EXPORT_WAIT = 30.0


class _Service(http.server.BaseHTTPRequestHandler):
    """The external service: lets in only the caller with the VE's token and the key."""

    seen: list[dict[str, str]]

    def do_GET(self) -> None:
        headers = dict(self.headers.items())
        self.seen.append({"path": self.path, **headers})
        allowed = (
            headers.get("Authorization") == f"Bearer {TOKEN_VE}"
            and headers.get("X-Api-Key") == API_KEY
        )
        body = b"welcome" if allowed else b"go away"
        self.send_response(200 if allowed else 401)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test searches every output for the secrets."""


@contextmanager
def external_service() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A local HTTP server standing for the external service; its URL and what it received."""
    seen: list[dict[str, str]] = []
    handler = type("Service", (_Service,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def environments_yaml(service_url: str) -> str:
    """qa's Environment and VE with secrets, hello-world's vars, and the two adapters."""
    return f"""\
apiVersion: kubefox.xigxog.io/v1alpha1
kind: Environment
metadata:
  name: qa
spec:
  releasePolicy:
    type: Testing
data:
  vars:
    who: World
    subPath: qa
    serviceUrl: {service_url}
    marker: {VISIBLE}
  secrets:
    token: {TOKEN_ENV}
    apiKey: {API_KEY}
---
apiVersion: kubefox.xigxog.io/v1alpha1
kind: VirtualEnvironment
metadata:
  name: qa
spec:
  environment: qa
data:
  secrets:
    token: {TOKEN_VE}
---
apiVersion: kubefox.xigxog.io/v1alpha1
kind: HTTPAdapter
metadata:
  name: remote
spec:
  url: "{{{{.Vars.serviceUrl}}}}"
  headers:
    Authorization: "Bearer {{{{.Secrets.token}}}}"
    X-Api-Key: "{{{{.Secrets.apiKey}}}}"
---
apiVersion: kubefox.xigxog.io/v1alpha1
kind: HTTPAdapter
metadata:
  name: broken
spec:
  url: "http://127.0.0.1:{closed_port()}/{{{{.Secrets.apiKey}}}}"
  headers:
    Authorization: "Bearer {{{{.Secrets.token}}}}"
"""


def leaks(text: str) -> list[str]:
    """The secrets found in ``text``."""
    return [secret for secret in SECRETS if secret in text]


def file_leaks(root: Path) -> dict[str, list[str]]:
    """Every file under ``root`` holding a secret's bytes, with the secrets it holds."""
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits = [secret for secret in SECRETS if secret.encode() in data]
        if hits:
            found[str(path.relative_to(root))] = hits
    return found


async def run_fox(
    state: Path, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``fox ARGS`` against the platform in ``state``, without blocking its event loop."""
    return await asyncio.to_thread(fox, *args, cwd=cwd or state, state_dir=state)


async def whole_trace(platform: EmbeddedPlatform, event_id: str, spans: int) -> Trace:
    """The trace of ``event_id`` once it holds ``spans`` spans (components export late)."""
    async with asyncio.timeout(_EXPORT_WAIT):
        while True:
            await platform.flush_telemetry()
            try:
                found = await platform.telemetry.trace_for_event(event_id)
            except NotFoundError:
                found = None
            if found is not None and len(found.spans) >= spans:
                return found
            await asyncio.sleep(0.25)


async def recorded(state: Path, recording: str, count: int) -> None:
    """Return once ``count`` exchanges of ``recording`` are stored (written asynchronously)."""
    async with asyncio.timeout(15):
        while True:
            shown = await run_fox(state, "record", "list", "-o", "json")
            found = {r["id"]: r for r in json.loads(shown.stdout)["items"]}[recording]
            if found["requests"] >= count:
                return
            await asyncio.sleep(0.2)  # another process appends: nothing to wait on but the count


async def test_secrets_are_found_nowhere_but_in_the_secrets_backend(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The service gets the real values; fox, the API, store, traces, logs, recordings don't."""
    hello = app_repo(EXAMPLES / "hello-world", tmp_path / "hello-world")
    secretive = app_repo(TEST_APPS / "secretive", tmp_path / "secretive")
    state = tmp_path / "state"
    outputs: dict[str, str] = {}
    with external_service() as (service_url, seen):
        manifests = tmp_path / "environments.yaml"  # the user's file: outside the platform
        manifests.write_text(environments_yaml(service_url))
        async with running_platform(state) as (platform, http):
            await platform.publish(hello)
            await platform.publish(secretive)
            applied = await run_fox(state, "apply", "-f", str(manifests), "-o", "json")
            reapplied = await run_fox(state, "apply", "-f", str(manifests))
            await platform.wait_available("hello-world-main")
            await platform.wait_available("secretive-main")
            started = await run_fox(state, "record", "start", "-e", "qa", "-o", "json")
            recording = json.loads(started.stdout)["id"]

            traced = {"kf-ve": "qa", "kf-sample": "true"}
            hello_answer = await http.get(
                "/qa/hello", headers={**traced, "kf-dep": "hello-world-main"}
            )
            remote = await http.get("/qa/remote", headers={**traced, "kf-dep": "secretive-main"})
            broken = await http.get("/qa/broken", headers={**traced, "kf-dep": "secretive-main"})
            await recorded(state, recording, 3)
            await run_fox(state, "record", "stop", recording)

            remote_trace = await whole_trace(platform, remote.headers["kubefox-event-id"], 4)
            broken_trace = await whole_trace(platform, broken.headers["kubefox-event-id"], 4)
            log_lines = [
                *await platform.telemetry.logs(trace_id=remote_trace.trace_id),
                *await platform.telemetry.logs(trace_id=broken_trace.trace_id),
            ]
            outputs["traces"] = repr([remote_trace, broken_trace])
            outputs["trace logs"] = repr(log_lines)
            for args in (
                ("get", "environments", "-o", "json"),
                ("get", "environment", "qa", "-o", "yaml"),
                ("get", "ve", "qa", "-o", "json"),
                ("get", "ve"),
                ("get", "httpadapters", "-o", "yaml"),
                ("record", "show", recording, "-o", "json"),
                ("trace", "--last", "-o", "json"),
                ("logs", "--app", "secretive", "-n", "1000"),
                ("logs", "-n", "1000"),
            ):
                done = await run_fox(state, *args)
                outputs[f"fox {' '.join(args)}"] = done.stdout + done.stderr
            ca_file = platform.endpoints().get("caFile")
            verify = ssl.create_default_context(cafile=ca_file) if ca_file else True
            async with httpx.AsyncClient(base_url=platform.api_url, verify=verify) as api:
                for path in (
                    "/api/v1/resources/environments/qa",
                    "/api/v1/resources/virtualenvironments",
                    "/api/v1/resources/httpadapters",
                ):
                    outputs[f"GET {path}"] = (await api.get(path)).text
            store = platform.store
            documents = [
                stored.body for kind in KINDS for stored in await store.find(kind, namespace="")
            ] + [
                stored.body
                for kind in KINDS
                for stored in await store.find(kind, namespace=platform.settings.namespace)
            ]
            outputs["resource store"] = json.dumps(documents)
            env_values = await platform.resources.secrets.read(  # type: ignore[union-attr]
                ResourceKey("Environment", "qa"), version=None
            )
            ve_values = await platform.resources.secrets.read(  # type: ignore[union-attr]
                ResourceKey("VirtualEnvironment", "qa", platform.settings.namespace),
                version=None,
            )
            shown_env = json.loads(outputs["fox get ve qa -o json"])
    captured = capfd.readouterr()
    outputs["captured stdout"] = captured.out
    outputs["captured stderr"] = captured.err

    assert applied.returncode == 0, applied.stderr
    assert "unchanged" in reapplied.stdout, reapplied.stdout + reapplied.stderr
    assert (hello_answer.status_code, hello_answer.text) == (200, "👋 Hello World!")
    # the service received the real values, the VE's token winning over the Environment's
    assert (remote.status_code, remote.text) == (200, "remote said 200: welcome"), remote.text
    checks = [s for s in seen if s["path"].startswith("/check")]
    assert checks, seen
    assert checks[0]["Authorization"] == f"Bearer {TOKEN_VE}"
    assert checks[0]["X-Api-Key"] == API_KEY
    assert checks[0]["path"] == "/check?from=caller"
    assert broken.status_code == 500
    # shown masked, stored in the backend
    assert shown_env["data"]["secrets"] == {"token": MASK}
    assert env_values == {"token": TOKEN_ENV, "apiKey": API_KEY}
    assert ve_values == {"token": TOKEN_VE}
    assert {name: leaks(text) for name, text in outputs.items() if leaks(text)} == {}
    assert MASK in outputs["fox get environment qa -o yaml"]
    assert outputs["traces"].count("SpanRecord") >= 8
    # every byte of the state directory: logs, JetStream, telemetry database, recordings
    assert list(state.rglob("secrets.sealed"))  # the backend's own file: encrypted
    assert file_leaks(state) == {}
    assert VISIBLE in outputs["resource store"]
    assert any(VISIBLE.encode() in p.read_bytes() for p in state.rglob("*") if p.is_file())
