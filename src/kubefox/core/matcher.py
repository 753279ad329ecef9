"""Compiled routes and the indexed matcher that picks the route for an event.

Every genesis event is matched against the routes of every released
deployment, so this is on the broker's hot path and must not slow down as
releases pile up. A rule's AST (:mod:`kubefox.core.routes`) is compiled once
into closures with precompiled regexes; :class:`RouteMatcher` buckets routes
by the literal host and first path segment they require, so one event checks
a handful of candidates instead of every route, with the same answer a linear
scan in priority order would give.

Captured params live in a list of ``(name, value)`` pairs that ``||`` and
``!`` roll back on failure, so a sub-predicate that failed never leaks params
into the result (upstream does leak them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from kubefox.core import route_ast, routes
from kubefox.core.events import VAL_HEADER, VAL_HOST, VAL_METHOD, VAL_PATH, VAL_QUERY, Event

T = TypeVar("T", bound=Hashable)

_Params = list[tuple[str, str]]
_Predicate = Callable[["_EventView", _Params], bool]
_Segments = tuple[route_ast.Segment, ...]

# Key of the path suffix in the params list; "\0" is never part of a param name.
_SUFFIX = "\0suffix"


class _EventView:
    """The parts of an event that predicates read, decoded once per match."""

    __slots__ = (
        "first",
        "header",
        "host",
        "method",
        "path",
        "query",
        "type",
        "type_lower",
    )

    def __init__(self, event: Event) -> None:
        values = event.values
        path = values.get(VAL_PATH)
        self.path = [s for s in path.split("/") if s] if isinstance(path, str) else []
        self.first = self.path[0] if self.path else ""
        host = values.get(VAL_HOST)
        self.host = _normal_host(host) if isinstance(host, str) else ""
        method = values.get(VAL_METHOD)
        self.method = method.upper() if isinstance(method, str) else ""
        header = values.get(VAL_HEADER)
        self.header: dict[str, Any] = header if isinstance(header, dict) else {}
        query = values.get(VAL_QUERY)
        self.query: dict[str, Any] = query if isinstance(query, dict) else {}
        self.type = event.type
        self.type_lower = event.type.lower()


def _normal_host(host: str) -> str:
    """``host`` lower-cased, without its port and without empty labels."""
    host = host.lower()
    # An IPv6 literal keeps its colons: the port follows the closing bracket.
    bracket = host.find("]") + 1 if host.startswith("[") else 0
    host = host[:bracket] if bracket else host.partition(":")[0]
    if host.startswith(".") or host.endswith(".") or ".." in host:
        host = ".".join(label for label in host.split(".") if label)
    return host


@dataclass(frozen=True, slots=True, kw_only=True)
class Route(Generic[T]):
    """A resolved rule compiled for matching, with whatever it routes to.

    Build one with :func:`compile_route`. ``target`` is the caller's payload
    (for instance a component and its event context); ``priority`` orders
    routes, highest first.
    """

    id: int
    rule: str
    priority: int
    target: T
    node: route_ast.Rule = field(repr=False, compare=False)
    predicate: _Predicate = field(repr=False, compare=False)

    def matches(self, event: Event) -> Match[T] | None:
        """This route's match for ``event``, or ``None``; no index involved."""
        params: _Params = []
        return _match(self, params) if self.predicate(_EventView(event), params) else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Match(Generic[T]):
    """The route that matched, the params it captured and the path suffix, if any."""

    route: Route[T]
    params: dict[str, str]
    path_suffix: str | None


def _match(route: Route[T], captured: _Params) -> Match[T]:
    params: dict[str, str] = {}
    suffix: str | None = None
    for key, value in captured:
        if key == _SUFFIX:
            suffix = value
        else:
            params[key] = value
    return Match(route=route, params=params, path_suffix=suffix)


