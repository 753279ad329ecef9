"""Route rules from untrusted text: every failure is a RouteInvalidError, matching never raises.

Rules come from component definitions (``--export`` output of user code) and
are resolved with VirtualEnvironment data, so both the rule and the data are
fuzzed: token soup built from the grammar's own pieces, and arbitrary text.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubefox.core.errors import RouteInvalidError
from kubefox.core.events import TYPE_HTTP, Event
from kubefox.core.matcher import RouteMatcher, compile_route
from kubefox.core.routes import parse, priority, resolve, template_vars
from kubefox.core.values import Value
from tests.fuzz.budget import budget

pytestmark = pytest.mark.fuzz

_PIECES = [
    *("Path(", "PathPrefix(", "Host(", "Header(", "Query(", "Method(", "Type(", "All("),
    *(")", "(", ",", "&&", "||", "!", " ", "`", '"', "\\", "{", "}", ":", "/", ".", "-"),
    *("{{", "}}", "{{.Vars.x}}", "{{.Env.y}}", "{{.Secrets.z}}", "{{ .Vars.subPath }}"),
    *("[", "]", "*", "+", "?", "(?", "|", "a", "é", "\x00", "\n", "{id}", "{id:[0-9]+}"),
    *("{:(}", "{x:a{2}}", "{x:\\}", "`/a`", "`/{x:(a|b}`", "`GET`", "`*.example.com`"),
]
RULES = st.one_of(
    st.lists(st.sampled_from(_PIECES), max_size=24).map("".join),
    st.text(max_size=80),
)
VALUES: st.SearchStrategy[Value] = st.one_of(
    st.text(max_size=6),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.lists(st.one_of(st.text(max_size=6), st.integers()), max_size=3),
    st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
)
DATA = st.dictionaries(st.sampled_from(["x", "y", "z", "subPath", "id"]), VALUES, max_size=4)
EVENTS = st.builds(
    lambda path, host, method, header, query: Event(
        type=TYPE_HTTP,
        values={
            "method": method,
            "path": path,
            "host": host,
            "header": header,
            "queryParam": query,
        },
    ),
    st.text(max_size=30).map(lambda text: "/" + text),
    st.text(max_size=20),
    st.sampled_from(["GET", "POST", "get", "", "X" * 40]),
    st.dictionaries(st.text(max_size=8), st.lists(st.text(max_size=8), max_size=2), max_size=3),
    st.dictionaries(st.text(max_size=8), st.lists(st.text(max_size=8), max_size=2), max_size=3),
)


@budget(300)
@given(rule=RULES, data=DATA)
def test_any_rule_text_parses_or_is_a_route_invalid_error(
    rule: str, data: dict[str, Value]
) -> None:
    """parse, template_vars, resolve and compile raise RouteInvalidError or nothing."""
    for action in (
        lambda: parse(rule),
        lambda: template_vars(rule),
        lambda: resolve(rule, data),
        lambda: compile_route(rule, target=0),
    ):
        cause = "accepted"
        try:
            action()
        except RouteInvalidError as exc:
            cause = exc.cause
        assert cause  # a refusal says why
    assert priority(rule) >= 0


@budget(100)
@given(rules=st.lists(RULES, max_size=8), data=DATA, events=st.lists(EVENTS, max_size=4))
def test_matching_any_event_against_any_resolved_rule_never_raises(
    rules: list[str], data: dict[str, Value], events: list[Event]
) -> None:
    """Rules that resolve and compile match or miss any event; nothing raises."""
    routes = []
    for index, rule in enumerate(rules):
        try:
            routes.append(compile_route(resolve(rule, data), target=index, id=index))
        except RouteInvalidError:
            continue
    matcher = RouteMatcher(routes)

    found = [matcher.match_all(event) for event in events]

    assert len(found) == len(events)
