"""Resource models: upstream's defaults, camelCase keys, metadata tolerance, dumps."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from kubefox.core.values import EnvVarType
from kubefox.resources import (
    API_VERSION,
    AppDeployment,
    ComponentType,
    Condition,
    ConditionStatus,
    Environment,
    FollowRedirects,
    HTTPAdapter,
    ObjectMeta,
    Platform,
    ReleaseManifest,
    ReleasePolicyType,
    VirtualEnvironment,
    dump,
    parse_resource,
)
from tests.unit.resources.helpers import COMMIT, hello_world, hello_world_document


def _meta(name: str = "x") -> dict[str, str]:
    return {"name": name}


def test_environment_defaults_match_upstream_crd() -> None:
    """An Environment without spec gets type Stable, deadline 300, history count 10, age 0."""
    env = Environment(metadata=ObjectMeta(name="prod"))
    policy = env.spec.release_policy
    assert policy.type is ReleasePolicyType.STABLE
    assert policy.activation_deadline_seconds == 300
    assert policy.history_limits.count == 10
    assert policy.history_limits.age_days == 0
    assert env.api_version == API_VERSION
    assert env.kind == "Environment"


def test_environment_partial_policy_keeps_other_defaults() -> None:
    """Setting only the policy type leaves the deadline and limits at their defaults."""
    env = parse_resource(
        {
            "apiVersion": API_VERSION,
            "kind": "Environment",
            "metadata": _meta(),
            "spec": {"releasePolicy": {"type": "Testing", "historyLimits": {"ageDays": 7}}},
        }
    )
    assert isinstance(env, Environment)
    assert env.spec.release_policy.type is ReleasePolicyType.TESTING
    assert env.spec.release_policy.activation_deadline_seconds == 300
    assert env.spec.release_policy.history_limits.count == 10
    assert env.spec.release_policy.history_limits.age_days == 7


def test_virtual_environment_policy_override_defaults_to_unset() -> None:
    """A VE's releasePolicy fields are all unset so that they inherit from the Environment."""
    ve = parse_resource(
        {
            "apiVersion": API_VERSION,
            "kind": "VirtualEnvironment",
            "metadata": _meta(),
            "spec": {"environment": "qa", "releasePolicy": {"historyLimits": {}}},
        }
    )
    assert isinstance(ve, VirtualEnvironment)
    override = ve.spec.release_policy
    assert override is not None
    assert override.type is None
    assert override.activation_deadline_seconds is None
    assert override.history_limits is not None
    assert override.history_limits.count is None


def test_platform_defaults_match_upstream_crd() -> None:
    """A bare Platform has event timeout 30 s, 5 MiB events and upstream's telemetry defaults."""
    platform = Platform(metadata=ObjectMeta(name="demo"))
    spec = platform.spec
    assert spec.events.timeout_seconds == 30
    assert spec.events.max_size == 5242880
    assert spec.httpsrv.service.type == "ClusterIP"
    assert (spec.httpsrv.service.ports.http, spec.httpsrv.service.ports.https) == (80, 443)
    assert spec.telemetry.collector.enabled is False
    assert spec.telemetry.collector.address == ""
    assert (spec.telemetry.logs.level, spec.telemetry.logs.format) == ("info", "json")
    assert spec.telemetry.metrics.export is True
    assert spec.telemetry.metrics.collection_interval_seconds == 60
    assert spec.telemetry.traces.export is True
    assert spec.image_pull_policy == "IfNotPresent"
    assert spec.debug.enabled is False


def test_platform_max_size_accepts_kubernetes_quantity() -> None:
    """events.maxSize may be written as a quantity such as 16Mi and is held in bytes."""
    platform = parse_resource(
        {
            "apiVersion": API_VERSION,
            "kind": "Platform",
            "metadata": _meta("demo"),
            "spec": {"events": {"maxSize": "16Mi", "timeoutSeconds": 3}},
        }
    )
    assert isinstance(platform, Platform)
    assert platform.spec.events.max_size == 16 * 1024 * 1024


def test_platform_pod_specs_are_free_form() -> None:
    """broker/httpsrv/nats podSpec and containerSpec take any Kubernetes fields."""
    pod_spec = {
        "nodeSelector": {"disk": "ssd"},
        "tolerations": [{"key": "k", "operator": "Exists"}],
    }
    container_spec = {"resources": {"limits": {"memory": "256Mi"}}, "anything": {"goes": [1]}}
    platform = parse_resource(
        {
            "apiVersion": API_VERSION,
            "kind": "Platform",
            "metadata": _meta("demo"),
            "spec": {"broker": {"podSpec": pod_spec, "containerSpec": container_spec}},
        }
    )
    assert isinstance(platform, Platform)
    assert platform.spec.broker.pod_spec == pod_spec
    assert dump(platform)["spec"]["broker"]["containerSpec"] == container_spec


