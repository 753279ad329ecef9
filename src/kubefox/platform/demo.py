"""Deploy an example app on a fresh platform, as ``make run`` does: the five-minute tour.

The app is copied into the state directory as a git repository with one
commit (what ``fox init`` will do for a new user), published, its
``hack/environments`` applied, and its deployment waited for; then it is
tagged and published again as version ``v1``, and ``v1`` is released to every
virtual environment the app defines (§9.3 steps 1-7). The result names the
requests that work, with and without ``kf-dep``/``kf-ve``, so the caller can
print them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path as FilePath

from kubefox.core.errors import ConflictError, InvalidError, RouteInvalidError
from kubefox.core.route_ast import Literal, Path
from kubefox.core.routes import parse, resolve
from kubefox.platform.embedded import EmbeddedPlatform
from kubefox.publish import create_tag
from kubefox.releases import release, wait_released
from kubefox.resources import AppDeployment, Data, Environment, VirtualEnvironment, merge_data

#: The version the demo publishes and releases (upstream's quickstart step 7).
DEMO_VERSION = "v1"

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


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DemoUrls:
    """URLs that answer once the demo is deployed.

    Attributes:
        released: without parameters: the release of each virtual environment serves them.
        explicit: with ``kf-dep`` (the branch deployment) and ``kf-ve``.
    """

    released: tuple[str, ...]
    explicit: tuple[str, ...]


async def deploy_demo(
    platform: EmbeddedPlatform,
    source: FilePath,
    *,
    progress: Callable[[str], None] | None = None,
    within: float = 60.0,
) -> list[str]:
    """:func:`start_demo`, its URLs as one list: the explicit ones first, then the released."""
    urls = await start_demo(platform, source, progress=progress, within=within)
    return [*urls.explicit, *urls.released]


async def start_demo(
    platform: EmbeddedPlatform,
    source: FilePath,
    *,
    progress: Callable[[str], None] | None = None,
    within: float = 60.0,
) -> DemoUrls:
    """Publish the app at ``source``, apply its environments, release ``v1``; return URLs.

    Each URL is one that answers: for every virtual environment the app's
    ``hack/environments`` defines, its deployment's route without parameters
    (served by the release of ``v1``) and with ``kf-dep`` and ``kf-ve`` set.
    """
    say = progress or (lambda _: None)
    repo = await asyncio.to_thread(_as_git_repo, source, platform.state_dir / "apps")
    result = await platform.publish(repo, progress=say)
    environments = repo / "hack" / "environments"
    applied = await platform.apply_path(environments) if environments.is_dir() else []
    say(f"applied {len(applied)} resources from hack/environments")
    await platform.wait_available(result.name, within=within)
    say(f"AppDeployment {result.name!r} is available")
    versioned = await _publish_version(platform, repo, say)
    await platform.wait_available(versioned, within=within)
    deployment = result.app_deployment
    urls: list[str] = []
    released: list[str] = []
    for ve in (r for r in applied if isinstance(r, VirtualEnvironment)):
        name = ve.metadata.name
        written = await release(platform.resources, virtual_environment=name, ref=versioned)
        await wait_released(platform.view, name, timeout=within, release=written.spec.release)
        say(f"{versioned!r} is released to {name!r}")
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
            released.append(f"{platform.http_url}{path}")
    return DemoUrls(released=tuple(released), explicit=tuple(urls))


async def _publish_version(
    platform: EmbeddedPlatform, repo: FilePath, say: Callable[[str], None]
) -> str:
    """Tag HEAD ``v1`` and publish it; the AppDeployment's name.

    A state directory kept from an earlier run already holds ``<app>-v1``, from
    a commit of that run's copy: versioned deployments are immutable, so that
    one is released again.
    """
    await asyncio.to_thread(create_tag, repo, DEMO_VERSION)
    try:
        result = await platform.publish(repo, version=DEMO_VERSION, progress=say)
    except ConflictError as exc:
        name = str(exc.details.get("name", ""))
        if not name:
            raise
        say(f"{name!r} exists from an earlier run; releasing it as it is")
        return name
    return result.name


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
