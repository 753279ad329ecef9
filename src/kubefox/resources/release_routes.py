"""Routes of released AppDeployments: resolved with a release's data, and their conflicts.

Releases in different VirtualEnvironments share one URL space: a request
without ``kf-dep``/``kf-ve`` is matched against the routes of every active
release. Upstream lets the first release in list order silently win when two
releases resolve a route to the same rule. Here that is a ``RouteConflict``:
the release state machine (:mod:`kubefox.releases`) keeps the later release
pending, and the router (:mod:`kubefox.router.releases`) orders releases the
same way, earliest activation first, so the two always agree on who serves.

Both sides need the same pure pieces, and ``releases`` and ``router`` are
siblings that may not import each other, so the pieces live here:

* :func:`release_vars` picks a release's data (the manifest's for a Stable
  release, else the VirtualEnvironment's over its Environment's);
* :func:`released_routes` resolves every route of the released deployments;
* :func:`rule_key` normalises a resolved rule, so that two rules that match
  exactly the same requests with the same priority compare equal.

*What counts as a conflict:* two rules whose normal forms are equal. The
normal form ignores the order of ``&&``/``||`` operands, the names of path
and host parameters (they capture, they do not select), the case of methods,
hosts, header names and event types, and the spelling of a default parameter
regex. Rules that merely overlap (``PathPrefix(`/`)`` and ``Path(`/qa/hello`)``)
are not conflicts: priority decides between them, longer rule first, exactly
as it does between the routes of one deployment.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from kubefox.core import route_ast
from kubefox.core.errors import RouteInvalidError
from kubefox.core.routes import parse, resolve
from kubefox.core.values import Value

if TYPE_CHECKING:
    from kubefox.resources.deployments import AppDeployment
    from kubefox.resources.environments import Environment, VirtualEnvironment
    from kubefox.resources.manifests import ReleaseManifest

#: A rule in normal form: equal keys match the same requests with the same priority.
RuleKey = Hashable

_DEFAULT_REGEX = {"path": "[^/]+", "host": "[^.]+"}
_NEVER = datetime.max.replace(tzinfo=UTC)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ReleasedRoute:
    """One route of one released AppDeployment, resolved with the release's data."""

    virtual_environment: str
    app: str
    app_deployment: str
    component: str
    route_id: int
    index: int  # position in the component's ``routes`` (problem paths use it)
    rule: str  # the resolved rule
    key: RuleKey = dataclasses.field(compare=False, repr=False)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ActiveRoutes:
    """The routes one VirtualEnvironment's active release serves, and when it was activated."""

    virtual_environment: str
    activation_time: datetime | None
    routes: tuple[ReleasedRoute, ...]

    def order(self) -> tuple[datetime, str]:
        """Sort key: earliest activation first, then VirtualEnvironment name."""
        return (self.activation_time or _NEVER, self.virtual_environment)


def release_vars(
    ve: VirtualEnvironment,
    environment: Environment | None,
    manifest: ReleaseManifest | None = None,
) -> dict[str, Value] | None:
    """The vars a release's routes resolve with; ``None`` if they cannot be known.

    A release with a manifest (Stable) uses the manifest's data, frozen at
    activation; otherwise the VirtualEnvironment's vars over its
    Environment's, live. Without a manifest and without the Environment there
    is no data to resolve with.
    """
    if manifest is not None:
        return dict(manifest.data.vars)
    if environment is None:
        return None
    return {**environment.data.vars, **ve.data.vars}


def released_routes(
    virtual_environment: str,
    deployments: Mapping[str, AppDeployment],
    variables: Mapping[str, Value],
) -> list[ReleasedRoute]:
    """Every route of the released ``deployments`` (app name -> deployment), resolved.

    Apps are taken in name order, then components in name order, then routes
    in declaration order. A route that cannot be resolved (a missing var) is
    left out: the release's problems already say why.
    """
    found: list[ReleasedRoute] = []
    for app in sorted(deployments):
        deployment = deployments[app]
        for component in sorted(deployment.spec.components):
            definition = deployment.spec.components[component]
            for index, route in enumerate(definition.routes):
                try:
                    rule = resolve(route.rule, variables)
                    key = rule_key(rule)
                except RouteInvalidError:
                    continue
                found.append(
                    ReleasedRoute(
                        virtual_environment=virtual_environment,
                        app=app,
                        app_deployment=deployment.metadata.name,
                        component=component,
                        route_id=route.id,
                        index=index,
                        rule=rule,
                        key=key,
                    )
                )
    return found


def route_conflicts(
    routes: Iterable[ReleasedRoute], claimed: Sequence[ActiveRoutes]
) -> list[tuple[ReleasedRoute, ReleasedRoute]]:
    """Each route of ``routes`` whose rule an earlier claim already serves, with that claim.

    ``claimed`` is taken in order (the caller passes the releases that win,
    earliest first); a route also conflicts with an earlier route of
    ``routes`` itself from another app (two apps of one release). Routes of one
    deployment never conflict with each other: priority and declaration order
    decide between them, as upstream.
    """
    owners: dict[RuleKey, ReleasedRoute] = {}
    for active in claimed:
        for route in active.routes:
            owners.setdefault(route.key, route)
    conflicts: list[tuple[ReleasedRoute, ReleasedRoute]] = []
    for route in routes:
        owner = owners.get(route.key)
        if owner is None:
            owners[route.key] = route
        elif owner.virtual_environment != route.virtual_environment or owner.app != route.app:
            conflicts.append((route, owner))
    return conflicts


def rule_key(rule: str) -> RuleKey:
    """The normal form of a resolved rule (see the module docstring).

    Raises:
        RouteInvalidError: the rule does not parse.
    """
    return _normal(parse(rule))


def _normal(node: route_ast.Rule) -> route_ast.Rule:
    if isinstance(node, route_ast.And | route_ast.Or):
        operands: list[route_ast.Rule] = []
        for operand in node.operands:
            normal = _normal(operand)
            # (a && b) && c is a && b && c: flatten before sorting
            if isinstance(normal, route_ast.And | route_ast.Or) and type(normal) is type(node):
                operands.extend(normal.operands)
            else:
                operands.append(normal)
        unique = sorted(set(operands), key=repr)
        return unique[0] if len(unique) == 1 else dataclasses.replace(node, operands=tuple(unique))
    if isinstance(node, route_ast.Not):
        return route_ast.Not(operand=_normal(node.operand))
    return _normal_leaf(node)


def _normal_leaf(node: route_ast.Rule) -> route_ast.Rule:
    if isinstance(node, route_ast.Path | route_ast.PathPrefix):
        return dataclasses.replace(node, segments=_segments(node.segments, "path"))
    if isinstance(node, route_ast.Host):
        lowered = tuple(
            route_ast.Literal(text=s.text.lower()) if isinstance(s, route_ast.Literal) else s
            for s in node.segments
        )
        return route_ast.Host(segments=_segments(lowered, "host"))
    if isinstance(node, route_ast.Method):
        return route_ast.Method(methods=tuple(sorted({m.upper() for m in node.methods})))
    if isinstance(node, route_ast.Header):
        return dataclasses.replace(node, name=node.name.lower())
    if isinstance(node, route_ast.Type):
        return route_ast.Type(value=node.value.lower())
    return node


def _segments(segments: tuple[route_ast.Segment, ...], kind: str) -> tuple[route_ast.Segment, ...]:
    default = _DEFAULT_REGEX[kind]
    return tuple(
        route_ast.Param(name="", regex=None if s.regex in (None, default) else s.regex, rest=s.rest)
        if isinstance(s, route_ast.Param)
        else s
        for s in segments
    )