def compile_route(rule: str, *, target: T, id: int = 0, priority: int | None = None) -> Route[T]:
    """Parse and compile a resolved rule; ``priority`` defaults to :func:`routes.priority`.

    Raises:
        RouteInvalidError: the rule does not parse.
    """
    node = routes.parse(rule)
    return Route(
        id=id,
        rule=rule,
        priority=routes.priority(rule) if priority is None else priority,
        target=target,
        node=node,
        predicate=_compile(node)[0],
    )


def _compile(node: route_ast.Rule) -> tuple[_Predicate, bool]:
    """The predicate for ``node`` and whether it may capture params."""
    if isinstance(node, route_ast.And | route_ast.Or | route_ast.Not):
        return _compile_logic(node)
    if isinstance(node, route_ast.Path | route_ast.PathPrefix):
        return _segments_predicate(node.segments, prefix=isinstance(node, route_ast.PathPrefix))
    if isinstance(node, route_ast.Host):
        return _host_predicate(node.segments)
    return _compile_simple(node), False


def _compile_logic(node: route_ast.And | route_ast.Or | route_ast.Not) -> tuple[_Predicate, bool]:
    if isinstance(node, route_ast.Not):
        inner, captures = _compile(node.operand)
        if captures:
            return _negation_rollback(inner), False
        return (lambda view, out: not inner(view, out)), False
    compiled = [_compile(operand) for operand in node.operands]
    captures = any(c for _, c in compiled)
    predicates = [p for p, _ in compiled]
    if isinstance(node, route_ast.And):
        return _all_of(predicates), captures
    return _any_of(predicates, rollback=captures), captures


def _compile_simple(
    node: route_ast.Header | route_ast.Query | route_ast.Method | route_ast.Type | route_ast.All,
) -> _Predicate:
    if isinstance(node, route_ast.Header | route_ast.Query):
        return _value_predicate(node)
    if isinstance(node, route_ast.Method):
        methods = frozenset(m.upper() for m in node.methods)
        return lambda view, out: view.method in methods
    if isinstance(node, route_ast.Type):
        exact, lower = node.value, node.value.lower()
        return lambda view, out: view.type == exact or view.type_lower.endswith(lower)
    return lambda view, out: True


def _all_of(predicates: list[_Predicate]) -> _Predicate:
    if len(predicates) == 2:
        a, b = predicates
        return lambda view, out: a(view, out) and b(view, out)
    return lambda view, out: all(p(view, out) for p in predicates)


def _any_of(predicates: list[_Predicate], *, rollback: bool) -> _Predicate:
    if not rollback:
        return lambda view, out: any(p(view, out) for p in predicates)

    def any_of(view: _EventView, out: _Params) -> bool:
        mark = len(out)
        for predicate in predicates:
            if predicate(view, out):
                return True
            del out[mark:]  # a failed && may have captured before failing
        return False

    return any_of


def _negation_rollback(inner: _Predicate) -> _Predicate:
    def negation(view: _EventView, out: _Params) -> bool:
        mark = len(out)
        matched = inner(view, out)
        del out[mark:]
        return not matched

    return negation


def _segment_checks(
    segments: _Segments, default: str
) -> tuple[
    list[tuple[int, str]], list[tuple[int, Callable[[str], object] | None, str]], str | None
]:
    """Split a pattern into literal checks, param checks and the ``{name...}`` name."""
    literals: list[tuple[int, str]] = []
    params: list[tuple[int, Callable[[str], object] | None, str]] = []
    rest: str | None = None
    for i, segment in enumerate(segments):
        if isinstance(segment, route_ast.Literal):
            literals.append((i, segment.text))
        elif segment.rest:
            rest = segment.name
        elif segment.regex is None or segment.regex == default:
            # Split segments are non-empty and never hold the separator: no regex needed.
            if segment.name:
                params.append((i, None, segment.name))
        else:
            params.append((i, re.compile(segment.regex).fullmatch, segment.name))
    return literals, params, rest


