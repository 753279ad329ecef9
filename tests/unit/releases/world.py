"""Builders for the release tests: hello-world deployments, environments, releases (plain module).

hello-world as upstream's quickstart has it (§9.1): ``frontend`` routes
``Path(`/{{.Vars.subPath}}/hello`)`` and calls ``backend``, which needs ``who``.
Environment ``qa`` is Testing, ``prod`` is Stable; each VirtualEnvironment is
named after its Environment.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from kubefox.releases import ReleaseInputs, ReleaseOutcome, reconcile_release
from kubefox.resources import (
    AppDeployment,
    Environment,
    HTTPAdapter,
    Release,
    ReleaseManifest,
    VirtualEnvironment,
    parse_resource,
)
from kubefox.resources.release_routes import ActiveRoutes, release_vars, released_routes

NAMESPACE = "kubefox-test"
APP = "hello-world"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
BACKEND_HASH = "3fbfcb274c2116d4d82271da41074135"
FRONTEND_HASH = "9c1b7b9b3f0e4e0e8a8a1d2c3b4a5f60"
#: A fixed "now" for the pure state machine.
T0 = datetime(2024, 2, 1, 16, 24, 21, tzinfo=UTC)

_COMPONENTS: dict[str, Any] = {
    "backend": {
        "type": "KubeFox",
        "defaultHandler": True,
        "envVarSchema": {"who": {"required": True}},
        "hash": BACKEND_HASH,
    },
    "frontend": {
        "type": "KubeFox",
        "dependencies": {"backend": {"type": "KubeFox"}},
        "routes": [
            {
                "id": 0,
                "rule": "Path(`/{{.Vars.subPath}}/hello`)",
                "envVarSchema": {"subPath": {"required": True}},
            }
        ],
        "hash": FRONTEND_HASH,
    },
}

_VARS = {"qa": {"who": "World", "subPath": "qa"}, "prod": {"who": "Universe", "subPath": "prod"}}
_POLICY = {"qa": "Testing", "prod": "Stable"}


def components(**changes: dict[str, Any]) -> dict[str, Any]:
    """hello-world's component definitions, with whole components replaced by ``changes``."""
    found = copy.deepcopy(_COMPONENTS)
    found.update(changes)
    return found


def available(generation: int = 1) -> dict[str, Any]:
    """An AppDeployment status saying every component runs, observed at ``generation``."""
    return {
        "conditions": [
            {
                "type": "Available",
                "status": "True",
                "reason": "ComponentsAvailable",
                "observedGeneration": generation,
            },
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ComponentsDeployed",
                "observedGeneration": generation,
            },
        ]
    }


def app_deployment(
    name: str = "hello-world-v1",
    *,
    version: str | None = "v1",
    app: str = APP,
    status: dict[str, Any] | None = None,
    definitions: dict[str, Any] | None = None,
    generation: int = 1,
    **spec: Any,
) -> AppDeployment:
    """A hello-world AppDeployment, Available unless ``status`` says otherwise."""
    document: dict[str, Any] = {
        "apiVersion": "kubefox.xigxog.io/v1alpha1",
        "kind": "AppDeployment",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "uid": f"uid-{name}",
            "resourceVersion": "7",
            "generation": generation,
        },
        "spec": {
            "appName": app,
            "commit": COMMIT,
            "commitTime": "2024-02-01T16:24:21Z",
            "branch": "main",
            "components": definitions if definitions is not None else components(),
            **({"version": version} if version else {}),
            **spec,
        },
        "status": status if status is not None else available(generation),
    }
    resource = parse_resource(document)
    assert isinstance(resource, AppDeployment)
    return resource


def environment(
    name: str = "qa", *, policy: dict[str, Any] | None = None, **vars: Any
) -> Environment:
    """Environment ``qa`` (Testing) or ``prod`` (Stable) with hello-world's vars."""
    resource = parse_resource(
        {
            "apiVersion": "kubefox.xigxog.io/v1alpha1",
            "kind": "Environment",
            "metadata": {
                "name": name,
                "uid": f"uid-env-{name}",
                "resourceVersion": "3",
                "generation": 1,
            },
            "spec": {"releasePolicy": {"type": _POLICY.get(name, "Testing"), **(policy or {})}},
            "data": {"vars": vars or dict(_VARS.get(name, _VARS["qa"]))},
        }
    )
    assert isinstance(resource, Environment)
    return resource


