"""The loader: multi-document YAML, every error with its path, kinds and short names."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from kubefox.core.errors import InvalidError
from kubefox.resources import (
    RESOURCE_KINDS,
    AppDeployment,
    Environment,
    VirtualEnvironment,
    dump,
    kind_for,
    load_yaml,
    parse_resource,
)
from tests.unit.resources.helpers import hello_world_document

ENV = """\
apiVersion: kubefox.xigxog.io/v1alpha1
kind: Environment
metadata:
  name: prod
spec:
  releasePolicy:
    type: Stable
data:
  vars:
    who: Universe
"""

VE = """\
apiVersion: kubefox.xigxog.io/v1alpha1
kind: VirtualEnvironment
metadata:
  name: prod
spec:
  environment: prod
"""


def _app_yaml(**changes: Any) -> str:
    document = hello_world_document()
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        target = document
        for key in parents:
            target = target[key]
        if value is None:
            del target[leaf]
        else:
            target[leaf] = value
    return yaml.safe_dump(document, sort_keys=False)


def _flow(kind: str, name: str, spec: str) -> str:
    """A one-resource document with ``spec`` in YAML flow style."""
    header = f"apiVersion: kubefox.xigxog.io/v1alpha1\nkind: {kind}\n"
    return f"{header}metadata: {{name: {name}}}\nspec: {spec}\n"


def _problems(text: str) -> list[dict[str, Any]]:
    with pytest.raises(InvalidError) as caught:
        load_yaml(text, source="test.yaml")
    problems: list[dict[str, Any]] = caught.value.details["problems"]
    return problems


BAD_INPUTS: list[tuple[str, str, str, str]] = [
    ("syntax-error", "kind: [Environment\n", "$", "YAML syntax error"),
    ("tab-indentation", ENV.replace("  name: prod", "\tname: prod"), "$", "tabs"),
    (
        "unknown-kind",
        ENV.replace("kind: Environment", "kind: Release"),
        "$.kind",
        'unknown kind "Release"',
    ),
    (
        "lowercase-kind",
        ENV.replace("kind: Environment", "kind: environment"),
        "$.kind",
        'did you mean "Environment"',
    ),
    (
        "missing-kind",
        ENV.replace("kind: Environment\n", ""),
        "$.kind",
        "missing kind; supported kinds",
    ),
    (
        "wrong-api-version",
        ENV.replace("kubefox.xigxog.io/v1alpha1", "v1"),
        "$.apiVersion",
        'unsupported apiVersion "v1"',
    ),
    (
        "missing-api-version",
        ENV.replace("apiVersion: kubefox.xigxog.io/v1alpha1\n", ""),
        "$.apiVersion",
        "missing",
    ),
    (
        "uppercase-name",
        ENV.replace("name: prod", "name: Prod"),
        "$.metadata.name",
        "not a DNS label",
    ),
    (
        "underscore-name",
        ENV.replace("name: prod", "name: my_env"),
        "$.metadata.name",
        "not a DNS label",
    ),
    ("long-name", ENV.replace("name: prod", "name: " + "a" * 64), "$.metadata.name", "at most 63"),
    (
        "missing-metadata",
        ENV.replace("metadata:\n  name: prod\n", ""),
        "$.metadata",
        "required field is missing",
    ),
    (
        "negative-deadline",
        ENV.replace("type: Stable", "activationDeadlineSeconds: -5"),
        "$.spec.releasePolicy.activationDeadlineSeconds",
        "at least 3",
    ),
    (
        "short-deadline",
        ENV.replace("type: Stable", "activationDeadlineSeconds: 2"),
        "$.spec.releasePolicy.activationDeadlineSeconds",
        "at least 3",
    ),
    (
        "unknown-policy-type",
        ENV.replace("type: Stable", "type: Fast"),
        "$.spec.releasePolicy.type",
        "'Stable' or 'Testing'",
    ),
    (
        "wrong-type-count",
        ENV.replace("type: Stable", "historyLimits: {count: ten}"),
        "$.spec.releasePolicy.historyLimits.count",
        "valid integer",
    ),
    (
        "negative-age",
        ENV.replace("type: Stable", "historyLimits: {ageDays: -1}"),
        "$.spec.releasePolicy.historyLimits.ageDays",
        "greater than or equal to 0",
    ),
    (
        "nested-object-var",
        ENV.replace("who: Universe", "who: {name: {first: U}}"),
        "$.data.vars.who.name",
        "nested objects",
    ),
    (
        "mixed-array-var",
        ENV.replace("who: Universe", "who: [1, two]"),
        "$.data.vars.who[1]",
        "mixed array",
    ),
    (
        "array-of-arrays-secret",
        ENV.replace("vars:\n    who: Universe", "secrets:\n    key: [[1]]"),
        "$.data.secrets.key[0]",
        "only strings or numbers",
    ),
    (
        "unknown-field-in-spec",
        ENV.replace("  releasePolicy:", "  releasePolicyy: {}\n  releasePolicy:"),
        "$.spec.releasePolicyy",
        'unknown field "releasePolicyy"',
    ),
    ("unknown-top-level-field", ENV + "stauts: {}\n", "$.stauts", "unknown field"),
    (
        "duplicate-key",
        ENV.replace("who: Universe", "who: Universe\n    who: World"),
        "$",
        "duplicate key 'who'",
    ),
    (
        "duplicate-resource",
        ENV + "---\n" + ENV,
        "$.metadata.name",
        'Environment "prod" is already defined in document 1',
    ),
    ("not-a-mapping", "- just\n- a list\n", "$", "expected a resource mapping, got a list"),
    ("scalar-document", "hello\n", "$", "got a string"),
    (
        "missing-ve-environment",
        VE.replace("  environment: prod\n", "  release: null\n"),
        "$.spec.environment",
        "required field is missing",
    ),
    (
        "empty-release-apps",
        VE + "  release: {apps: {}}\n",
        "$.spec.release.apps",
        "at least 1 item",
    ),
    (
        "bad-hash",
        _app_yaml(spec__components__backend__hash="XYZ"),
        "$.spec.components.backend.hash",
        "string should match pattern",
    ),
    (
        "short-commit",
        _app_yaml(spec__commit="abc123"),
        "$.spec.commit",
        "string should match pattern",
    ),
    (
        "bad-commit-time",
        _app_yaml(spec__commitTime="yesterday"),
        "$.spec.commitTime",
        "valid datetime",
    ),
    (
        "missing-components",
        _app_yaml(spec__components=None),
        "$.spec.components",
        "required field is missing",
    ),
    ("empty-components", _app_yaml(spec__components={}), "$.spec.components", "at least 1 item"),
    (
        "component-name-with-dot",
        _app_yaml(spec__components={"a.b": {"type": "KubeFox", "hash": "a" * 32}}),
        "$.spec.components['a.b']",
        "not a DNS label",
    ),
    (
        "unknown-component-type",
        _app_yaml(spec__components__backend__type="Lambda"),
        "$.spec.components.backend.type",
        "'KubeFox', 'HTTPAdapter' or 'DBAdapter'",
    ),
    (
        "unparsable-route",
        _app_yaml(spec__components__frontend__routes=[{"id": 0, "rule": "Path(`/x`"}]),
        "$.spec.components.frontend.routes[0].rule",
        "route rule does not parse",
    ),
    (
        "duplicate-route-id",
        _app_yaml(
            spec__components__frontend__routes=[
                {"id": 0, "rule": "Path(`/a`)"},
                {"id": 0, "rule": "Path(`/b`)"},
            ]
        ),
        "$.spec.components.frontend.routes[1].id",
        "duplicate route id 0",
    ),
    (
        "bad-env-var-type",
        _app_yaml(spec__components__backend__envVarSchema={"who": {"type": "Text"}}),
        "$.spec.components.backend.envVarSchema.who.type",
        "'Array', 'Boolean', 'Number' or 'String'",
    ),
    (
        "empty-adapter-url",
        _flow("HTTPAdapter", "a", "{url: ''}"),
        "$.spec.url",
        "at least 1 character",
    ),
    (
        "bad-follow-redirects",
        _flow("HTTPAdapter", "a", "{url: u, followRedirects: Sometimes}"),
        "$.spec.followRedirects",
        "'Never', 'Always' or 'SameHost'",
    ),
    (
        "platform-short-timeout",
        _flow("Platform", "demo", "{events: {timeoutSeconds: 2}}"),
        "$.spec.events.timeoutSeconds",
        "greater than or equal to 3",
    ),
    (
        "platform-port-out-of-range",
        _flow("Platform", "demo", "{httpsrv: {service: {ports: {http: 70000}}}}"),
        "$.spec.httpsrv.service.ports.http",
        "less than or equal to 65535",
    ),
    (
        "platform-bad-quantity",
        _flow("Platform", "demo", "{events: {maxSize: 5 megs}}"),
        "$.spec.events.maxSize",
        "is not a byte size",
    ),
]


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [pytest.param(text, path, message, id=name) for name, text, path, message in BAD_INPUTS],
)
def test_load_yaml_rejects_bad_input_with_path(text: str, path: str, message: str) -> None:
    """Each bad input raises InvalidError naming the JSON path and what is wrong."""
    problems = _problems(text)
    assert any(p["path"] == path and message in p["message"] for p in problems), problems


def test_load_yaml_bad_input_table_is_broad() -> None:
    """At least twenty distinct bad inputs are covered, each under its own name."""
    names = [name for name, *_ in BAD_INPUTS]
    assert len(set(names)) == len(names) >= 20


def test_load_yaml_reports_every_error_of_a_document() -> None:
    """All errors of one document are reported, each with its own path."""
    text = (
        ENV.replace("name: prod", "name: Prod_1").replace(
            "type: Stable", "type: Fast\n    activationDeadlineSeconds: 2\n    typo: 1"
        )
        + "    list: [1, x]\n"
    )
    problems = _problems(text)
    assert [p["path"] for p in problems] == [
        "$.metadata.name",
        "$.spec.releasePolicy.type",
        "$.spec.releasePolicy.activationDeadlineSeconds",
        "$.spec.releasePolicy.typo",
        "$.data.vars.list[1]",
    ]
    assert {p["document"] for p in problems} == {1}


def test_load_yaml_reports_errors_of_every_document() -> None:
    """Errors in several documents are all reported with their document numbers."""
    text = "\n---\n".join(
        [
            ENV.replace("type: Stable", "type: Fast"),
            VE,
            VE.replace("name: prod", "name: qa").replace("  environment: prod\n", "  env: qa\n"),
        ]
    )
    problems = _problems(text)
    assert [(p["document"], p["path"]) for p in problems] == [
        (1, "$.spec.releasePolicy.type"),
        (3, "$.spec.environment"),
        (3, "$.spec.env"),
    ]


def test_load_yaml_syntax_error_names_document_line_and_column() -> None:
    """A syntax error in a later document names that document and the absolute line/column."""
    text = ENV + "---\n" + VE.replace("  environment: prod", "  environment: prod: qa")
    problems = _problems(text)
    assert len(problems) == 1
    assert problems[0]["document"] == 2
    assert (problems[0]["line"], problems[0]["column"]) == (17, 20)
    assert "mapping values are not allowed here" in problems[0]["message"]


def test_load_yaml_keeps_errors_found_before_a_syntax_error() -> None:
    """Validation errors of earlier documents are reported along with a later syntax error."""
    text = ENV.replace("type: Stable", "type: Fast") + "---\nkind: [oops\n"
    problems = _problems(text)
    assert [(p["document"], p["path"]) for p in problems] == [
        (1, "$.spec.releasePolicy.type"),
        (2, "$"),
    ]


def test_load_yaml_tab_error_points_at_the_tab() -> None:
    """A tab used for indentation is reported at its line and column with a hint."""
    problems = _problems("apiVersion: x\nmetadata:\n\tname: a\n")
    assert (problems[0]["line"], problems[0]["column"]) == (3, 1)
    assert "tabs for indentation" in problems[0]["message"]


def test_invalid_error_message_lists_every_problem() -> None:
    """The error text has a count line and one line per problem with document and path."""
    with pytest.raises(InvalidError) as caught:
        load_yaml(
            ENV.replace("type: Stable", "type: Fast\n    activationDeadlineSeconds: 2"),
            source="prod.yaml",
        )
    where = 'document 1 (Environment "prod"): $.spec.releasePolicy'
    assert str(caught.value).splitlines() == [
        "invalid: prod.yaml: 2 errors",
        f"  {where}.type: input should be 'Stable' or 'Testing'",
        f"  {where}.activationDeadlineSeconds: must be at least 3 seconds (or 0 for the default)",
    ]


def test_invalid_error_message_is_one_line_for_one_problem() -> None:
    """A single problem is reported on one line."""
    with pytest.raises(InvalidError) as caught:
        parse_resource(
            {
                "apiVersion": "kubefox.xigxog.io/v1alpha1",
                "kind": "VirtualEnvironment",
                "metadata": {"name": "qa"},
                "spec": {},
            }
        )
    assert str(caught.value) == (
        'invalid: VirtualEnvironment "qa": $.spec.environment: required field is missing'
    )


def test_load_yaml_skips_empty_documents() -> None:
    """Empty documents and comment-only documents are skipped, not errors."""
    text = "---\n# nothing here\n---\n" + ENV + "---\n---\n" + VE + "---\n"
    resources = load_yaml(text)
    assert [type(r) for r in resources] == [Environment, VirtualEnvironment]
    assert load_yaml("") == []


def test_load_yaml_keeps_timestamps_in_vars_as_text() -> None:
    """A date-like var stays the string the user wrote; typed time fields still parse."""
    [env] = load_yaml(ENV.replace("who: Universe", "day: 2024-01-01"))
    assert isinstance(env, Environment)
    assert env.data.vars == {"day": "2024-01-01"}
    [app] = load_yaml(_app_yaml())
    assert isinstance(app, AppDeployment)
    assert app.spec.commit_time.year == 2024


def test_load_yaml_accepts_deadline_zero_as_default() -> None:
    """An activation deadline of 0 is accepted: it means the default, as in upstream."""
    [env] = load_yaml(ENV.replace("type: Stable", "activationDeadlineSeconds: 0"))
    assert isinstance(env, Environment)
    assert env.spec.release_policy.activation_deadline_seconds == 0


def test_load_yaml_accepts_same_name_in_different_kinds() -> None:
    """An Environment and a VirtualEnvironment may share a name (hello-world does)."""
    assert len(load_yaml(ENV + "---\n" + VE)) == 2


def test_parse_resource_rejects_non_mapping() -> None:
    """parse_resource refuses anything but a mapping with a clear message."""
    with pytest.raises(InvalidError, match="expected a resource mapping, got a list"):
        parse_resource([])  # type: ignore[arg-type]


def test_dump_then_parse_round_trips_app_deployment() -> None:
    """An AppDeployment dumped with upstream keys parses back equal."""
    [app] = load_yaml(_app_yaml())
    assert parse_resource(dump(app)) == app
    assert dump(app)["spec"]["components"]["backend"]["envVarSchema"] == {"who": {"required": True}}


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("env", "Environment"),
        ("envs", "Environment"),
        ("Environment", "Environment"),
        ("environments", "Environment"),
        ("ve", "VirtualEnvironment"),
        ("VES", "VirtualEnvironment"),
        ("virtenv", "VirtualEnvironment"),
        ("virtualenvironments", "VirtualEnvironment"),
        ("appdep", "AppDeployment"),
        ("app", "AppDeployment"),
        ("apps", "AppDeployment"),
        ("AppDeployments", "AppDeployment"),
        ("http", "HTTPAdapter"),
        ("https", "HTTPAdapter"),
        ("httpadapter", "HTTPAdapter"),
        ("manifest", "ReleaseManifest"),
        ("rm", "ReleaseManifest"),
        ("rms", "ReleaseManifest"),
        ("platform", "Platform"),
        ("platforms", "Platform"),
        ("virtualenvironments.kubefox.xigxog.io", "VirtualEnvironment"),
    ],
)
def test_kind_for_resolves_names_plurals_and_short_names(name: str, kind: str) -> None:
    """Kinds, plurals and upstream's short names resolve case-insensitively."""
    assert kind_for(name) == kind


def test_kind_for_unknown_name_lists_supported_kinds() -> None:
    """An unknown kind name is an InvalidError that lists every supported kind."""
    with pytest.raises(
        InvalidError, match="supported kinds: AppDeployment, Environment, HTTPAdapter"
    ):
        kind_for("release")


def test_resource_kinds_maps_every_kind_to_its_model() -> None:
    """RESOURCE_KINDS holds the six kinds, each mapped to the model of that kind."""
    assert sorted(RESOURCE_KINDS) == [
        "AppDeployment",
        "Environment",
        "HTTPAdapter",
        "Platform",
        "ReleaseManifest",
        "VirtualEnvironment",
    ]
    assert all(model.model_fields["kind"].default == kind for kind, model in RESOURCE_KINDS.items())
