"""Router: context resolution and caching, genesis routing, and the broker's zero-trust checks."""

from __future__ import annotations

from typing import Any

import pytest

from kubefox.core.errors import (
    ComponentMismatchError,
    DeadlineExceededError,
    InvalidError,
    NotFoundError,
    RouteNotFoundError,
    UnauthorizedError,
    UnsupportedAdapterError,
)
from kubefox.core.events import VAL_PATH_SUFFIX, Category, Component, EventContext
from kubefox.resources import parse_resource
from tests.unit.router.world import (
    APP,
    BACKEND_HASH,
    DEPLOYMENT,
    FRONTEND_HASH,
    PLATFORM,
    VE,
    Platform,
    app_deployment,
    components,
    context,
    environment,
    genesis,
    instance,
    request,
    virtual_environment,
)

FRONTEND = instance("frontend")
BACKEND = instance("backend")


def backend_with_routes(*, default_handler: bool = True) -> dict[str, Any]:
    """hello-world where backend also has its own route, ``/<subPath>/who``, id 1."""
    definitions = components()
    definitions["backend"]["defaultHandler"] = default_handler
    definitions["backend"]["routes"] = [
        {
            "id": 1,
            "rule": "Path(`/{{.Vars.subPath}}/who`)",
            "envVarSchema": {"subPath": {"required": True}},
        }
    ]
    return definitions


# -- contexts ------------------------------------------------------------------------


async def test_context_layers_the_virtual_environment_over_its_environment(
    platform: Platform,
) -> None:
    """VE vars win key by key; the rest comes from the Environment."""
    await platform.typed.apply(virtual_environment(who="Universe"))
    await platform.settle()

    resolved = platform.router.context(DEPLOYMENT, VE)

    assert resolved.data.vars == {"who": "Universe", "subPath": "qa"}
    assert resolved.app == APP
    assert resolved.problems == ()
    assert resolved.event_context == EventContext(
        platform=PLATFORM, virtual_environment=VE, app_deployment=DEPLOYMENT
    )


@pytest.mark.parametrize(
    ("deployment", "ve", "missing"),
    [
        ("nope", VE, 'AppDeployment "nope"'),
        (DEPLOYMENT, "nope", 'VirtualEnvironment "nope"'),
    ],
)
async def test_context_of_a_missing_resource_is_not_found(
    platform: Platform, deployment: str, ve: str, missing: str
) -> None:
    """An unknown deployment or virtual environment is a 404 naming it."""
    with pytest.raises(NotFoundError, match=missing):
        platform.router.context(deployment, ve)


async def test_context_of_a_virtual_environment_without_its_environment_is_not_found(
    platform: Platform,
) -> None:
    """A VE whose Environment does not exist cannot be resolved."""
    await platform.typed.apply(virtual_environment("orphan", environment="gone"))
    await platform.settle()

    with pytest.raises(NotFoundError, match='Environment "gone"'):
        platform.router.context(DEPLOYMENT, "orphan")


async def test_context_is_cached_while_the_resources_it_uses_are_unchanged(
    platform: Platform,
) -> None:
    """Changes to unrelated resources keep the resolved context (no rebuild)."""
    first = platform.router.context(DEPLOYMENT, VE)
    await platform.typed.apply(environment("prod", who="Universe", subPath="prod"))
    await platform.settle()

    assert platform.router.context(DEPLOYMENT, VE) is first
    assert platform.router.context(DEPLOYMENT, VE) is first


async def test_context_is_rebuilt_when_a_resource_it_uses_changes(platform: Platform) -> None:
    """A new revision of the VE (or Environment, or deployment) yields a fresh context."""
    first = platform.router.context(DEPLOYMENT, VE)
    await platform.typed.apply(virtual_environment(who="Universe"))
    await platform.settle()

    second = platform.router.context(DEPLOYMENT, VE)

    assert second is not first
    assert second.env_for("backend") == {"who": "Universe"}


async def test_context_with_problems_is_invalid_with_the_problem_list(platform: Platform) -> None:
    """A missing required var refuses the context: 400 with problems and their YAML."""
    await platform.typed.apply(environment(subPath="qa"))  # no "who"
    await platform.settle()

    with pytest.raises(InvalidError) as caught:
        platform.router.route_genesis(genesis("/qa/hello"))

    error = caught.value
    assert str(error) == "invalid: event context is invalid"
    assert [problem["type"] for problem in error.details["problems"]] == ["VarNotFound"]
    assert 'Var "who" not found but is required.' in error.details["problems_yaml"]
    assert "$.spec.components.backend.envVarSchema.who" in error.details["problems_yaml"]


# -- genesis events ------------------------------------------------------------------