def virtual_environment(
    name: str = "qa",
    *,
    env: str | None = None,
    release: dict[str, Any] | None = None,
    policy: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    vars: dict[str, Any] | None = None,
    resource_version: str = "11",
    generation: int = 1,
) -> VirtualEnvironment:
    """A VirtualEnvironment on Environment ``env`` (its own name by default)."""
    spec: dict[str, Any] = {"environment": env or name}
    if release is not None:
        spec["release"] = release
    if policy is not None:
        spec["releasePolicy"] = policy
    document: dict[str, Any] = {
        "apiVersion": "kubefox.xigxog.io/v1alpha1",
        "kind": "VirtualEnvironment",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "uid": f"uid-ve-{name}",
            "resourceVersion": resource_version,
            "generation": generation,
        },
        "spec": spec,
    }
    if vars is not None:
        document["data"] = {"vars": vars}
    if status is not None:
        document["status"] = status
    resource = parse_resource(document)
    assert isinstance(resource, VirtualEnvironment)
    return resource


def apps(
    deployment: str = "hello-world-v1", version: str | None = "v1", app: str = APP
) -> dict[str, Any]:
    """A ``spec.release`` naming ``deployment`` (and ``version``) for ``app``."""
    entry: dict[str, Any] = {"appDeployment": deployment}
    if version is not None:
        entry["version"] = version
    return {"apps": {app: entry}}


class Ids:
    """Release ids in order: r1, r2, ..."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> str:
        self.count += 1
        return f"r{self.count}"


def run(
    ve: VirtualEnvironment,
    *,
    now: datetime = T0,
    env: Environment | str | None = "default",
    deployments: list[AppDeployment] | None = None,
    adapters: list[HTTPAdapter] | None = None,
    manifests: list[ReleaseManifest] | None = None,
    others: list[ActiveRoutes] | None = None,
    ids: Ids | None = None,
) -> ReleaseOutcome:
    """One pass of the state machine for ``ve`` with hello-world-v1 and its Environment."""
    environment_ = environment(ve.spec.environment) if env == "default" else env
    assert not isinstance(environment_, str)
    return reconcile_release(
        ReleaseInputs(
            ve=ve,
            environment=environment_,
            app_deployments={
                d.metadata.name: d
                for d in (deployments if deployments is not None else [app_deployment()])
            },
            adapters={a.metadata.name: a for a in adapters or []},
            manifests={m.metadata.name: m for m in manifests or []},
            others=others or [],
            now=now,
            new_id=ids or Ids(),
        )
    )


def after(ve: VirtualEnvironment, outcome: ReleaseOutcome, **changes: Any) -> VirtualEnvironment:
    """``ve`` with the outcome's status written and a new resourceVersion: the next pass's input."""
    updated = ve.model_copy(update={"status": outcome.status, **changes}, deep=True)
    updated.metadata.resource_version = str(int(ve.metadata.resource_version or 0) + 1)
    return updated


def active_routes(
    ve: VirtualEnvironment, *, activated: datetime, deployments: list[AppDeployment] | None = None
) -> ActiveRoutes:
    """What ``ve`` would serve if ``deployments`` were its active release, activated then."""
    found = deployments if deployments is not None else [app_deployment()]
    variables = release_vars(ve, environment(ve.spec.environment))
    assert variables is not None
    return ActiveRoutes(
        virtual_environment=ve.metadata.name,
        activation_time=activated,
        routes=tuple(
            released_routes(ve.metadata.name, {d.spec.app_name: d for d in found}, variables)
        ),
    )


def later(seconds: float) -> datetime:
    """``T0`` plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)


def requesting(ve: VirtualEnvironment, release: dict[str, Any] | None) -> VirtualEnvironment:
    """``ve`` with ``spec.release`` replaced by ``release`` (``None``: no release)."""
    wanted = Release.model_validate(release) if release is not None else None
    return ve.model_copy(update={"spec": ve.spec.model_copy(update={"release": wanted})})


def released_with_history() -> VirtualEnvironment:
    """qa after v1 was active, then hello-world-nope requested, then the release cleared.

    History, newest first: hello-world-nope (never active), hello-world-v1 (was active).
    """
    ve = virtual_environment(release=apps())
    ve = after(ve, run(ve))
    ve = requesting(ve, apps("hello-world-nope", None))
    ve = after(ve, run(ve, now=later(10)))
    ve = requesting(ve, None)
    return after(ve, run(ve, now=later(20)))


def failed_release(*, request_time_now: bool = False) -> VirtualEnvironment:
    """qa whose request for hello-world-nope missed its 3 s deadline (not yet rolled back)."""
    start = datetime.now(UTC) if request_time_now else T0
    ve = virtual_environment(
        release=apps("hello-world-nope", None), policy={"activationDeadlineSeconds": 3}
    )
    ve = after(ve, run(ve, now=start))
    return after(ve, run(ve, now=start + timedelta(seconds=3)))
