"""Upstream's example YAML (hello-world, graphql) loads unchanged and round-trips."""

from __future__ import annotations

import pytest

from kubefox.core.errors import InvalidError
from kubefox.resources import (
    Environment,
    HTTPAdapter,
    ReleasePolicyType,
    VirtualEnvironment,
    dump,
    load_yaml,
    parse_resource,
)
from tests.unit.resources.helpers import UPSTREAM

RESOURCE_FILES = sorted(
    str(path.relative_to(UPSTREAM)) for path in UPSTREAM.glob("*/*.yaml") if path.name != "app.yaml"
)


@pytest.mark.parametrize("name", RESOURCE_FILES)
def test_upstream_file_loads_unchanged(name: str) -> None:
    """Every upstream environment and adapter file loads without edits."""
    resources = load_yaml((UPSTREAM / name).read_text(), source=name)
    assert resources
    assert all(r.metadata.name for r in resources)


@pytest.mark.parametrize("name", RESOURCE_FILES)
def test_upstream_file_round_trips(name: str) -> None:
    """Dumping each loaded resource and parsing the dump gives the same resource."""
    for resource in load_yaml((UPSTREAM / name).read_text(), source=name):
        assert parse_resource(dump(resource)) == resource


def test_upstream_file_set_is_complete() -> None:
    """The copied upstream data holds the five resource files the tests rely on."""
    assert RESOURCE_FILES == [
        "graphql/dev.yaml",
        "graphql/http-adapter.yaml",
        "graphql/prod.yaml",
        "hello-world/prod.yaml",
        "hello-world/qa.yaml",
    ]


def test_hello_world_qa_reads_as_upstream_describes() -> None:
    """qa.yaml is a Testing Environment with who/subPath and a VE pointing at it."""
    env, ve = load_yaml((UPSTREAM / "hello-world/qa.yaml").read_text())
    assert isinstance(env, Environment)
    assert isinstance(ve, VirtualEnvironment)
    assert env.spec.release_policy.type is ReleasePolicyType.TESTING
    assert env.data.vars == {"who": "World", "subPath": "qa"}
    assert ve.spec.environment == "qa"


def test_graphql_dev_keeps_commented_out_var_absent() -> None:
    """graphql dev.yaml's commented-out subPath is absent; dev-john overrides both vars."""
    env, dev, dev_john = load_yaml((UPSTREAM / "graphql/dev.yaml").read_text())
    assert isinstance(env, Environment)
    assert env.data.vars == {"db": "dev"}
    assert isinstance(dev_john, VirtualEnvironment)
    assert dev_john.data.vars == {"db": "john", "subPath": "john"}
    assert dev.metadata.name == "dev"


def test_graphql_adapters_keep_templates_and_flags() -> None:
    """The HTTPAdapters keep their URL templates, insecureSkipVerify, default redirects."""
    graphql, hasura = load_yaml((UPSTREAM / "graphql/http-adapter.yaml").read_text())
    assert isinstance(graphql, HTTPAdapter)
    assert isinstance(hasura, HTTPAdapter)
    assert graphql.spec.url == "http://hasura-{{.Vars.db}}/v1/graphql"
    assert graphql.spec.insecure_skip_verify is True
    assert hasura.spec.follow_redirects == "Never"


@pytest.mark.parametrize("app", ["hello-world", "graphql"])
def test_app_descriptor_is_not_a_resource(app: str) -> None:
    """fox's app.yaml descriptor is rejected with a missing-kind error naming the kinds."""
    with pytest.raises(InvalidError) as caught:
        load_yaml((UPSTREAM / app / "app.yaml").read_text(), source="app.yaml")
    paths = [p["path"] for p in caught.value.details["problems"]]
    assert "$.kind" in paths
    assert "supported kinds: AppDeployment" in str(caught.value)
