"""Released routes: their data, their resolution, and what counts as a route conflict."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kubefox.resources.release_routes import (
    ActiveRoutes,
    release_vars,
    released_routes,
    route_conflicts,
    rule_key,
)
from tests.unit.releases.world import (
    app_deployment,
    apps,
    environment,
    run,
    virtual_environment,
)

T = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Host(`a.com`) && Path(`/x`)", "Path(`/x`) && Host(`a.com`)"),
        ("Path(`/x/{id}`)", "Path(`/x/{other}`)"),
        ("Path(`/x/{id}`)", "Path(`/x/{id:[^/]+}`)"),
        ("Method(`get`, `POST`)", "Method(`POST`, `GET`)"),
        ("Host(`A.com`)", "Host(`a.com`)"),
        ("Header(`x-tenant`, `t`)", "Header(`X-Tenant`, `t`)"),
        ("Path(`/a`) || (Path(`/b`) || Path(`/c`))", "Path(`/c`) || Path(`/b`) || Path(`/a`)"),
    ],
)
def test_rules_matching_the_same_requests_have_one_key(a: str, b: str) -> None:
    """Operand order, capture names and case do not make two rules different."""
    assert rule_key(a) == rule_key(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Path(`/qa/hello`)", "Path(`/prod/hello`)"),
        ("Path(`/x`)", "PathPrefix(`/x`)"),
        ("Path(`/x/{id:[0-9]+}`)", "Path(`/x/{id}`)"),
        ("PathPrefix(`/`)", "Path(`/qa/hello`)"),
        ("Path(`/x`) && Method(`GET`)", "Path(`/x`)"),
    ],
)
def test_rules_that_only_overlap_have_distinct_keys(a: str, b: str) -> None:
    """Overlap is for priority to decide; only the same rule is a conflict."""
    assert rule_key(a) != rule_key(b)


def test_release_vars_are_the_manifests_for_a_stable_release() -> None:
    """A release with a manifest resolves with the manifest's data, not the live data."""
    ve = virtual_environment("prod", release=apps())
    manifest = run(ve).manifest
    assert manifest is not None

    variables = release_vars(ve, environment("prod", who="X", subPath="changed"), manifest)

    assert variables == {"who": "Universe", "subPath": "prod"}


def test_release_vars_are_the_ve_over_the_environment_without_a_manifest() -> None:
    """Without a manifest the VE's vars win over the Environment's; no Environment, no vars."""
    ve = virtual_environment("qa", vars={"who": "Tester"})

    assert release_vars(ve, environment("qa")) == {"who": "Tester", "subPath": "qa"}
    assert release_vars(ve, None) is None


def test_released_routes_resolve_templates_and_skip_unresolvable_ones() -> None:
    """Each route is resolved with the release's vars; one missing a var is left out."""
    deployment = app_deployment()

    resolved = released_routes("qa", {"hello-world": deployment}, {"subPath": "qa"})
    unresolved = released_routes("qa", {"hello-world": deployment}, {})

    assert [(r.component, r.route_id, r.rule) for r in resolved] == [
        ("frontend", 0, "Path(`/qa/hello`)")
    ]
    assert unresolved == []


def test_same_rule_in_two_virtual_environments_conflicts_with_the_earlier_claim() -> None:
    """A route whose rule an earlier release serves conflicts with that release's route."""
    deployment = app_deployment()
    qa = released_routes("qa", {"hello-world": deployment}, {"subPath": "qa"})
    twin = released_routes("qa-twin", {"hello-world": deployment}, {"subPath": "qa"})

    conflicts = route_conflicts(
        twin, [ActiveRoutes(virtual_environment="qa", activation_time=T, routes=tuple(qa))]
    )

    assert [(mine.virtual_environment, owner.virtual_environment) for mine, owner in conflicts] == [
        ("qa-twin", "qa")
    ]


def test_routes_of_one_app_never_conflict_with_each_other() -> None:
    """Two components of one deployment may share a rule: priority and order decide, as upstream."""
    definitions = {
        "a": {"type": "KubeFox", "hash": "a" * 32, "routes": [{"id": 0, "rule": "Path(`/x`)"}]},
        "b": {"type": "KubeFox", "hash": "b" * 32, "routes": [{"id": 0, "rule": "Path(`/x`)"}]},
    }
    routes = released_routes("qa", {"app": app_deployment(definitions=definitions)}, {})

    assert route_conflicts(routes, []) == []


def test_two_apps_of_one_release_sharing_a_rule_conflict() -> None:
    """Two apps released together into one VE may not serve the same rule."""
    one = app_deployment("one-v1", app="one")
    two = app_deployment("two-v1", app="two")
    routes = released_routes("qa", {"one": one, "two": two}, {"subPath": "qa"})

    conflicts = route_conflicts(routes, [])

    assert [(mine.app, owner.app) for mine, owner in conflicts] == [("two", "one")]