def test_platform_status_reads_component_ip_keys() -> None:
    """Platform status components use upstream's podIP/nodeIP keys."""
    platform = parse_resource(
        {
            "apiVersion": API_VERSION,
            "kind": "Platform",
            "metadata": _meta("demo"),
            "status": {"components": [{"name": "httpsrv", "podIP": "10.0.0.1", "ready": True}]},
        }
    )
    assert isinstance(platform, Platform)
    assert platform.status is not None
    assert platform.status.components[0].pod_ip == "10.0.0.1"
    assert dump(platform)["status"]["components"][0]["podIP"] == "10.0.0.1"


def test_http_adapter_defaults_never_follow_and_verify_tls() -> None:
    """An HTTPAdapter defaults to followRedirects Never and insecureSkipVerify false."""
    adapter = parse_resource(
        {
            "apiVersion": API_VERSION,
            "kind": "HTTPAdapter",
            "metadata": _meta(),
            "spec": {"url": "u"},
        }
    )
    assert isinstance(adapter, HTTPAdapter)
    assert adapter.spec.follow_redirects is FollowRedirects.NEVER
    assert adapter.spec.insecure_skip_verify is False
    assert adapter.spec.headers == {}


def test_app_deployment_reads_hello_world_definition() -> None:
    """The hello-world definition reads into typed components, routes and schemas."""
    app = hello_world()
    backend = app.spec.components["backend"]
    frontend = app.spec.components["frontend"]
    assert backend.type is ComponentType.KUBEFOX
    assert backend.default_handler is True
    assert backend.env_var_schema["who"].required is True
    assert backend.env_var_schema["who"].type is None
    assert frontend.default_handler is False
    assert frontend.dependencies["backend"].type is ComponentType.KUBEFOX
    assert frontend.routes[0].rule == "Path(`/{{.Vars.subPath}}/hello`)"
    assert app.spec.commit_time == datetime(2024, 2, 1, 16, 24, 21, tzinfo=UTC)


def test_app_deployment_accepts_long_hash_and_typed_schema() -> None:
    """A 64-character hash (e.g. SHA-256) and a typed env var are accepted."""
    document = hello_world_document()
    backend = document["spec"]["components"]["backend"]
    backend["hash"] = "a" * 64
    backend["envVarSchema"]["who"]["type"] = "String"
    app = parse_resource(document)
    assert isinstance(app, AppDeployment)
    assert app.spec.components["backend"].hash == "a" * 64
    assert app.spec.components["backend"].env_var_schema["who"].type is EnvVarType.STRING


def test_app_deployment_repo_url_uses_upstream_key() -> None:
    """spec.repoURL keeps upstream's capitalisation both ways."""
    app = parse_resource(hello_world_document(repoURL="https://example.com/r.git"))
    assert isinstance(app, AppDeployment)
    assert app.spec.repo_url == "https://example.com/r.git"
    assert dump(app)["spec"]["repoURL"] == "https://example.com/r.git"


def test_app_deployment_component_image_follows_upstream_rule() -> None:
    """The image is registry/app/component:hash, or the component's own image."""
    app = parse_resource(hello_world_document(containerRegistry="localhost/kubefox/"))
    assert isinstance(app, AppDeployment)
    assert app.spec.component_image("backend") == (
        "localhost/kubefox/hello-world/backend:3fbfcb274c2116d4d82271da41074135"
    )
    app.spec.components["frontend"].image = "ghcr.io/me/frontend:1"
    assert app.spec.component_image("frontend") == "ghcr.io/me/frontend:1"


def test_metadata_unknown_fields_are_ignored() -> None:
    """Kubernetes bookkeeping in metadata (managedFields ...) loads and is dropped."""
    resource = parse_resource(
        {
            "apiVersion": API_VERSION,
            "kind": "Environment",
            "metadata": {
                "name": "qa",
                "managedFields": [{"manager": "kubectl"}],
                "selfLink": "/x",
                "labels": {"app.kubernetes.io/name": "qa"},
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "X", "name": "o", "uid": "u", "extra": 1}
                ],
            },
        }
    )
    assert resource.metadata.labels == {"app.kubernetes.io/name": "qa"}
    assert "managedFields" not in dump(resource)["metadata"]
    assert resource.metadata.owner_references[0].name == "o"


def test_models_accept_python_field_names() -> None:
    """Python callers may use snake_case names as well as upstream's camelCase keys."""
    env = Environment.model_validate(
        {"metadata": {"name": "qa"}, "spec": {"release_policy": {"type": "Testing"}}}
    )
    assert env.spec.release_policy.type is ReleasePolicyType.TESTING


