"""Matching events against compiled routes: semantics, upstream fixes, ordering, index."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubefox.core.errors import RouteInvalidError
from kubefox.core.events import TYPE_HTTP, TYPE_KUBEFOX, Event
from kubefox.core.matcher import Match, Route, RouteMatcher, compile_route
from kubefox.core.routes import resolve


def http_event(
    path: str = "/",
    *,
    host: str = "localhost:8080",
    method: str = "GET",
    header: dict[str, list[str]] | None = None,
    query: dict[str, list[str]] | None = None,
    type: str = TYPE_HTTP,
) -> Event:
    return Event(
        type=type,
        values={
            "method": method,
            "path": path,
            "host": host,
            "header": header or {},
            "queryParam": query or {},
        },
    )


def match_rule(rule: str, event: Event) -> Match[int] | None:
    return compile_route(rule, target=0).matches(event)


# --- predicates -----------------------------------------------------------------------


def test_path_matches_whole_path_and_captures_params():
    """Path needs the same number of segments and captures {name} segments."""
    rule = "Path(`/orders/{id}/items/{item}`)"

    found = match_rule(rule, http_event("/orders/7/items/x1"))

    assert found is not None
    assert found.params == {"id": "7", "item": "x1"}
    assert found.path_suffix is None


def test_path_rejects_longer_and_shorter_paths():
    """Path is a whole-path match, not a prefix match."""
    rule = "Path(`/orders/{id}`)"

    results = [match_rule(rule, http_event(p)) for p in ("/orders", "/orders/1/x")]

    assert results == [None, None]


def test_path_param_regex_must_match_the_whole_segment():
    """{name:regex} is anchored at both ends."""
    rule = "Path(`/orders/{id:[0-9]+}`)"

    results = [match_rule(rule, http_event(p)) is not None for p in ("/orders/12", "/orders/12a")]

    assert results == [True, False]


def test_path_param_regex_with_colons_matches():
    """A regex containing colons keeps them (upstream dropped them)."""
    rule = "Path(`/at/{time:[0-9]{2}:[0-9]{2}}`)"

    found = match_rule(rule, http_event("/at/12:30"))

    assert found is not None
    assert found.params == {"time": "12:30"}


def test_path_anonymous_param_matches_without_capturing():
    """{:regex} and {} match a segment but add no param."""
    rule = "Path(`/{:v[12]}/{}/{id}`)"

    found = match_rule(rule, http_event("/v2/anything/9"))

    assert found is not None
    assert found.params == {"id": "9"}


def test_path_rest_param_captures_remaining_segments():
    """A final {name...} captures one or more remaining segments."""
    rule = "Path(`/files/{rest...}`)"

    found = match_rule(rule, http_event("/files/a/b/c.txt"))
    empty = match_rule(rule, http_event("/files"))

    assert found is not None
    assert found.params == {"rest": "a/b/c.txt"}
    assert empty is None


def test_path_prefix_sets_path_suffix():
    """PathPrefix matches leading segments; the rest, without slashes around, is the suffix."""
    rule = "PathPrefix(`/static/{version}`)"

    found = match_rule(rule, http_event("/static/v1/css/site.css"))

    assert found is not None
    assert found.params == {"version": "v1"}
    assert found.path_suffix == "css/site.css"


def test_path_prefix_with_no_remainder_has_empty_suffix():
    """The whole path matching a prefix leaves an empty suffix."""
    rule = "PathPrefix(`/static`)"

    found = match_rule(rule, http_event("/static/"))

    assert found is not None
    assert found.path_suffix == ""


def test_path_literal_is_case_sensitive():
    """Path segments compare exactly."""
    rule = "Path(`/Hello`)"

    results = [match_rule(rule, http_event(p)) is not None for p in ("/Hello", "/hello")]

    assert results == [True, False]


def test_host_captures_params_and_ignores_case():
    """Host splits on dots, lower-cases the event host and captures params."""
    rule = "Host(`{tenant}.example.com`)"

    found = match_rule(rule, http_event(host="ACME.Example.com:443"))

    assert found is not None
    assert found.params == {"tenant": "acme"}


def test_host_ipv6_literal_drops_only_the_port():
    """An IPv6 host keeps its colons; only the port after the bracket is dropped."""
    rule = "Host(`[::1]`)"

    found = match_rule(rule, http_event(host="[::1]:8080"))

    assert found is not None


def test_method_matches_any_argument_ignoring_case():
    """Method accepts several methods, compared case-insensitively."""
    rule = "Method(`get`, `POST`)"

    results = [match_rule(rule, http_event(method=m)) is not None for m in ("GET", "post", "PUT")]

    assert results == [True, True, False]


def test_type_matches_exact_or_case_insensitive_suffix():
    """Type(`http`) matches io.kubefox.http; other types do not match."""
    rule = "Type(`HTTP`)"

    results = [
        match_rule(rule, http_event(type=t)) is not None for t in (TYPE_HTTP, "HTTP", TYPE_KUBEFOX)
    ]

    assert results == [True, True, False]


def test_header_key_is_canonicalised():
    """Header(`x-tenant`, ...) reads the canonical X-Tenant header."""
    rule = "Header(`x-tenant`, `acme`)"

    found = match_rule(rule, http_event(header={"X-Tenant": ["other", "acme"]}))

    assert found is not None


def test_header_any_value_needs_the_header():
    """{} matches any value, but the header must be present."""
    rule = "Header(`Authorization`, `{}`)"

    results = [
        match_rule(rule, http_event(header=h)) is not None
        for h in ({"Authorization": ["Bearer x"]}, {"Authorization": [""]}, {})
    ]

    assert results == [True, True, False]


def test_header_regex_value_is_anchored():
    """{regex} must match a whole header value."""
    rule = "Header(`X-Id`, `{[a-z0-9]+}`)"

    results = [
        match_rule(rule, http_event(header={"X-Id": [v]})) is not None for v in ("ab12", "ab-12")
    ]

    assert results == [True, False]


def test_query_key_is_case_sensitive():
    """Query parameter names are compared exactly."""
    rule = "Query(`page`, `{[0-9]+}`)"

    results = [
        match_rule(rule, http_event(query=q)) is not None
        for q in ({"page": ["2"]}, {"Page": ["2"]}, {"page": ["x"]})
    ]

    assert results == [True, False, False]


def test_all_matches_any_event():
    """All() matches even an event with no values."""
    rule = "All()"

    found = match_rule(rule, Event())

    assert found is not None


def test_not_negates_and_keeps_no_params():
    """!P matches when P does not, and never contributes params."""
    rule = "!Path(`/admin/{x}`) && PathPrefix(`/`)"

    allowed = match_rule(rule, http_event("/public/a"))
    denied = match_rule(rule, http_event("/admin/a"))

    assert allowed is not None
    assert allowed.params == {}
    assert denied is None


def test_or_takes_params_from_the_branch_that_matched():
    """Only the matching branch of || provides params."""
    rule = "Path(`/a/{x}`) || Path(`/b/{y}`)"

    found = match_rule(rule, http_event("/b/2"))

    assert found is not None
    assert found.params == {"y": "2"}


def test_event_without_http_values_does_not_match_http_predicates():
    """Missing path, host, method, headers or query simply do not match."""
    rules = [
        "Path(`/a`)",
        "Host(`a.com`)",
        "Method(`GET`)",
        "Header(`A`, `{}`)",
        "Query(`a`, `{}`)",
    ]

    results = [match_rule(rule, Event(type=TYPE_KUBEFOX)) for rule in rules]

    assert results == [None] * len(rules)


def test_compile_route_rejects_invalid_rules():
    """Compiling parses, so a bad rule fails at build time, not at match time."""
    rule = "Path(`/a`"

    with pytest.raises(RouteInvalidError):
        compile_route(rule, target=0)


# --- fixes over upstream --------------------------------------------------------------


def test_root_path_matches_root():
    """Path(`/`) matches the root path (upstream never matched it)."""
    rule = "Path(`/`)"

    results = [match_rule(rule, http_event(p)) is not None for p in ("/", "", "/a")]

    assert results == [True, True, False]


def test_root_path_prefix_matches_everything_with_whole_suffix():
    """PathPrefix(`/`) matches every path; the suffix is the path without its leading slash."""
    rule = "PathPrefix(`/`)"

    found = match_rule(rule, http_event("/a/b/c"))
    root = match_rule(rule, http_event("/"))

    assert found is not None
    assert found.path_suffix == "a/b/c"
    assert root is not None
    assert root.path_suffix == ""


def test_array_variable_in_path_matches_only_its_values():
    """An array variable in a segment is an alternation of its values (upstream: any segment)."""
    rule = resolve("Path(`/{{.Vars.envs}}/hello`)", {"envs": ["qa", "a.b"]})

    results = [
        match_rule(rule, http_event(p)) is not None
        for p in ("/qa/hello", "/a.b/hello", "/prod/hello", "/axb/hello")
    ]

    assert results == [True, True, False, False]


def test_array_variable_in_host_and_header_matches_only_its_values():
    """Arrays in Host segments and Header values match their own values only."""
    rule = resolve(
        "Host(`{{.Vars.subs}}.example.com`) && Header(`X-Env`, `{{.Vars.envs}}`)",
        {"subs": ["api", "www"], "envs": ["qa", "dev"]},
    )

    results = [
        match_rule(rule, http_event(host=h, header={"X-Env": [e]})) is not None
        for h, e in (
            ("api.example.com", "qa"),
            ("www.example.com", "dev"),
            ("x.example.com", "qa"),
            ("api.example.com", "prod"),
        )
    ]

    assert results == [True, True, False, False]


def test_empty_array_variable_matches_nothing():
    """An empty array must not become a wildcard."""
    rule = resolve("Path(`/{{.Vars.envs}}`)", {"envs": []})

    found = match_rule(rule, http_event("/anything"))

    assert found is None


def test_params_of_a_failed_sub_predicate_do_not_leak():
    """A branch that captured and then failed leaves nothing in the result."""
    rule = (
        "(Path(`/a/{x}`) && Method(`POST`))"
        " || (Path(`/{y}/b`) && !(Host(`{h}.com`) && Method(`PUT`)))"
    )

    found = match_rule(rule, http_event("/a/b", host="z.com", method="GET"))

    assert found is not None
    assert found.params == {"y": "a"}


def test_params_of_a_failed_path_prefix_do_not_set_the_suffix():
    """A PathPrefix inside a failed branch sets no path suffix."""
    rule = "(PathPrefix(`/a`) && Method(`POST`)) || Path(`/a/{x}`)"

    found = match_rule(rule, http_event("/a/b"))

    assert found is not None
    assert found.path_suffix is None
    assert found.params == {"x": "b"}


def test_host_ignores_the_port():
    """Host(`localhost`) matches localhost:8080 (upstream compared the port too)."""
    rule = "Host(`localhost`)"

    results = [
        match_rule(rule, http_event(host=h)) is not None
        for h in ("localhost:8080", "localhost", "LOCALHOST:1", "localhost.com")
    ]

    assert results == [True, True, True, False]


def test_double_slashes_in_the_event_path_are_normalised():
    """Empty segments are dropped from the event path as from the pattern."""
    rule = "PathPrefix(`/a//b`)"

    found = match_rule(rule, http_event("//a///b//c/"))

    assert found is not None
    assert found.path_suffix == "c"


# --- ordering -------------------------------------------------------------------------


def test_matcher_prefers_higher_priority():
    """The longer literal rule wins over a shorter one that also matches."""
    routes = [
        compile_route("PathPrefix(`/qa/hasura`)", target="short"),
        compile_route("PathPrefix(`/qa/hasura/static`)", target="long"),
    ]
    matcher = RouteMatcher(routes)

    found = matcher.match(http_event("/qa/hasura/static/app.js"))

    assert found is not None
    assert found.route.target == "long"
    assert found.path_suffix == "app.js"


def test_matcher_breaks_ties_by_insertion_order():
    """Routes of equal priority are tried in the order given."""
    routes = [
        compile_route("Path(`/{a}`)", target="first"),
        compile_route("Path(`/{b}`)", target="second"),
    ]
    matcher = RouteMatcher(routes)

    found = matcher.match(http_event("/x"))

    assert found is not None
    assert found.route.target == "first"


def test_matcher_honours_explicit_priority():
    """A priority given at compile time overrides the computed one."""
    routes = [
        compile_route("Path(`/a/b/c/d`)", target="long"),
        compile_route("PathPrefix(`/`)", target="boosted", priority=1000),
    ]
    matcher = RouteMatcher(routes)

    found = matcher.match(http_event("/a/b/c/d"))

    assert found is not None
    assert found.route.target == "boosted"


def test_matcher_fallback_route_beats_lower_priority_indexed_route():
    """An unindexed route of higher priority wins over an indexed candidate."""
    routes = [
        compile_route("Host(`a.com`) && Path(`/x`)", target="indexed"),
        compile_route("Path(`/{p}`) && Header(`X-Long-Header-Name`, `{}`)", target="fallback"),
    ]
    matcher = RouteMatcher(routes)

    found = matcher.match(http_event("/x", host="a.com", header={"X-Long-Header-Name": ["1"]}))

    assert found is not None
    assert found.route.target == "fallback"


def test_matcher_without_a_match_returns_none():
    """No matching route is None, as is an empty matcher."""
    matcher = RouteMatcher([compile_route("Path(`/a`)", target=1)])

    empty: RouteMatcher[int] = RouteMatcher([])

    results = (matcher.match(http_event("/b")), empty.match(http_event("/a")))

    assert results == (None, None)


def test_matcher_lists_routes_in_the_order_tried():
    """routes is sorted by priority, highest first, stable on ties."""
    routes = [
        compile_route("Path(`/a`)", target=1, id=1),
        compile_route("Path(`/a/b`)", target=2, id=2),
        compile_route("Path(`/b`)", target=3, id=3),
    ]

    matcher = RouteMatcher(routes)

    assert [route.id for route in matcher.routes] == [2, 1, 3]
    assert len(matcher) == 3


# --- the index gives the same answers as a linear scan ----------------------------------

HOSTS = [
    "a.example.com",
    "b.example.com",
    "{sub}.example.com",
    "A.Example.com",
    "{:a|c}.example.com",
]
PATHS = ["/", "/a", "/a/b", "/a/{x}", "/{x}/b", "/b", "/a/{n:[0-9]+}", "/{:a|b}/c", "/a/{r...}"]
SEGMENT_PATHS = ["/", "/a", "/a/b", "/a/1", "/b", "/x/b", "//a//b", "/a/c", "/b/c", "/a/b/c/d"]


def _leaf() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(PATHS).map(lambda p: f"Path(`{p}`)"),
        st.sampled_from(PATHS).map(lambda p: f"PathPrefix(`{p}`)"),
        st.sampled_from(HOSTS).map(lambda h: f"Host(`{h}`)"),
        st.sampled_from(["`GET`", "`POST`", "`GET`, `PUT`"]).map(lambda m: f"Method({m})"),
        st.sampled_from(["`1`", "`{}`", "`{[0-9]}`"]).map(lambda v: f"Header(`x-a`, {v})"),
        st.sampled_from(["`1`", "`{}`"]).map(lambda v: f"Query(`q`, {v})"),
        st.just("Type(`http`)"),
        st.just("All()"),
    )


def _rule() -> st.SearchStrategy[str]:
    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.lists(inner, min_size=2, max_size=3).map(" && ".join),
            st.lists(inner, min_size=2, max_size=2).map(lambda xs: "(" + " || ".join(xs) + ")"),
            inner.map(lambda x: f"!({x})"),
        )

    # Bias towards bucketable conjunctions of a host and a path, like real releases.
    conjunction = st.tuples(
        st.sampled_from(HOSTS), st.sampled_from(PATHS), st.sampled_from(["Path", "PathPrefix"])
    ).map(lambda t: f"Host(`{t[0]}`) && {t[2]}(`{t[1]}`)")
    return st.one_of(conjunction, st.recursive(_leaf(), extend, max_leaves=5))


def _event() -> st.SearchStrategy[Event]:
    return st.builds(
        http_event,
        st.sampled_from(SEGMENT_PATHS),
        host=st.sampled_from(
            ["a.example.com", "b.example.com:8080", "c.example.com", "", "A.example.com"]
        ),
        method=st.sampled_from(["GET", "POST", "PUT"]),
        header=st.sampled_from([{}, {"X-A": ["1"]}, {"X-A": ["7", "x"]}]),
        query=st.sampled_from([{}, {"q": ["1"]}]),
    )


def _linear_scan(routes: list[Route[int]], event: Event) -> Match[int] | None:
    for route in sorted(routes, key=lambda r: -r.priority):
        found = route.matches(event)
        if found is not None:
            return found
    return None


@settings(max_examples=200, deadline=None)
@given(rules=st.lists(_rule(), max_size=12), events=st.lists(_event(), min_size=1, max_size=8))
def test_matcher_agrees_with_a_linear_scan(rules: list[str], events: list[Event]) -> None:
    """The indexed matcher returns exactly what a linear scan by priority returns."""
    routes = [compile_route(rule, target=i, id=i) for i, rule in enumerate(rules)]
    matcher = RouteMatcher(routes)

    results = [(matcher.match(event), _linear_scan(routes, event)) for event in events]

    for indexed, naive in results:
        assert _summary(indexed) == _summary(naive)


@settings(max_examples=100, deadline=None)
@given(rules=st.lists(_rule(), max_size=12), event=_event())
def test_matcher_match_all_agrees_with_a_linear_filter(rules: list[str], event: Event) -> None:
    """match_all returns every matching route, in the order a linear scan tries them."""
    routes = [compile_route(rule, target=i, id=i) for i, rule in enumerate(rules)]
    matcher = RouteMatcher(routes)
    ordered = sorted(routes, key=lambda r: -r.priority)
    naive = [_summary(route.matches(event)) for route in ordered]

    indexed = [_summary(found) for found in matcher.match_all(event)]

    assert indexed == [found for found in naive if found is not None]


def _summary(found: Match[int] | None) -> Any:
    if found is None:
        return None
    return (found.route.target, found.params, found.path_suffix)
