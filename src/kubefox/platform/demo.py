"""Deploy an example app on a fresh platform, as ``make run`` does: the five-minute tour.

The app is copied into the state directory as a git repository with one
commit (what ``fox init`` will do for a new user), published, its
``hack/environments`` applied, and its deployment waited for. The result
names the requests that work, so the caller can print them.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path as FilePath

from kubefox.core.errors import InvalidError, RouteInvalidError
from kubefox.core.route_ast import Literal, Path
from kubefox.core.routes import parse, resolve
from kubefox.platform.embedded import EmbeddedPlatform
from kubefox.resources import AppDeployment, Data, Environment, VirtualEnvironment, merge_data

_GIT_IDENTITY = ["-c", "user.name=KubeFox", "-c", "user.email=kubefox@localhost"]


def _as_git_repo(source: FilePath, apps_dir: FilePath) -> FilePath:
    dest = apps_dir / source.resolve().name
    if not (source / "app.yaml").is_file():
        raise InvalidError(f"{source} is not an app: it has no app.yaml")
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", ".git"))
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "demo"]):
        subprocess.run(  # noqa: S603 - fixed git arguments, no shell
            ["git", *_GIT_IDENTITY, "-C", str(dest), *args],  # noqa: S607 - git from PATH
            check=True,
            capture_output=True,
        )
    return dest


async def deploy_demo(
    platform: EmbeddedPlatform,
    source: FilePath,
    *,
    progress: Callable[[str], None] | None = None,
    within: float = 60.0,
) -> list[str]:
    """Publish the app at ``source`` and apply its environments; return example URLs.

    Each URL is one that answers: for every virtual environment the app's
    ``hack/environments`` defines, its deployment's route with ``kf-dep`` and
    ``kf-ve`` set.
    """
    say = progress or (lambda _: None)
    repo = await asyncio.to_thread(_as_git_repo, source, platform.state_dir / "apps")
    result = await platform.publish(repo, progress=say)
    environments = repo / "hack" / "environments"
    applied = await platform.apply_path(environments) if environments.is_dir() else []
    say(f"applied {len(applied)} resources from hack/environments")
    await platform.wait_available(result.name, within=within)
    say(f"AppDeployment {result.name!r} is available")
    deployment = result.app_deployment
    urls = []
    for ve in (r for r in applied if isinstance(r, VirtualEnvironment)):
        env = next(
            (
                r
                for r in applied
                if isinstance(r, Environment) and r.metadata.name == ve.spec.environment
            ),
            None,
        )
        if env is None:
            continue
        data = merge_data(env.data, ve.data)
        for path in _literal_paths(deployment, data):
            query = f"kf-dep={result.name}&kf-ve={ve.metadata.name}"
            urls.append(f"{platform.http_url}{path}?{query}")
    return urls


def _literal_paths(deployment: AppDeployment, data: Data) -> list[str]:
    """The paths of routes that are a plain ``Path`` of literal segments once resolved."""
    paths = []
    for component in deployment.spec.components.values():
        for route in component.routes:
            try:
                node = parse(resolve(route.rule, data.vars))
            except RouteInvalidError:
                continue
            if isinstance(node, Path) and all(isinstance(s, Literal) for s in node.segments):
                paths.append(
                    "/" + "/".join(s.text for s in node.segments if isinstance(s, Literal))
                )
    return paths
