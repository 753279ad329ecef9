"""``AppDeployment``: one published version of an app, with what each component declares.

A component's definition is what its process reports about itself (routes,
default handler, env vars it reads, dependencies) plus the content hash that
identifies the build. Two AppDeployments holding a component at the same hash
share its running instances ("deployment distillation"). The hash pattern is
wider than upstream's 32-character MD5 so that a stronger digest fits.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from kubefox.core.errors import RouteInvalidError
from kubefox.core.routes import template_vars
from kubefox.core.values import EnvVarType
from kubefox.resources.conditions import Condition
from kubefox.resources.meta import API_VERSION, Details, DNSLabel, KubeFoxModel, ObjectMeta
from kubefox.resources.problems import ObservedProblem

ComponentHash = Annotated[str, Field(pattern=r"^[a-z0-9]{32,64}$")]
CommitHash = Annotated[str, Field(pattern=r"^[a-z0-9]{40}$")]


class ComponentType(enum.StrEnum):
    """What runs a component: user code (``KubeFox``) or a platform adapter."""

    KUBEFOX = "KubeFox"
    HTTP_ADAPTER = "HTTPAdapter"
    DB_ADAPTER = "DBAdapter"


class EnvVarDefinition(KubeFoxModel):
    """One env var a component or route reads: its type, if declared, and whether required."""

    type: EnvVarType | None = None
    required: bool = False


#: Env var name → definition.
EnvVarSchema = dict[str, EnvVarDefinition]


class RouteSpec(KubeFoxModel):
    """A route a component registered; its template vars are always required."""

    id: int = Field(ge=0)
    rule: str = Field(min_length=1)
    priority: int | None = None
    env_var_schema: EnvVarSchema = Field(default_factory=dict)

    @field_validator("rule")
    @classmethod
    def _rule_parses(cls, rule: str) -> str:
        # A rule that does not parse can never route; say so where it enters.
        try:
            template_vars(rule)
        except RouteInvalidError as exc:
            raise PydanticCustomError(
                "route_invalid", "route rule does not parse: {cause}", {"cause": exc.cause}
            ) from exc
        return rule


class Dependency(KubeFoxModel):
    """What a dependency is: another component of the app or an adapter."""

    type: ComponentType


class ComponentDefinition(KubeFoxModel):
    """Everything a component declares about itself, plus its content hash."""

    type: ComponentType
    routes: list[RouteSpec] = Field(default_factory=list)
    default_handler: bool = False
    env_var_schema: EnvVarSchema = Field(default_factory=dict)
    dependencies: dict[DNSLabel, Dependency] = Field(default_factory=dict)
    hash: ComponentHash
    image: str | None = None

    @field_validator("routes")
    @classmethod
    def _unique_route_ids(cls, routes: list[RouteSpec]) -> list[RouteSpec]:
        first_index: dict[int, int] = {}
        errors: list[InitErrorDetails] = []
        for index, route in enumerate(routes):
            seen = first_index.setdefault(route.id, index)
            if seen != index:
                error = PydanticCustomError(
                    "duplicate_route_id",
                    "duplicate route id {id}, first used by routes[{first}]",
                    {"id": route.id, "first": seen},
                )
                errors.append(InitErrorDetails(type=error, loc=(index, "id"), input=route.id))
        if errors:
            raise ValidationError.from_exception_data("RouteSpec", errors)
        return routes


class AppDeploymentSpec(KubeFoxModel):
    """Which app, from which commit, with which components."""

    app_name: DNSLabel
    version: str | None = None
    commit: CommitHash
    commit_time: datetime
    branch: str | None = None
    tag: str | None = None
    repo_url: str | None = Field(default=None, alias="repoURL")
    container_registry: str | None = None
    image_pull_secret_name: str | None = None
    components: dict[DNSLabel, ComponentDefinition] = Field(min_length=1)

    def component_image(self, name: str) -> str:
        """The image of component ``name``: its own override, else registry/app/name:hash.

        Raises:
            KeyError: if the deployment has no component ``name``.
        """
        component = self.components[name]
        if component.image:
            return component.image
        registry = (self.container_registry or "").rstrip("/")
        prefix = f"{registry}/" if registry else ""
        return f"{prefix}{self.app_name}/{name}:{component.hash}"


class AppDeploymentDetails(KubeFoxModel):
    """Documentation of the app and of each component."""

    title: str | None = None
    description: str | None = None
    components: dict[str, Details] = Field(default_factory=dict)


class AppDeploymentStatus(KubeFoxModel):
    """Whether the deployment's components run, and what stops them from serving."""

    conditions: list[Condition] = Field(default_factory=list)
    problems: list[ObservedProblem] = Field(default_factory=list)


class AppDeployment(KubeFoxModel):
    """One published version of an app."""

    api_version: Literal["kubefox.xigxog.io/v1alpha1"] = API_VERSION
    kind: Literal["AppDeployment"] = "AppDeployment"
    metadata: ObjectMeta
    spec: AppDeploymentSpec
    details: AppDeploymentDetails | None = None
    status: AppDeploymentStatus | None = None
