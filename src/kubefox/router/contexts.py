"""Resolved event contexts: an AppDeployment seen through one VirtualEnvironment's data.

A context is what ``kf-dep`` + ``kf-ve`` (or a release) name: the deployment,
the merged Environment and VirtualEnvironment data, the problems found by
validating one against the other (§1.10), and the deployment's routes resolved
with that data and compiled into a matcher. Building one costs template
rendering and regex compilation, so contexts are cached by the revisions of
everything they were built from and rebuilt only when one of those changes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from kubefox.core.errors import InvalidError, RouteInvalidError
from kubefox.core.events import Component, EventContext
from kubefox.core.matcher import Route, RouteMatcher, compile_route
from kubefox.core.routes import resolve
from kubefox.resources import (
    AppDeployment,
    ComponentDefinition,
    Data,
    Problem,
    problems_to_yaml,
)
from kubefox.resources.validation import AnyHTTPAdapter
from kubefox.store.protocol import ResourceKey

#: What a route leads to: (component name, route id).
RouteTarget = tuple[str, int]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ResolvedContext:
    """One deployment in one virtual environment, ready to route with."""

    event_context: EventContext
    deployment: AppDeployment
    data: Data
    problems: tuple[Problem, ...]
    matcher: RouteMatcher[RouteTarget]
    #: The HTTPAdapters of this context (the manifest's for a Stable release), by name.
    adapters: Mapping[str, AnyHTTPAdapter] = dataclasses.field(default_factory=dict)
    #: Where this context's secret values are kept, with the resource version each
    #: was read at, later ones winning: the Environment then the VirtualEnvironment,
    #: or the ReleaseManifest. ``data.secrets`` only holds masks.
    secret_sources: tuple[tuple[ResourceKey, str | None], ...] = ()
    # shared_env's answers: a context is rebuilt when what it was built from
    # changes, never altered, so each component's env is worked out once.
    _envs: dict[str, dict[str, Any]] = dataclasses.field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def app(self) -> str:
        """The deployment's app name."""
        return self.deployment.spec.app_name

    def definition(self, name: str) -> ComponentDefinition | None:
        """The deployment's definition of component ``name``, if it has one."""
        return self.deployment.spec.components.get(name)

    def component(self, name: str) -> Component | None:
        """The identity (type, app, name, hash) of component ``name`` in this deployment."""
        definition = self.definition(name)
        if definition is None:
            return None
        return Component(type=str(definition.type), app=self.app, name=name, hash=definition.hash)

    def env_for(self, name: str) -> dict[str, Any]:
        """The vars component ``name`` declared, resolved from this context's data.

        Only declared vars are handed over (route vars included); an undeclared
        var never leaves the platform. Missing optional vars are left out.
        The dict is the caller's own.
        """
        return dict(self.shared_env(name))

    def shared_env(self, name: str) -> dict[str, Any]:
        """:meth:`env_for`, worked out once per component and shared: never change it.

        For events that are encoded at once (the broker's relay, httpsrv's
        genesis events): a copy per event would cost more than the encoding.
        """
        env = self._envs.get(name)
        if env is None:
            env = self._envs[name] = self._env(name)
        return env

    def _env(self, name: str) -> dict[str, Any]:
        definition = self.definition(name)
        if definition is None:
            return {}
        declared = set(definition.env_var_schema)
        for route in definition.routes:
            declared.update(route.env_var_schema)
        variables = self.data.vars
        return {var: variables[var] for var in sorted(declared) if var in variables}

    def raise_if_invalid(self) -> None:
        """Raise the 400 ``invalid: event context is invalid`` error if problems exist."""
        if self.problems:
            raise InvalidError(
                "event context is invalid",
                problems=[p.model_dump(by_alias=True, exclude_none=True) for p in self.problems],
                problems_yaml=problems_to_yaml(self.problems),
            )


def build_matcher(deployment: AppDeployment, data: Data) -> RouteMatcher[RouteTarget]:
    """Every route of every component of ``deployment``, resolved with ``data``.

    A route that cannot be resolved (a missing var) is left out: the problems
    list already says why, and the context is refused before matching.
    """
    compiled: list[Route[RouteTarget]] = []
    for name in sorted(deployment.spec.components):
        definition = deployment.spec.components[name]
        for route in definition.routes:
            try:
                rule = resolve(route.rule, data.vars)
                compiled.append(compile_route(rule, target=(name, route.id), id=route.id))
            except RouteInvalidError:
                continue
    return RouteMatcher(compiled)
