"""validate_app_deployment and problems_to_yaml: upstream's problems, messages and paths."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from kubefox.core.errors import InvalidError
from kubefox.resources import (
    AppDeployment,
    Data,
    HTTPAdapter,
    Problem,
    ProblemSource,
    ProblemType,
    RouteSpec,
    adapter_template_refs,
    parse_resource,
    problems_to_yaml,
    validate_app_deployment,
)
from tests.unit.resources.helpers import hello_world, hello_world_document

HELLO_DATA = Data(vars={"who": "World", "subPath": "qa"})


def _app(document: dict[str, Any]) -> AppDeployment:
    app = parse_resource(document)
    assert isinstance(app, AppDeployment)
    return app


def _summary(problems: list[Problem]) -> list[tuple[str, str, str, str | None]]:
    return [(p.type, p.message, p.causes[0].path, p.causes[0].value) for p in problems]


def _adapter(name: str, url: str, **headers: str) -> HTTPAdapter:
    return HTTPAdapter.model_validate(
        {"metadata": {"name": name, "generation": 2}, "spec": {"url": url, "headers": headers}}
    )


def _with_backend(**backend: Any) -> AppDeployment:
    document = hello_world_document()
    document["spec"]["components"]["backend"].update(backend)
    return _app(document)


def _graphql() -> AppDeployment:
    server = {
        "type": "KubeFox",
        "hash": "a" * 32,
        "routes": [
            {"id": 0, "rule": "PathPrefix(`/{{.Vars.subPath}}/hasura/static`)"},
            {"id": 1, "rule": "Path(`/{{.Vars.subPath}}/hasura/heroes`)"},
            {"id": 2, "rule": "PathPrefix(`/{{.Vars.subPath}}/hasura`)"},
        ],
        "dependencies": {"graphql": {"type": "HTTPAdapter"}, "hasura": {"type": "HTTPAdapter"}},
    }
    document = hello_world_document(appName="graphql", components={"server": server})
    document["metadata"]["name"] = "graphql-main"
    return _app(document)


def test_validate_hello_world_with_qa_data_has_no_problems() -> None:
    """hello-world against qa's vars (who, subPath) is valid."""
    assert validate_app_deployment(hello_world(), HELLO_DATA) == []


def test_validate_missing_schema_var_is_var_not_found() -> None:
    """A required envVarSchema var that is absent gives VarNotFound at its schema path."""
    problems = validate_app_deployment(hello_world(), Data(vars={"subPath": "qa"}))
    assert _summary(problems) == [
        (
            "VarNotFound",
            'Var "who" not found but is required.',
            "$.spec.components.backend.envVarSchema.who",
            None,
        )
    ]
    cause = problems[0].causes[0]
    assert (cause.kind, cause.name, cause.observed_generation) == (
        "AppDeployment",
        "hello-world-main",
        1,
    )


def test_validate_missing_route_var_is_var_not_found() -> None:
    """A var used by a route template is always required, at path routes[<i>].<name>."""
    problems = validate_app_deployment(hello_world(), Data(vars={"who": "World"}))
    assert _summary(problems) == [
        (
            "VarNotFound",
            'Var "subPath" not found but is required.',
            "$.spec.components.frontend.routes[0].subPath",
            None,
        )
    ]


def test_validate_route_template_var_is_required_without_schema_entry() -> None:
    """A template var is required even if the route's envVarSchema does not list it."""
    document = hello_world_document()
    del document["spec"]["components"]["frontend"]["routes"][0]["envVarSchema"]
    problems = validate_app_deployment(_app(document), Data(vars={"who": "World"}))
    assert [p.causes[0].path for p in problems] == ["$.spec.components.frontend.routes[0].subPath"]


def test_validate_optional_schema_var_may_be_absent() -> None:
    """An envVarSchema var that is not required may be missing."""
    app = _with_backend(envVarSchema={"who": {"required": False}})
    assert validate_app_deployment(app, Data(vars={"subPath": "qa"})) == []


def test_validate_null_var_counts_as_missing() -> None:
    """A var set to null cannot satisfy a requirement."""
    problems = validate_app_deployment(hello_world(), Data(vars={"who": None, "subPath": "qa"}))
    assert [p.type for p in problems] == [ProblemType.VAR_NOT_FOUND]


def test_validate_wrong_type_is_var_wrong_type() -> None:
    """A var of another type than declared gives VarWrongType at .type with the wanted type."""
    app = _with_backend(envVarSchema={"who": {"type": "Number", "required": True}})
    problems = validate_app_deployment(app, HELLO_DATA)
    assert _summary(problems) == [
        (
            "VarWrongType",
            'Var "who" has wrong type; wanted "Number" got "String".',
            "$.spec.components.backend.envVarSchema.who.type",
            "Number",
        )
    ]