async def test_genesis_with_deployment_and_ve_routes_to_the_matching_component(
    platform: Platform,
) -> None:
    """``/qa/hello`` with kf-dep/kf-ve reaches frontend's route 0 with frontend's env."""
    event = genesis("/qa/hello")

    routed = platform.router.route_genesis(event)
    matched = routed.matched(event)

    assert routed.target == Component(type="KubeFox", app=APP, name="frontend", hash=FRONTEND_HASH)
    assert routed.route_id == 0
    assert matched.route_id == 0
    assert matched.env == {"subPath": "qa"}
    assert matched.event.target == routed.target
    assert matched.event.context == context()
    assert matched.event.id == event.id


async def test_genesis_without_a_matching_route_is_route_not_found(platform: Platform) -> None:
    """A path no route of the deployment matches is a 404."""
    with pytest.raises(RouteNotFoundError):
        platform.router.route_genesis(genesis("/prod/hello"))


@pytest.mark.parametrize(("deployment", "ve"), [(DEPLOYMENT, ""), ("", VE)])
async def test_genesis_with_only_one_of_deployment_and_ve_is_invalid(
    platform: Platform, deployment: str, ve: str
) -> None:
    """kf-dep and kf-ve come together or not at all."""
    with pytest.raises(InvalidError, match="event context is invalid") as caught:
        platform.router.route_genesis(genesis("/qa/hello", deployment=deployment, ve=ve))
    assert "together" in caught.value.details["reason"]


async def test_genesis_without_context_is_route_not_found_until_releases_exist(
    platform: Platform,
) -> None:
    """Release routing is not built yet: an event without kf-dep/kf-ve matches nothing."""
    with pytest.raises(RouteNotFoundError):
        platform.router.route_genesis(genesis("/qa/hello", deployment="", ve=""))


async def test_genesis_prefix_route_hands_the_path_suffix_to_the_target(
    platform: Platform,
) -> None:
    """What a PathPrefix route leaves unmatched arrives as ``values.pathSuffix``."""
    definitions = components()
    definitions["frontend"]["routes"][0]["rule"] = "PathPrefix(`/{{.Vars.subPath}}/files`)"
    await platform.typed.apply(app_deployment(definitions=definitions))
    await platform.settle()
    event = genesis("/qa/files/a/b")

    matched = platform.router.route_genesis(event).matched(event)

    assert matched.event.values[VAL_PATH_SUFFIX] == "a/b"
    assert VAL_PATH_SUFFIX not in event.values


# -- component to component ----------------------------------------------------------


async def test_component_request_reaches_a_declared_dependency(platform: Platform) -> None:
    """frontend -> backend: backend's full identity, its default handler, only ``who``."""
    event = request(FRONTEND, "backend")

    routed = platform.router.route_component(event, sender=FRONTEND)
    matched = routed.matched(event)

    assert routed.target == Component(type="KubeFox", app=APP, name="backend", hash=BACKEND_HASH)
    assert matched.route_id == -1
    assert matched.env == {"who": "World"}
    assert matched.event.target == routed.target
    assert matched.event.context == context()


async def test_component_env_holds_only_the_vars_the_target_declared(platform: Platform) -> None:
    """Extra vars of the environment, and other components' vars, never reach the target."""
    await platform.typed.apply(environment(who="World", subPath="qa", region="eu"))
    await platform.settle()
    event = request(FRONTEND, "backend")

    matched = platform.router.route_component(event, sender=FRONTEND).matched(event)

    assert matched.env == {"who": "World"}


async def test_matched_event_carries_the_given_ttl_and_leaves_the_original_alone(
    platform: Platform,
) -> None:
    """The broker passes the TTL left after its own processing; the input is not changed."""
    event = request(FRONTEND, "backend")

    matched = platform.router.route_component(event, sender=FRONTEND).matched(event, ttl=5)

    assert matched.event.ttl == 5
    assert event.ttl > 5
    assert event.target == Component(type="KubeFox", name="backend")


@pytest.mark.parametrize(
    "claimed",
    [
        instance("frontend", id="someone-else"),
        instance("backend"),
        instance("frontend", hash="d" * 32),
    ],
    ids=["other-instance", "other-component", "other-hash"],
)
async def test_forged_source_is_unauthorized(platform: Platform, claimed: Component) -> None:
    """An event must claim exactly the instance whose subject it arrived on."""
    with pytest.raises(UnauthorizedError, match="does not match the sending component") as caught:
        platform.router.route_component(request(claimed, "backend"), sender=FRONTEND)
    assert caught.value.details["sender"] == FRONTEND.key


async def test_undeclared_dependency_is_unauthorized(platform: Platform) -> None:
    """backend never declared frontend as a dependency, so it may not call it."""
    with pytest.raises(UnauthorizedError, match='"backend" has not declared a dependency'):
        platform.router.route_component(request(BACKEND, "frontend"), sender=BACKEND)