def test_dump_omits_empty_collections_and_unset_fields() -> None:
    """A dump leaves out empty maps and lists and unset optional fields, like Go's omitempty."""
    ve = VirtualEnvironment.model_validate(
        {"metadata": {"name": "qa"}, "spec": {"environment": "qa"}}
    )
    assert dump(ve) == {
        "apiVersion": API_VERSION,
        "kind": "VirtualEnvironment",
        "metadata": {"name": "qa"},
        "spec": {"environment": "qa"},
    }


def test_dump_keeps_null_and_empty_values_inside_vars() -> None:
    """Values inside data.vars are kept as written, even null and empty arrays."""
    env = Environment.model_validate(
        {"metadata": {"name": "qa"}, "data": {"vars": {"n": None, "a": [], "s": ""}}}
    )
    assert dump(env)["data"] == {"vars": {"n": None, "a": [], "s": ""}}
    assert parse_resource(dump(env)) == env


def test_data_values_keep_their_json_forms() -> None:
    """Strings, numbers, booleans, arrays and string-array maps load unchanged."""
    values = {"s": "x", "i": 1, "f": 1.5, "b": True, "l": ["a"], "n": [1, 2.5], "m": {"k": ["v"]}}
    env = Environment.model_validate({"metadata": {"name": "qa"}, "data": {"vars": values}})
    assert env.data.vars == values


def test_condition_status_reads_yaml_booleans_as_strings() -> None:
    """An unquoted YAML True in a condition status means the string True."""
    condition = Condition.model_validate({"type": "Available", "status": True})
    assert condition.status is ConditionStatus.TRUE


def test_release_manifest_snapshot_round_trips() -> None:
    """A ReleaseManifest with every snapshot part parses and round-trips."""
    ref = {"name": "x", "uid": "u", "resourceVersion": "1", "generation": 1}
    app = hello_world_document()
    manifest = parse_resource(
        {
            "apiVersion": API_VERSION,
            "kind": "ReleaseManifest",
            "metadata": {"name": "prod-5747-20240201-162421"},
            "spec": {
                "releaseId": "6c7c4d5e-8f9a-4b1c-9d2e-3f4a5b6c7d8e",
                "environment": {
                    "apiVersion": API_VERSION,
                    "kind": "Environment",
                    "metadata": ref,
                    "data": {"vars": {"who": "Universe"}},
                },
                "virtualEnvironment": {
                    "apiVersion": API_VERSION,
                    "kind": "VirtualEnvironment",
                    "metadata": ref,
                    "spec": {"environment": "prod"},
                },
                "appDeployments": [{**app, "metadata": ref}],
                "adapters": {
                    "http": [
                        {
                            "apiVersion": API_VERSION,
                            "kind": "HTTPAdapter",
                            "metadata": ref,
                            "spec": {"url": "http://x"},
                        }
                    ]
                },
            },
            "data": {"vars": {"who": "Universe"}},
            "status": {},
        }
    )
    assert isinstance(manifest, ReleaseManifest)
    assert manifest.spec.app_deployments[0].spec.commit == COMMIT
    assert manifest.spec.adapters.http[0].spec.url == "http://x"
    assert parse_resource(dump(manifest)) == manifest


def test_virtual_environment_status_round_trips() -> None:
    """A VE status with active, pending and archived releases and problems round-trips."""
    release = {
        "apps": {"hello-world": {"appDeployment": "hello-world-v1", "version": "v1"}},
        "id": "id-1",
        "requestTime": "2024-02-01T16:24:21Z",
    }
    archived = {**release, "archiveTime": "2024-02-02T00:00:00Z", "archiveReason": "Superseded"}
    problem = {
        "type": "PolicyViolation",
        "message": 'Version is required but not set for App "hello-world".',
        "causes": [
            {"kind": "VirtualEnvironment", "name": "prod", "path": "$.spec.release", "value": "x"}
        ],
        "observedTime": "2024-02-01T16:24:21Z",
    }
    ve = parse_resource(
        {
            "apiVersion": API_VERSION,
            "kind": "VirtualEnvironment",
            "metadata": _meta("prod"),
            "spec": {"environment": "prod", "release": {"apps": release["apps"]}},
            "status": {
                "activeRelease": {**release, "releaseManifest": "prod-1-20240201-162421"},
                "pendingRelease": {**release, "problems": [problem]},
                "releaseHistory": [archived],
                "conditions": [
                    {"type": "ReleasePending", "status": "True", "reason": "ProblemsFound"}
                ],
            },
        }
    )
    assert isinstance(ve, VirtualEnvironment)
    assert ve.status is not None
    assert ve.status.release_history[0].archive_reason == "Superseded"
    assert parse_resource(dump(ve)) == ve


def test_model_construction_rejects_unknown_field() -> None:
    """Building a model in Python with a misspelt field fails instead of ignoring it."""
    with pytest.raises(ValidationError, match="environmnet"):
        VirtualEnvironment.model_validate(
            {"metadata": {"name": "qa"}, "spec": {"environment": "qa", "environmnet": "x"}}
        )
