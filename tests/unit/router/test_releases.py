"""Release routing: requests without kf-dep/kf-ve go to the active release that serves them."""

from __future__ import annotations

import msgspec
import pytest

from kubefox.core.errors import InvalidError, RouteNotFoundError
from kubefox.core.events import EventContext
from kubefox.resources import AppDeployment, VirtualEnvironment
from tests.unit.releases import world as releases
from tests.unit.router.world import PLATFORM, Platform, genesis, instance, request

QA_HELLO = "/qa/hello"


async def release_into(
    platform: Platform,
    ve: str,
    *,
    env: str | None = None,
    deployment: AppDeployment | None = None,
    activated_after: float = 0,
    vars: dict[str, str] | None = None,
) -> VirtualEnvironment:
    """Write ``ve`` with ``deployment`` (hello-world-v1) active, as the operator would."""
    deployment = deployment or releases.app_deployment()
    await platform.typed.apply(deployment)
    stored = await platform.typed.get(AppDeployment, deployment.metadata.name)
    await platform.typed.update(stored.model_copy(update={"status": deployment.status}))
    environment = env or ve
    if environment != "qa":
        await platform.typed.apply(releases.environment(environment))
    wanted = releases.virtual_environment(
        ve,
        env=environment,
        release=releases.apps(deployment.metadata.name, deployment.spec.version),
    )
    outcome = releases.run(
        wanted,
        env=releases.environment(environment),
        deployments=[deployment],
        now=releases.later(activated_after),
    )
    if outcome.manifest is not None:
        await platform.typed.create(outcome.manifest)
    fresh = wanted.model_copy(deep=True)
    fresh.metadata.resource_version = None
    if vars is not None:
        fresh.data.vars.update(vars)
    written = await platform.typed.apply(fresh)
    result = await platform.typed.update(written.model_copy(update={"status": outcome.status}))
    await platform.settle()
    return result


async def test_request_without_context_routes_into_the_active_release(platform: Platform) -> None:
    """/qa/hello with no kf-dep/kf-ve reaches the frontend of the release active in qa."""
    await release_into(platform, "qa")

    routed = platform.router.route_genesis(genesis(QA_HELLO, deployment="", ve=""))

    assert routed.context.event_context == EventContext(
        platform=PLATFORM, virtual_environment="qa", app_deployment="hello-world-v1"
    )
    assert routed.target.name == "frontend"
    assert routed.route_id == 0


async def test_stable_release_routes_with_its_manifest(platform: Platform) -> None:
    """A Stable release carries its manifest in the context and keeps its data after edits."""
    await release_into(platform, "prod")
    await platform.typed.apply(releases.environment("prod", who="Nobody", subPath="moved"))
    await platform.settle()

    routed = platform.router.route_genesis(genesis("/prod/hello", deployment="", ve=""))

    manifest = routed.context.event_context.release_manifest
    assert manifest.startswith("prod-")
    assert routed.context.data.vars["who"] == "Universe"
    with pytest.raises(RouteNotFoundError):
        platform.router.route_genesis(genesis("/moved/hello", deployment="", ve=""))


async def test_unavailable_deployments_are_left_out(platform: Platform) -> None:
    """A released deployment whose Available condition is False does not serve."""
    await release_into(platform, "qa")
    stored = await platform.typed.get(AppDeployment, "hello-world-v1")
    down = releases.app_deployment(
        status={"conditions": [{"type": "Available", "status": "False", "reason": "X"}]}
    ).status
    await platform.typed.update(stored.model_copy(update={"status": down}))
    await platform.settle()

    with pytest.raises(RouteNotFoundError):
        platform.router.route_genesis(genesis(QA_HELLO, deployment="", ve=""))


async def test_earliest_activated_release_serves_a_shared_rule(platform: Platform) -> None:
    """Of two releases resolving a route to one rule, the one activated first serves it."""
    await release_into(platform, "qa-late", env="qa", activated_after=60)
    await release_into(platform, "qa", activated_after=0)

    routed = platform.router.route_genesis(genesis(QA_HELLO, deployment="", ve=""))

    assert routed.context.event_context.virtual_environment == "qa"


async def test_no_matching_release_is_route_not_found(platform: Platform) -> None:
    """Without a release that serves the path the answer stays 404 route not found."""
    await release_into(platform, "qa")

    with pytest.raises(RouteNotFoundError):
        platform.router.route_genesis(genesis("/nowhere", deployment="", ve=""))


async def test_release_manifest_without_deployment_and_ve_is_invalid(platform: Platform) -> None:
    """A manifest alone is not a context: 400 event context is invalid."""
    event = msgspec.structs.replace(
        genesis(QA_HELLO, deployment="", ve=""),
        context=EventContext(platform=PLATFORM, release_manifest="prod-1-20240101-000000"),
    )

    with pytest.raises(InvalidError, match="event context is invalid"):
        platform.router.route_genesis(event)


async def test_matcher_is_rebuilt_when_a_release_changes(platform: Platform) -> None:
    """A release activated after the first request is routable at once; nothing is stale."""
    with pytest.raises(RouteNotFoundError):
        platform.router.route_genesis(genesis(QA_HELLO, deployment="", ve=""))

    await release_into(platform, "qa")
    routed = platform.router.route_genesis(genesis(QA_HELLO, deployment="", ve=""))

    assert routed.context.event_context.app_deployment == "hello-world-v1"


async def test_rebuild_reuses_compiled_routes_of_unchanged_releases(platform: Platform) -> None:
    """A view change that touches no release recompiles nothing (routes are the same objects)."""
    await release_into(platform, "qa")
    before = platform.router.releases.matcher.routes
    await platform.typed.apply(releases.environment("unrelated"))
    await platform.settle()

    after = platform.router.releases.matcher.routes

    assert platform.router.releases.rebuilds >= 2
    assert [id(route) for route in after] == [id(route) for route in before]


async def test_broker_routes_with_the_manifest_data_of_a_stable_release(platform: Platform) -> None:
    """A component request in a manifest context gets the manifest's vars, not the live ones."""
    await release_into(platform, "prod")
    routed_genesis = platform.router.route_genesis(genesis("/prod/hello", deployment="", ve=""))
    await platform.typed.apply(releases.environment("prod", who="Nobody", subPath="prod"))
    await platform.settle()
    frontend = instance("frontend", hash=releases.FRONTEND_HASH)

    routed = platform.router.route_component(
        request(frontend, "backend", event_context=routed_genesis.context.event_context),
        sender=frontend,
    )

    assert routed.context.event_context.release_manifest.startswith("prod-")
    assert routed.matched(request(frontend, "backend")).env == {"who": "Universe"}