async def test_adapter_dependency_is_not_supported_yet(platform: Platform) -> None:
    """A declared HTTPAdapter dependency is refused until adapters are routed."""
    adapter = parse_resource(
        {
            "apiVersion": "kubefox.xigxog.io/v1alpha1",
            "kind": "HTTPAdapter",
            "metadata": {"name": "httpbin"},
            "spec": {"url": "https://httpbin.org"},
        }
    )
    definitions = components()
    definitions["frontend"]["dependencies"]["httpbin"] = {"type": "HTTPAdapter"}
    await platform.typed.apply(adapter)
    await platform.typed.apply(app_deployment(definitions=definitions))
    await platform.settle()

    with pytest.raises(UnsupportedAdapterError):
        platform.router.route_component(request(FRONTEND, "httpbin"), sender=FRONTEND)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (instance("stranger"), "not part of app"),
        (instance("frontend", hash="d" * 32), "hash does not match"),
        (
            Component(
                type="KubeFox", app="other-app", name="frontend", hash=FRONTEND_HASH, id="i1"
            ),
            "not part of app",
        ),
    ],
    ids=["unknown-component", "other-hash", "other-app"],
)
async def test_source_outside_the_deployment_is_a_component_mismatch(
    platform: Platform, source: Component, reason: str
) -> None:
    """A sender must be one of the deployment's components at the deployment's hash."""
    with pytest.raises(ComponentMismatchError, match=reason):
        platform.router.route_component(request(source, "backend"), sender=source)


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        (Component(type="KubeFox", name="backend", hash="d" * 32), "hash does not match"),
        (Component(type="KubeFox", app="other-app", name="backend"), "not part of app"),
    ],
    ids=["other-hash", "other-app"],
)
async def test_target_outside_the_deployment_is_a_component_mismatch(
    platform: Platform, target: Component, reason: str
) -> None:
    """A target naming a version or app the deployment does not hold is refused (502)."""
    with pytest.raises(ComponentMismatchError, match=reason):
        platform.router.route_component(request(FRONTEND, target), sender=FRONTEND)


@pytest.mark.parametrize("ttl", [0, -1])
async def test_spent_ttl_is_deadline_exceeded(platform: Platform, ttl: int) -> None:
    """An event with no time left is not routed."""
    with pytest.raises(DeadlineExceededError):
        platform.router.route_component(request(FRONTEND, "backend", ttl=ttl), sender=FRONTEND)


@pytest.mark.parametrize("category", [Category.RESPONSE, Category.MESSAGE])
async def test_only_requests_are_routed_between_components(
    platform: Platform, category: Category
) -> None:
    """Responses go straight to the requester's inbox; the broker refuses to route them."""
    event = request(FRONTEND, "backend", category=category)
    with pytest.raises(InvalidError, match="only requests"):
        platform.router.route_component(event, sender=FRONTEND)


@pytest.mark.parametrize(
    ("event_context", "reason"),
    [
        (context(platform="elsewhere"), "platform does not match"),
        (context(deployment=""), "required"),
        (context(ve=""), "required"),
    ],
    ids=["other-platform", "no-deployment", "no-ve"],
)
async def test_component_request_with_a_bad_context_is_invalid(
    platform: Platform, event_context: EventContext, reason: str
) -> None:
    """The context must name this platform, a deployment and a virtual environment."""
    event = request(FRONTEND, "backend", event_context=event_context)
    with pytest.raises(InvalidError) as caught:
        platform.router.route_component(event, sender=FRONTEND)
    assert reason in caught.value.details["reason"]


async def test_component_request_without_a_target_is_invalid(platform: Platform) -> None:
    """A request must name whom it is for."""
    event = request(FRONTEND, Component())
    with pytest.raises(InvalidError, match="no target"):
        platform.router.route_component(event, sender=FRONTEND)


async def test_explicit_target_beats_other_components_routes(platform: Platform) -> None:
    """A request to backend that looks like frontend's route still goes to backend."""
    event = request(FRONTEND, "backend", values={"method": "GET", "path": "/qa/hello"})

    routed = platform.router.route_component(event, sender=FRONTEND)

    assert routed.target.name == "backend"
    assert routed.route_id == -1


async def test_target_route_is_chosen_before_its_default_handler(platform: Platform) -> None:
    """When the target's own route matches, that route handles the request."""
    await platform.typed.apply(app_deployment(definitions=backend_with_routes()))
    await platform.settle()
    event = request(FRONTEND, "backend", values={"method": "GET", "path": "/qa/who"})

    matched = platform.router.route_component(event, sender=FRONTEND).matched(event)

    assert matched.route_id == 1
    assert matched.env == {"subPath": "qa", "who": "World"}


