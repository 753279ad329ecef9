"""``fox quickstart``: upstream's hello-world quickstart (§9.3), run by itself, step by step.

It does what a new user would type, in a directory it names, printing each
step as the ``fox`` command it stands for, and the ``curl`` commands that work
with what they answer (it makes those requests itself). If no platform runs,
it starts one in the background first, as ``fox up`` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.markup import escape

from kubefox.cli import daemon
from kubefox.cli.client import ApiClient, find_api_url, path
from kubefox.cli.errors import reports_errors, stderr
from kubefox.cli.init import commit, init_app
from kubefox.cli.options import DEFAULT_STATE_DIR, StateDirOption
from kubefox.cli.output import resource_table
from kubefox.cli.publish import publish_app
from kubefox.cli.release import release_ref
from kubefox.cli.resources import apply_resources, read_resources
from kubefox.core.errors import UnavailableError

_WAIT = 300.0


class _Tour:
    def __init__(self, client: ApiClient, http_url: str, app: Path) -> None:
        self.client = client
        self.http = httpx.Client(base_url=http_url, timeout=30)
        self.http_url = http_url
        self.app = app
        self.step = 0

    def say(self, title: str, command: str | None = None) -> None:
        self.step += 1
        stderr.print(f"\n[bold]Step {self.step}: {escape(title)}[/]")
        if command:
            stderr.print(f"  $ {escape(command)}")

    def curl(self, route: str, **params: str) -> str:
        response = self.http.get(route, params=params)
        query = "&".join(f"{k}={v}" for k, v in params.items())
        url = f"{self.http_url}{route}" + (f"?{query}" if query else "")
        stderr.print(f"  $ curl '{escape(url)}'")
        stderr.print(f"    {response.status_code} {escape(response.text.splitlines()[0])}")
        return response.text

    def publish(self, **kwargs: Any) -> dict[str, Any]:
        return publish_app(
            self.client,
            self.app,
            wait=_WAIT,
            say=lambda line: stderr.print(f"    {line}"),
            **kwargs,
        )

    def table(self, kind: str) -> None:
        items = self.client.get(path("resources", kind))["items"]
        typer.echo(resource_table(kind, items))

    def run(self) -> None:
        self.say(f"a new app in {self.app}", "fox init")
        init_app(self.app)
        self.say("the environments qa and prod", "fox apply -f hack/environments/")
        resources = read_resources([self.app / "hack" / "environments"])
        for result in apply_resources(self.client, resources):
            stderr.print(f"    {result['kind'].lower()}/{result['name']} {result['result']}")
        self.say("publish the app", "fox publish --wait 5m")
        self.publish()
        self.say("before any release, only an explicit context routes")
        self.curl("/qa/hello")
        self.curl("/qa/hello", **{"kf-dep": "hello-world-main", "kf-ve": "qa"})
        self.curl("/prod/hello", **{"kf-dep": "hello-world-main", "kf-ve": "prod"})
        self.say(
            "publish v1 and release it to qa",
            "fox publish --version v1 --create-tag && fox release v1 --virtual-env qa",
        )
        self.publish(version="v1", tag=True)
        release_ref(self.client, "v1", "qa", wait=_WAIT)
        self.curl("/qa/hello")
        self.say("change the greeting, commit, publish again", "git commit -am Hey && fox publish")
        frontend = self.app / "components" / "frontend" / "main.py"
        frontend.write_text(frontend.read_text().replace("👋 Hello", "👋 Hey"))
        commit(self.app, "Hey")
        self.publish()
        self.curl("/qa/hello")
        self.curl("/prod/hello", **{"kf-dep": "hello-world-v1", "kf-ve": "prod"})
        self.curl("/qa/hello", **{"kf-dep": "hello-world-main", "kf-ve": "qa"})
        self.curl("/prod/hello", **{"kf-dep": "hello-world-main", "kf-ve": "prod"})
        self.say(
            "promote: v2 to qa, v1 to prod",
            "fox publish --version v2 --create-tag && fox release v2 --virtual-env qa "
            "&& fox release v1 --virtual-env prod",
        )
        self.publish(version="v2", tag=True)
        release_ref(self.client, "v2", "qa", wait=_WAIT)
        release_ref(self.client, "v1", "prod", wait=_WAIT)
        self.curl("/prod/hello")
        self.curl("/qa/hello")
        self.say("what runs now", "fox get appdeployments; fox get ve; fox get rm")
        for kind in ("AppDeployment", "VirtualEnvironment", "ReleaseManifest"):
            self.table(kind)


@reports_errors
def quickstart(
    *,
    directory: Annotated[
        Path, typer.Argument(help="Where to create the app.", file_okay=False)
    ] = Path("kubefox-quickstart"),
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
) -> None:
    """Run upstream's hello-world quickstart by itself, printing each step and curl command.

    Starts the platform first if none runs.

    Example:
        fox quickstart /tmp/kubefox-quickstart
    """
    try:
        api_url = find_api_url(state_dir)
    except UnavailableError:
        stderr.print("starting the platform in the background (fox up)")
        daemon.start_background(state_dir, demo=None, timeout=120.0)
        api_url = find_api_url(state_dir)
    with ApiClient.connect(api=api_url, state_dir=state_dir, timeout=60) as client:
        status = client.get(path("status"))
        http_url = next(p["url"] for p in status["parts"] if p["name"] == "http")
        _Tour(client, http_url, directory.resolve()).run()
    stderr.print(
        "\n[green]✓[/] done: the quickstart ran end to end; the app is in " + str(directory)
    )