def test_validate_wrong_type_applies_to_route_vars() -> None:
    """A route var declared with a type is checked against it too."""
    document = hello_world_document()
    document["spec"]["components"]["frontend"]["routes"][0]["envVarSchema"]["subPath"]["type"] = (
        "Array"
    )
    problems = validate_app_deployment(_app(document), HELLO_DATA)
    assert _summary(problems) == [
        (
            "VarWrongType",
            'Var "subPath" has wrong type; wanted "Array" got "String".',
            "$.spec.components.frontend.routes[0].subPath.type",
            "Array",
        )
    ]


def test_validate_untyped_var_accepts_any_type() -> None:
    """Without a declared type any value satisfies the schema."""
    assert validate_app_deployment(hello_world(), Data(vars={"who": 42, "subPath": "qa"})) == []


def test_validate_missing_component_dependency_is_dependency_not_found() -> None:
    """A KubeFox dependency on a component the deployment lacks is DependencyNotFound."""
    app = _with_backend(dependencies={"cache": {"type": "KubeFox"}})
    problems = validate_app_deployment(app, HELLO_DATA)
    assert _summary(problems) == [
        (
            "DependencyNotFound",
            'Component "backend" dependency "cache" of type "KubeFox" not found.',
            "$.spec.components.backend.dependencies.cache",
            None,
        )
    ]


def test_validate_missing_adapter_is_dependency_not_found() -> None:
    """An HTTPAdapter dependency with no such adapter is DependencyNotFound."""
    app = _with_backend(dependencies={"graphql": {"type": "HTTPAdapter"}})
    problems = validate_app_deployment(app, HELLO_DATA, adapters={"other": _adapter("other", "u")})
    assert _summary(problems) == [
        (
            "DependencyNotFound",
            'Component "backend" dependency "graphql" of type "HTTPAdapter" not found.',
            "$.spec.components.backend.dependencies.graphql",
            None,
        )
    ]


def test_validate_unsupported_dependency_type_is_dependency_invalid() -> None:
    """A dependency of a type the platform does not run is DependencyInvalid."""
    app = _with_backend(dependencies={"db": {"type": "DBAdapter"}})
    problems = validate_app_deployment(app, HELLO_DATA)
    assert _summary(problems) == [
        (
            "DependencyInvalid",
            'Component "backend" dependency "db" has unsupported type "DBAdapter".',
            "$.spec.components.backend.dependencies.db.type",
            "DBAdapter",
        )
    ]


def test_validate_existing_adapter_checks_its_templates() -> None:
    """An adapter's URL and header templates need their vars and secrets in the data."""
    app = _with_backend(dependencies={"graphql": {"type": "HTTPAdapter"}})
    adapter = _adapter(
        "graphql",
        "http://hasura-{{.Vars.db}}/v1/graphql",
        Authorization="Bearer {{ .Secrets.token }}",
    )
    problems = validate_app_deployment(app, HELLO_DATA, adapters={"graphql": adapter})
    assert [(p.type, p.message, p.causes[0].kind, p.causes[0].path) for p in problems] == [
        ("VarNotFound", 'Var "db" not found but is required.', "HTTPAdapter", "$.spec.url"),
        (
            "VarNotFound",
            'Secret "token" not found but is required.',
            "HTTPAdapter",
            "$.spec.headers.Authorization",
        ),
    ]
    assert problems[0].causes[0].observed_generation == 2
    data = Data(vars={**HELLO_DATA.vars, "db": "dev"}, secrets={"token": "t"})
    assert validate_app_deployment(app, data, adapters={"graphql": adapter}) == []


def test_validate_unparsable_adapter_template_is_parse_error() -> None:
    """An adapter template that never closes its braces is a ParseError."""
    app = _with_backend(dependencies={"graphql": {"type": "HTTPAdapter"}})
    adapter = _adapter("graphql", "http://hasura-{{.Vars.db/v1")
    problems = validate_app_deployment(app, HELLO_DATA, adapters={"graphql": adapter})
    assert _summary(problems) == [
        (
            "ParseError",
            'HTTPAdapter "graphql" template could not be parsed: '
            '"{{" at column 15 is never closed.',
            "$.spec.url",
            "http://hasura-{{.Vars.db/v1",
        )
    ]


def test_validate_unparsable_route_is_parse_error() -> None:
    """A route rule that does not parse (built without validation) is a ParseError."""
    app = hello_world()
    frontend = app.spec.components["frontend"]
    bad_route = RouteSpec.model_construct(id=0, rule="Path(`/{{.Vars.x`)", env_var_schema={})
    frontend.routes = [bad_route]
    problems = validate_app_deployment(app, HELLO_DATA)
    assert [(p.type, p.causes[0].path) for p in problems] == [
        ("ParseError", "$.spec.components.frontend.routes[0].rule")
    ]