async def test_target_falls_back_to_its_default_handler(platform: Platform) -> None:
    """No route of the target matches: its default handler (-1) takes the request."""
    await platform.typed.apply(app_deployment(definitions=backend_with_routes()))
    await platform.settle()
    event = request(FRONTEND, "backend", values={"method": "GET", "path": "/qa/other"})

    assert platform.router.route_component(event, sender=FRONTEND).route_id == -1


async def test_target_without_matching_route_or_default_handler_is_route_not_found(
    platform: Platform,
) -> None:
    """A target with routes only, none of them matching, cannot take the request."""
    await platform.typed.apply(
        app_deployment(definitions=backend_with_routes(default_handler=False))
    )
    await platform.settle()
    event = request(FRONTEND, "backend", values={"method": "GET", "path": "/qa/other"})

    with pytest.raises(RouteNotFoundError, match='"backend" has no matching route'):
        platform.router.route_component(event, sender=FRONTEND)


# -- the component request cache -----------------------------------------------------


async def test_a_repeated_request_gets_the_same_answer_without_a_second_lookup(
    platform: Platform,
) -> None:
    """While the view is unchanged, a request like the last one is answered from the cache."""
    first = platform.router.route_component(request(FRONTEND, "backend"), sender=FRONTEND)

    again = platform.router.route_component(request(FRONTEND, "backend"), sender=FRONTEND)

    assert again is first


@pytest.mark.parametrize(
    "claimed",
    [instance("frontend", id="someone-else"), instance("backend")],
    ids=["other-instance", "other-component"],
)
async def test_a_cached_route_still_checks_the_sender(
    platform: Platform, claimed: Component
) -> None:
    """A route known from an earlier request is no way around the identity check."""
    platform.router.route_component(request(FRONTEND, "backend"), sender=FRONTEND)

    with pytest.raises(UnauthorizedError, match="does not match the sending component"):
        platform.router.route_component(request(claimed, "backend"), sender=FRONTEND)


async def test_a_cached_route_still_checks_the_ttl_and_the_category(platform: Platform) -> None:
    """What differs from event to event is checked on every event."""
    platform.router.route_component(request(FRONTEND, "backend"), sender=FRONTEND)

    with pytest.raises(DeadlineExceededError):
        platform.router.route_component(request(FRONTEND, "backend", ttl=0), sender=FRONTEND)
    with pytest.raises(InvalidError, match="only requests"):
        platform.router.route_component(
            request(FRONTEND, "backend", category=Category.RESPONSE), sender=FRONTEND
        )


async def test_a_cached_route_follows_a_change_of_the_resources(platform: Platform) -> None:
    """A new revision of what the route was decided from decides it again."""
    event = request(FRONTEND, "backend")
    platform.router.route_component(event, sender=FRONTEND)
    await platform.typed.apply(virtual_environment(who="Universe"))
    await platform.settle()

    matched = platform.router.route_component(event, sender=FRONTEND).matched(event)

    assert matched.env == {"who": "Universe"}


async def test_a_cached_route_is_refused_once_the_dependency_is_gone(platform: Platform) -> None:
    """Dropping the dependency from the deployment refuses the very next request."""
    platform.router.route_component(request(FRONTEND, "backend"), sender=FRONTEND)
    definitions = components()
    definitions["frontend"]["dependencies"] = {}
    await platform.typed.apply(app_deployment(definitions=definitions))
    await platform.settle()

    with pytest.raises(UnauthorizedError, match="has not declared a dependency"):
        platform.router.route_component(request(FRONTEND, "backend"), sender=FRONTEND)


async def test_a_target_with_routes_is_matched_on_every_request(platform: Platform) -> None:
    """Only the checks are cached for a target with routes: each event is matched anew."""
    await platform.typed.apply(app_deployment(definitions=backend_with_routes()))
    await platform.settle()
    who = request(FRONTEND, "backend", values={"method": "GET", "path": "/qa/who"})
    other = request(FRONTEND, "backend", values={"method": "GET", "path": "/qa/other"})

    first = platform.router.route_component(who, sender=FRONTEND).route_id
    second = platform.router.route_component(other, sender=FRONTEND).route_id
    third = platform.router.route_component(who, sender=FRONTEND).route_id

    assert (first, second, third) == (1, -1, 1)


async def test_env_for_hands_out_a_copy_of_the_shared_env(platform: Platform) -> None:
    """Changing what env_for returned changes nothing the router sends."""
    event = request(FRONTEND, "backend")
    routed = platform.router.route_component(event, sender=FRONTEND)

    routed.context.env_for("backend")["who"] = "Mallory"

    assert routed.matched(event).env == {"who": "World"}
