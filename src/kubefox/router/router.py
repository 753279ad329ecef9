"""The router: picks the target of every event and checks that it may go there.

httpsrv runs it in-process for genesis events (an HTTP request with
``kf-dep``/``kf-ve``, or none, for release routing); the broker runs it for
events components send each other. Both paths resolve the event's context
(:mod:`kubefox.router.contexts`) from the same :class:`ResourceView`.

Deliberate differences from upstream (§3.5-§3.7, §10.3):

* an explicit target beats route matching: a component-to-component request
  only matches routes *of the component it names*, and falls back to that
  component's default handler, never to some other component's route;
* the target must be a declared dependency of the source (upstream checks
  only deployment membership);
* a context whose data does not satisfy the deployment is refused with the
  full problem list, as upstream.

Both paths run once per event, so resolved contexts are cached (see
:meth:`Router.context`) and a lookup that finds the view unchanged since the
last one costs a dictionary read. The broker's path goes one step further:
everything :meth:`Router.route_component` decides from the context, the
sender's version and the target alone is kept per view revision, so a request
like the last one costs the per-event checks and a dictionary read.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec

from kubefox.core.errors import (
    ComponentMismatchError,
    DeadlineExceededError,
    InvalidError,
    NotFoundError,
    RouteNotFoundError,
    UnauthorizedError,
    UnsupportedAdapterError,
)
from kubefox.core.events import (
    VAL_PATH_SUFFIX,
    Category,
    Component,
    Event,
    EventContext,
    MatchedEvent,
)
from kubefox.resources import (
    AppDeployment,
    ComponentType,
    Data,
    Dependency,
    Environment,
    HTTPAdapter,
    ReleaseManifest,
    VirtualEnvironment,
    merge_data,
    validate_app_deployment,
)
from kubefox.resources.validation import AnyHTTPAdapter
from kubefox.router.contexts import ResolvedContext, build_matcher
from kubefox.router.releases import ReleaseMatcher
from kubefox.router.view import ResourceView
from kubefox.store.protocol import ResourceKey


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Routed:
    """Where an event goes: its context, the target component, the route and what it captured.

    The router may hand the same instance to several events (see
    :meth:`Router.route_component`): it is never changed.
    """

    context: ResolvedContext
    target: Component
    route_id: int
    params: dict[str, str]
    path_suffix: str | None
    #: The HTTPAdapter a request to an adapter goes to (see :meth:`Router.route_adapter`).
    adapter: AnyHTTPAdapter | None = None

    def matched(self, event: Event, *, ttl: int | None = None) -> MatchedEvent:
        """What the target receives: the event stamped with context and target, and its env.

        ``ttl`` replaces the event's remaining time to live (the broker passes
        what is left after its own processing) in the same copy.
        """
        values = event.values
        if self.path_suffix is not None:
            values = {**values, VAL_PATH_SUFFIX: self.path_suffix}
        params = {**event.params, **self.params} if self.params else event.params
        # Events are msgspec structs, not dataclasses: dataclasses.replace rejects them.
        routed = msgspec.structs.replace(
            event,
            context=self.context.event_context,
            target=self.target,
            params=params,
            values=values,
            ttl=event.ttl if ttl is None else ttl,
        )
        return MatchedEvent(
            event=routed, route_id=self.route_id, env=self.context.shared_env(self.target.name)
        )


_ContextKey = tuple[str, str, str]
_Revisions = tuple[str | None, ...]
# (context, source app, name, hash, target name, app, hash): all route_component's
# checks and lookups past the per-event ones depend on these alone.
_RequestKey = tuple[EventContext, str, str, str, str, str, str]
# Bound on the cache of component requests; clearing it only costs a lookup per key.
_MAX_REQUESTS = 10_000


@dataclasses.dataclass(frozen=True, slots=True)
class _Cached:
    view_revision: int  # the view's revision when ``revisions`` were last compared
    revisions: _Revisions
    context: ResolvedContext


@dataclasses.dataclass(frozen=True, slots=True)
class _CheckedRequest:
    """A component request :meth:`Router.route_component` let through, at one view revision."""

    view_revision: int
    context: ResolvedContext
    target: Component
    has_routes: bool
    has_default: bool
    #: The answer itself when the target has no routes: nothing in the event can change it.
    routed: Routed | None


def _request_key(context: EventContext, source: Component, target: Component) -> _RequestKey:
    return (context, source.app, source.name, source.hash, target.name, target.app, target.hash)


class Router:
    """Routes events of one platform using a live :class:`ResourceView`."""

    def __init__(self, view: ResourceView, *, platform: str) -> None:
        self.view = view
        self.platform = platform
        self._contexts: dict[_ContextKey, _Cached] = {}
        self._requests: dict[_RequestKey, _CheckedRequest] = {}
        self.releases = ReleaseMatcher(view)

    def context(
        self, app_deployment: str, virtual_environment: str, release_manifest: str = ""
    ) -> ResolvedContext:
        """The resolved context for a deployment in a virtual environment.

        With a ``release_manifest`` (a Stable release) the data and adapters
        are the manifest's, frozen at activation; otherwise the live ones.
        Contexts are cached by the resource versions of everything they are
        built from; while the view has not changed at all, the cached one is
        returned without comparing those.

        Raises:
            NotFoundError: the deployment, virtual environment, its environment
                or the manifest does not exist.
            InvalidError: the manifest is not one of the virtual environment's.
        """
        view = self.view
        key = (app_deployment, virtual_environment, release_manifest)
        cached = self._contexts.get(key)
        if cached is not None and cached.view_revision == view.revision:
            return cached.context
        deployment = view.get(AppDeployment, app_deployment)
        if deployment is None:
            raise NotFoundError(f'AppDeployment "{app_deployment}" not found')
        ve = view.get(VirtualEnvironment, virtual_environment)
        if ve is None:
            raise NotFoundError(f'VirtualEnvironment "{virtual_environment}" not found')
        adapters: dict[str, AnyHTTPAdapter]
        if release_manifest:
            manifest = view.get(ReleaseManifest, release_manifest)
            if manifest is None:
                raise NotFoundError(f'ReleaseManifest "{release_manifest}" not found')
            if manifest.spec.virtual_environment.metadata.name != virtual_environment:
                raise InvalidError(
                    "event context is invalid",
                    reason=f'ReleaseManifest "{release_manifest}" is not a release of '
                    f'VirtualEnvironment "{virtual_environment}"',
                )
            adapters = {adapter.metadata.name: adapter for adapter in manifest.spec.adapters.http}
            source_revision = manifest.metadata.resource_version
            layers: tuple[Data, Data | None] = (manifest.data, None)
            secret_sources: tuple[tuple[ResourceKey, str | None], ...] = (
                (
                    ResourceKey(
                        "ReleaseManifest", release_manifest, manifest.metadata.namespace or ""
                    ),
                    source_revision,
                ),
            )
        else:
            environment = view.get(Environment, ve.spec.environment)
            if environment is None:
                raise NotFoundError(f'Environment "{ve.spec.environment}" not found')
            adapters = {adapter.metadata.name: adapter for adapter in view.all(HTTPAdapter)}
            source_revision = environment.metadata.resource_version
            layers = (environment.data, ve.data)
            secret_sources = (
                (ResourceKey("Environment", environment.metadata.name), source_revision),
                (
                    ResourceKey(
                        "VirtualEnvironment", virtual_environment, ve.metadata.namespace or ""
                    ),
                    ve.metadata.resource_version,
                ),
            )
        revisions: _Revisions = (
            deployment.metadata.resource_version,
            ve.metadata.resource_version,
            source_revision,
            *(adapters[name].metadata.resource_version for name in sorted(adapters)),
        )
        if cached is not None and cached.revisions == revisions:
            self._contexts[key] = _Cached(view.revision, revisions, cached.context)
            return cached.context
        data = merge_data(*layers)  # only when the cache missed: it validates every value
        resolved = ResolvedContext(
            event_context=EventContext(
                platform=self.platform,
                virtual_environment=virtual_environment,
                app_deployment=app_deployment,
                release_manifest=release_manifest,
            ),
            deployment=deployment,
            data=data,
            problems=tuple(validate_app_deployment(deployment, data, adapters=adapters)),
            matcher=build_matcher(deployment, data),
            adapters=adapters,
            secret_sources=secret_sources,
        )
        self._contexts[key] = _Cached(view.revision, revisions, resolved)
        return resolved

    def route_genesis(self, event: Event) -> Routed:
        """Route an event that enters the platform (from httpsrv).

        Raises:
            InvalidError: only one of deployment and virtual environment is given,
                or the context has problems (400).
            NotFoundError: a named resource does not exist (404).
            RouteNotFoundError: no route matches (404).
        """
        context = event.context
        if not (context.app_deployment or context.virtual_environment):
            if context.release_manifest:
                raise InvalidError(
                    "event context is invalid",
                    reason="a release manifest needs the app deployment and virtual environment",
                )
            return self._route_release(event)
        if not (context.app_deployment and context.virtual_environment):
            raise InvalidError(
                "event context is invalid",
                reason="the app deployment (kf-dep) and the virtual environment (kf-ve) "
                "must be given together",
            )
        resolved = self.context(context.app_deployment, context.virtual_environment)
        resolved.raise_if_invalid()
        match = resolved.matcher.match(event)
        if match is None:
            raise RouteNotFoundError()
        name, route_id = match.route.target
        target = resolved.component(name)
        if target is None:  # the matcher is built from the deployment's own components
            raise RouteNotFoundError()
        return Routed(
            context=resolved,
            target=target,
            route_id=route_id,
            params=match.params,
            path_suffix=match.path_suffix,
        )

    def route_component(self, event: Event, *, sender: Component) -> Routed:
        """Route a request a component sent, after checking it may send it.

        ``sender`` is the identity the transport vouches for (the broker
        subject the event arrived on), not what the event claims.

        Raises:
            UnauthorizedError: the event's source is not the sender, or the target
                is not a declared dependency of the source (403).
            ComponentMismatchError: source or target is not part of the
                deployment at that hash (502).
            InvalidError: malformed context or event (400).
            DeadlineExceededError: the event's TTL is spent.
            UnsupportedAdapterError: the target is an adapter (see :meth:`route_adapter`).
        """
        self._check_sender(event, sender)
        source, target = event.source, event.target
        if target is not None:
            known = self._requests.get(_request_key(event.context, source, target))
            if known is not None and known.view_revision == self.view.revision:
                if known.routed is not None:
                    return known.routed
                return self._component_route(
                    event,
                    known.context,
                    known.target,
                    has_routes=known.has_routes,
                    has_default=known.has_default,
                )
        revision = self.view.revision
        resolved, dependency = self._checked_context(event)
        if target is None:  # pragma: no cover - checked by _checked_context
            raise InvalidError("event has no target")
        if dependency.type is not ComponentType.KUBEFOX:
            raise UnsupportedAdapterError(f'adapter "{target.name}" is not supported yet')
        target_def = resolved.definition(target.name)
        resolved_target = resolved.component(target.name)
        if (
            target_def is None
            or resolved_target is None
            or (target.app and target.app != resolved.app)
        ):
            raise ComponentMismatchError("component not part of app", component=target.name)
        if target.hash and target.hash != target_def.hash:
            raise ComponentMismatchError("hash does not match app", component=target.name)
        has_routes, has_default = bool(target_def.routes), target_def.default_handler
        routed = self._component_route(
            event, resolved, resolved_target, has_routes=has_routes, has_default=has_default
        )
        if len(self._requests) >= _MAX_REQUESTS:
            self._requests.clear()
        self._requests[_request_key(event.context, source, target)] = _CheckedRequest(
            revision,
            resolved,
            resolved_target,
            has_routes,
            has_default,
            None if has_routes else routed,
        )
        return routed

    def route_adapter(self, event: Event, *, sender: Component) -> Routed:
        """Check a request a component sent to an HTTPAdapter; ``adapter`` is set.

        The checks are :meth:`route_component`'s; the adapter comes from the
        context (the manifest's for a Stable release). Templates are not
        resolved here: the caller resolves them when it makes the call, so
        no secret ever sits in an event.

        Raises:
            UnsupportedAdapterError: the dependency is not an HTTPAdapter.
            NotFoundError: the context has no such adapter.
            and every error of :meth:`route_component`.
        """
        self._check_sender(event, sender)
        resolved, dependency = self._checked_context(event)
        target = event.target
        if target is None:  # pragma: no cover - checked by _checked_context
            raise InvalidError("event has no target")
        if dependency.type is not ComponentType.HTTP_ADAPTER:
            raise UnsupportedAdapterError(
                f'"{target.name}" is a {dependency.type} dependency, not an HTTPAdapter'
            )
        adapter = resolved.adapters.get(target.name)
        if adapter is None:
            raise NotFoundError(f'HTTPAdapter "{target.name}" not found')
        return Routed(
            context=resolved,
            target=Component(type=ComponentType.HTTP_ADAPTER.value, name=target.name),
            route_id=-1,
            params={},
            path_suffix=None,
            adapter=adapter,
        )

    def _check_sender(self, event: Event, sender: Component) -> None:
        """What is checked of every component request: who sent it, what it is, its TTL."""
        source = event.source
        if (source.app, source.name, source.hash, source.id) != (
            sender.app,
            sender.name,
            sender.hash,
            sender.id,
        ):
            raise UnauthorizedError(
                "event source does not match the sending component",
                claimed=source.key,
                sender=sender.key,
            )
        if event.category is not Category.REQUEST:
            raise InvalidError("only requests are routed by the broker", category=event.category)
        if event.ttl <= 0:
            raise DeadlineExceededError("event ttl is spent")

    def _checked_context(self, event: Event) -> tuple[ResolvedContext, Dependency]:
        """The context of a checked request (:meth:`_check_sender`) and the dependency it calls."""
        source = event.source
        context = event.context
        if context.platform != self.platform:
            raise InvalidError("event context is invalid", reason="platform does not match")
        if not (context.app_deployment and context.virtual_environment):
            raise InvalidError(
                "event context is invalid",
                reason="app deployment and virtual environment are required",
            )
        resolved = self.context(
            context.app_deployment, context.virtual_environment, context.release_manifest
        )
        resolved.raise_if_invalid()
        source_def = resolved.definition(source.name)
        if source_def is None or source.app != resolved.app:
            raise ComponentMismatchError("component not part of app", component=source.name)
        if source_def.hash != source.hash:
            raise ComponentMismatchError("hash does not match app", component=source.name)
        target = event.target
        if target is None or not target.name:
            raise InvalidError("event has no target")
        dependency = source_def.dependencies.get(target.name)
        if dependency is None:
            raise UnauthorizedError(
                f'component "{source.name}" has not declared a dependency on "{target.name}"',
                source=source.name,
                target=target.name,
            )
        return resolved, dependency

    def _route_release(self, event: Event) -> Routed:
        """Release routing (§3.5 B): the first released route that matches sets the context."""
        if event.target is not None and event.target.name:
            raise InvalidError("event context is invalid", reason="genesis event target is set")
        match = self.releases.match(event)
        if match is None:
            raise RouteNotFoundError()
        released = match.route.target
        resolved = self.context(
            released.app_deployment, released.virtual_environment, released.release_manifest
        )
        resolved.raise_if_invalid()
        target = resolved.component(released.component)
        if target is None:  # the release matcher is built from the deployment's own components
            raise RouteNotFoundError()
        return Routed(
            context=resolved,
            target=target,
            route_id=released.route_id,
            params=match.params,
            path_suffix=match.path_suffix,
        )

    def _component_route(
        self,
        event: Event,
        resolved: ResolvedContext,
        target: Component,
        *,
        has_routes: bool,
        has_default: bool,
    ) -> Routed:
        params: dict[str, Any] = {}
        suffix: str | None = None
        route_id = -1
        # A target without routes (a backend with only a default handler, the
        # common case) cannot match anything: skip the matcher.
        for match in resolved.matcher.match_all(event) if has_routes else ():
            name, matched_id = match.route.target
            if name == target.name:
                route_id, params, suffix = matched_id, match.params, match.path_suffix
                break
        if route_id == -1 and not has_default:
            raise RouteNotFoundError(f'component "{target.name}" has no matching route')
        return Routed(
            context=resolved, target=target, route_id=route_id, params=params, path_suffix=suffix
        )