def test_validate_without_data_checks_dependencies_only() -> None:
    """With data None (the operator) var checks are skipped and dependencies still checked."""
    app = _with_backend(dependencies={"graphql": {"type": "HTTPAdapter"}})
    problems = validate_app_deployment(app, None)
    assert [p.type for p in problems] == [ProblemType.DEPENDENCY_NOT_FOUND]
    assert validate_app_deployment(hello_world(), None) == []


def test_validate_orders_problems_by_component_then_kind() -> None:
    """Problems come per component in name order: schema, routes, then dependencies."""
    app = _with_backend(dependencies={"cache": {"type": "KubeFox"}})
    problems = validate_app_deployment(app, Data())
    assert [p.causes[0].path for p in problems] == [
        "$.spec.components.backend.envVarSchema.who",
        "$.spec.components.backend.dependencies.cache",
        "$.spec.components.frontend.routes[0].subPath",
    ]


def test_problems_to_yaml_matches_upstream_invalid_context_body() -> None:
    """The graphql tutorial's invalid-context problems render exactly as upstream's body."""
    problems = validate_app_deployment(_graphql(), Data(vars={"db": "dev"}), adapters=None)
    assert problems_to_yaml(problems) == textwrap.dedent(
        """\
        - causes:
          - kind: AppDeployment
            name: graphql-main
            observedGeneration: 1
            path: $.spec.components.server.routes[0].subPath
          message: Var "subPath" not found but is required.
          type: VarNotFound
        - causes:
          - kind: AppDeployment
            name: graphql-main
            observedGeneration: 1
            path: $.spec.components.server.routes[1].subPath
          message: Var "subPath" not found but is required.
          type: VarNotFound
        - causes:
          - kind: AppDeployment
            name: graphql-main
            observedGeneration: 1
            path: $.spec.components.server.routes[2].subPath
          message: Var "subPath" not found but is required.
          type: VarNotFound
        - causes:
          - kind: AppDeployment
            name: graphql-main
            observedGeneration: 1
            path: $.spec.components.server.dependencies.graphql
          message: Component "server" dependency "graphql" of type "HTTPAdapter" not found.
          type: DependencyNotFound
        - causes:
          - kind: AppDeployment
            name: graphql-main
            observedGeneration: 1
            path: $.spec.components.server.dependencies.hasura
          message: Component "server" dependency "hasura" of type "HTTPAdapter" not found.
          type: DependencyNotFound
        """
    )


def test_problems_to_yaml_includes_value_when_present() -> None:
    """A cause's value is rendered after its path only when it is set."""
    problem = Problem(
        type=ProblemType.VAR_WRONG_TYPE,
        message='Var "who" has wrong type; wanted "Number" got "String".',
        causes=[
            ProblemSource(
                kind="AppDeployment",
                name="hello-world-main",
                observed_generation=3,
                path="$.spec.components.backend.envVarSchema.who.type",
                value="Number",
            )
        ],
    )
    assert problems_to_yaml([problem]) == textwrap.dedent(
        """\
        - causes:
          - kind: AppDeployment
            name: hello-world-main
            observedGeneration: 3
            path: $.spec.components.backend.envVarSchema.who.type
            value: Number
          message: Var "who" has wrong type; wanted "Number" got "String".
          type: VarWrongType
        """
    )


def test_problems_to_yaml_of_nothing_is_empty_list() -> None:
    """No problems render as an empty YAML list."""
    assert problems_to_yaml([]) == "[]\n"


def test_problem_type_has_every_upstream_value() -> None:
    """ProblemType holds all seventeen upstream problem types."""
    assert sorted(ProblemType) == [
        "AdapterNotFound",
        "AppDeploymentFailed",
        "AppDeploymentNotFound",
        "DependencyInvalid",
        "DependencyNotFound",
        "DeploymentFailed",
        "DeploymentNotFound",
        "DeploymentUnavailable",
        "ParseError",
        "PolicyViolation",
        "ReleaseManifestFailed",
        "ReleaseManifestNotFound",
        "ReleaseManifestUnavailable",
        "RouteConflict",
        "VarNotFound",
        "VarWrongType",
        "VersionConflict",
    ]


def test_adapter_template_refs_reads_vars_env_and_secrets() -> None:
    """Vars, Env (a synonym of Vars) and Secrets references are found once each, in order."""
    text = "http://{{.Vars.db}}/{{ .Env.db }}/{{.Secrets.token}}/{{.Env.path}}"
    assert adapter_template_refs(text) == [("Vars", "db"), ("Secrets", "token"), ("Vars", "path")]


def test_adapter_template_refs_rejects_unknown_template() -> None:
    """A template other than the three reference forms is an InvalidError."""
    with pytest.raises(InvalidError, match=r'"\{\{\.Values\.x\}\}" is not'):
        adapter_template_refs("http://{{.Values.x}}/")