def _segments_predicate(segments: _Segments, *, prefix: bool) -> tuple[_Predicate, bool]:
    literals, params, rest = _segment_checks(segments, "[^/]+")
    size = len(segments)
    if not params and rest is None and len(literals) == size:
        texts = [text for _, text in literals]
        if not prefix:
            return (lambda view, out: view.path == texts), False

        def literal_prefix(view: _EventView, out: _Params) -> bool:
            path = view.path
            if len(path) < size or path[:size] != texts:
                return False
            out.append((_SUFFIX, "/".join(path[size:])))
            return True

        return literal_prefix, True

    exact = not prefix and rest is None

    def pattern(view: _EventView, out: _Params) -> bool:
        path = view.path
        if len(path) != size if exact else len(path) < size:
            return False
        for i, text in literals:
            if path[i] != text:
                return False
        for i, check, _ in params:
            if check is not None and check(path[i]) is None:
                return False
        out.extend((name, path[i]) for i, _, name in params if name)
        if rest is not None:
            out.append((rest, "/".join(path[size - 1 :])))
        if prefix:
            out.append((_SUFFIX, "" if rest is not None else "/".join(path[size:])))
        return True

    return pattern, True


def _host_predicate(segments: _Segments) -> tuple[_Predicate, bool]:
    lowered = tuple(
        route_ast.Literal(text=s.text.lower()) if isinstance(s, route_ast.Literal) else s
        for s in segments
    )
    literals, params, _ = _segment_checks(lowered, "[^.]+")
    if not params and len(literals) == len(lowered):
        host = ".".join(text for _, text in literals)
        return (lambda view, out: view.host == host), False
    size = len(lowered)

    def pattern(view: _EventView, out: _Params) -> bool:
        labels = view.host.split(".") if view.host else []
        if len(labels) != size:
            return False
        for i, text in literals:
            if labels[i] != text:
                return False
        for i, check, _ in params:
            if check is not None and check(labels[i]) is None:
                return False
        out.extend((name, labels[i]) for i, _, name in params if name)
        return True

    return pattern, True


def _value_predicate(node: route_ast.Header | route_ast.Query) -> _Predicate:
    is_header = isinstance(node, route_ast.Header)
    key = _canonical_header(node.name) if is_header else node.name
    value = node.value

    def values_of(view: _EventView) -> list[Any] | tuple[str, ...]:
        found = (view.header if is_header else view.query).get(key)
        if isinstance(found, list):
            return found
        return (found,) if isinstance(found, str) else ()

    if isinstance(value, route_ast.AnyValue):
        return lambda view, out: bool(values_of(view))
    if isinstance(value, route_ast.Literal):
        text = value.text
        return lambda view, out: text in values_of(view)
    check = re.compile(value.pattern).fullmatch
    return lambda view, out: any(check(v) is not None for v in values_of(view))


def _canonical_header(name: str) -> str:
    """Go's ``textproto.CanonicalMIMEHeaderKey``: ``content-type`` -> ``Content-Type``."""
    if not all(c.isascii() and (c.isalnum() or c in "!#$%&'*+-.^_`|~") for c in name):
        return name  # not a valid token: Go leaves it alone too
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def _index_keys(node: route_ast.Rule) -> tuple[str | None, str | None]:
    """The literal host and first path segment every match of ``node`` must have."""
    host: str | None = None
    first: str | None = None
    for term in node.operands if isinstance(node, route_ast.And) else (node,):
        if isinstance(term, route_ast.Host) and all(
            isinstance(s, route_ast.Literal) for s in term.segments
        ):
            host = ".".join(
                s.text.lower() for s in term.segments if isinstance(s, route_ast.Literal)
            )
        elif isinstance(term, route_ast.Path | route_ast.PathPrefix):
            if term.segments and isinstance(term.segments[0], route_ast.Literal):
                first = term.segments[0].text
            elif isinstance(term, route_ast.Path) and not term.segments:
                first = ""  # Path(`/`): only the root, whose first segment is ""
    return host, first


_UNBOUNDED = 1 << 62


def _path_bounds(node: route_ast.Rule) -> tuple[int, int]:
    """Fewest and most path segments any match of ``node`` can have."""
    low, high = 0, _UNBOUNDED
    for term in node.operands if isinstance(node, route_ast.And) else (node,):
        if isinstance(term, route_ast.Path | route_ast.PathPrefix):
            size = len(term.segments)
            last = term.segments[-1] if term.segments else None
            low = max(low, size)
            if isinstance(term, route_ast.Path) and not (
                isinstance(last, route_ast.Param) and last.rest
            ):
                high = min(high, size)
    return low, high


# (rank, predicate, route, fewest segments, most segments): the bounds reject
# most candidates without calling into the predicate's closures.
_Entry = tuple[int, _Predicate, Route[Any], int, int]


class RouteMatcher(Generic[T]):
    """Picks the highest-priority route that matches an event (first added wins ties).

    Routes are bucketed by the literal host and first path segment they
    require; routes that require neither (``||``, ``!``, ``All()``, a
    parameter first) are always checked. Candidates are tried in global
    priority order, so the result equals a linear scan. The matcher is
    immutable: build a new one when the set of routes changes.
    """

    def __init__(self, compiled_routes: Iterable[Route[T]]) -> None:
        ordered = sorted(
            compiled_routes, key=lambda route: -route.priority
        )  # stable: ties keep order
        self._routes: tuple[Route[T], ...] = tuple(ordered)
        self._by_host_first: dict[str, dict[str, list[_Entry]]] = {}
        self._by_host: dict[str, list[_Entry]] = {}
        self._by_first: dict[str, list[_Entry]] = {}
        self._always: list[_Entry] = []
        for rank, route in enumerate(ordered):
            entry: _Entry = (rank, route.predicate, route, *_path_bounds(route.node))
            host, first = _index_keys(route.node)
            if host is not None and first is not None:
                self._by_host_first.setdefault(host, {}).setdefault(first, []).append(entry)
            elif host is not None:
                self._by_host.setdefault(host, []).append(entry)
            elif first is not None:
                self._by_first.setdefault(first, []).append(entry)
            else:
                self._always.append(entry)

    @property
    def routes(self) -> tuple[Route[T], ...]:
        """Every route, in the order they are tried."""
        return self._routes

    def __len__(self) -> int:
        return len(self._routes)

    def _candidates(self, view: _EventView) -> tuple[list[_Entry] | None, ...]:
        # Empty tables are skipped: a lookup in a large cold dict is not free.
        by_first = self._by_host_first.get(view.host) if self._by_host_first else None
        return (
            by_first.get(view.first) if by_first else None,
            self._by_host.get(view.host) if self._by_host else None,
            self._by_first.get(view.first) if self._by_first else None,
            self._always,
        )

    def match(self, event: Event) -> Match[T] | None:
        """The first route, by priority, that matches ``event``; ``None`` if none does."""
        view = _EventView(event)
        size = len(view.path)
        best: Route[Any] | None = None
        best_rank = _UNBOUNDED
        best_params: _Params = []
        out: _Params = []
        for bucket in self._candidates(view):
            if not bucket:
                continue
            # Each bucket is in priority order: its first match is its best, and
            # nothing after a better match found elsewhere can win.
            for rank, predicate, route, low, high in bucket:
                if rank >= best_rank:
                    break
                if low <= size <= high and predicate(view, out):
                    best, best_rank, best_params, out = route, rank, out, []
                    break
                if out:
                    out.clear()
        return None if best is None else _match(best, best_params)

    def match_all(self, event: Event) -> list[Match[T]]:
        """Every route that matches ``event``, in the order :meth:`match` tries them.

        For callers that choose among equally good routes themselves, such as
        a release splitting traffic between two deployments of one app.
        """
        view = _EventView(event)
        found: list[tuple[int, Match[T]]] = []
        for bucket in self._candidates(view):
            for rank, predicate, route, _, _ in bucket or ():
                out: _Params = []
                if predicate(view, out):
                    found.append((rank, _match(route, out)))
        found.sort(key=lambda pair: pair[0])
        return [found_match for _, found_match in found]
