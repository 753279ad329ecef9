"""sample_requests: requests generated from a rule match it by the real matcher, or say why not.

Every generated request is checked the way httpsrv will see it: turned into
the ASGI scope the routes event sends, translated into a genesis event by
httpsrv's own translation, and matched by the compiled rule.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubefox.adapters.http.routes_event import sample_scope
from kubefox.adapters.http.translate import STRIPPED_PARAMS, request_event
from kubefox.core.events import Component
from kubefox.core.matcher import compile_route
from kubefox.core.route_requests import (
    SampleRequest,
    UnsatisfiableRuleError,
    sample_requests,
    show,
)
from kubefox.core.routes import parse, resolve

OUTER = {
    "type": "http",
    "scheme": "http",
    "headers": [(b"host", b"localhost:8080")],
    "server": ("127.0.0.1", 8080),
}
BUILTIN_TYPES = {"io.kubefox.routes", "io.kubefox.health", "io.kubefox.echo"}


def generate(rule: str) -> list[SampleRequest]:
    """sample_requests with what httpsrv reserves, for requests sent to localhost:8080."""
    return sample_requests(
        rule,
        host="localhost:8080",
        reserved_headers={*STRIPPED_PARAMS, "host"},
        reserved_query=STRIPPED_PARAMS,
        reserved_types=BUILTIN_TYPES,
    )


def matches_over_http(rule: str, sample: SampleRequest) -> bool:
    """Whether ``rule`` matches ``sample`` once sent as httpsrv receives it."""
    scope = sample_scope(OUTER, sample, app_deployment="dep", virtual_environment="ve")
    event = request_event(scope, b"", platform="demo", source=Component(), ttl=1)
    assert (event.context.app_deployment, event.context.virtual_environment) == ("dep", "ve")
    return compile_route(rule, target=None).matches(event) is not None


# --- rules built from the whole language --------------------------------------------

SEGMENTS = ["a", "b", "items", "{id}", "{n:[0-9]+}", "{v:v[0-9]{1,2}}", "{:x|y}", "{w:[a-z]{3}}"]
HOST_LABELS = ["example", "com", "{sub}", "{env:(dev|qa)}", "api"]
VALUES = ["`1`", "`yes`", "`{}`", "`{[0-9]{2}}`", "`{(on|off)}`", "`{[A-Z][a-z]+}`"]
NAMES = ["x-a", "X-Trace", "accept", "q", "page"]


def _path() -> st.SearchStrategy[str]:
    segments = st.lists(st.sampled_from(SEGMENTS), max_size=3).map(lambda s: "/" + "/".join(s))
    rest = st.booleans().map(lambda r: "/{rest...}" if r else "")
    return st.tuples(segments, rest).map(lambda t: (t[0].rstrip("/") + t[1]) or "/")


def _leaf() -> st.SearchStrategy[str]:
    return st.one_of(
        _path().map(lambda p: f"Path(`{p}`)"),
        _path().map(lambda p: f"PathPrefix(`{p}`)").filter(lambda r: "..." not in r),
        st.lists(st.sampled_from(HOST_LABELS), min_size=1, max_size=3).map(
            lambda labels: "Host(`" + ".".join(labels) + "`)"
        ),
        st.lists(st.sampled_from(["GET", "POST", "PUT", "DELETE"]), min_size=1, max_size=3).map(
            lambda ms: "Method(" + ", ".join(f"`{m}`" for m in ms) + ")"
        ),
        st.tuples(st.sampled_from(NAMES), st.sampled_from(VALUES)).map(
            lambda t: f"Header(`{t[0]}`, {t[1]})"
        ),
        st.tuples(st.sampled_from(NAMES), st.sampled_from(VALUES)).map(
            lambda t: f"Query(`{t[0]}`, {t[1]})"
        ),
        st.sampled_from(["com.example.ping", "ping", "io.kubefox.http"]).map(
            lambda t: f"Type(`{t}`)"
        ),
        st.just("All()"),
    )


def _rule() -> st.SearchStrategy[str]:
    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.lists(inner, min_size=2, max_size=3).map(" && ".join),
            st.lists(inner, min_size=2, max_size=2).map(lambda xs: "(" + " || ".join(xs) + ")"),
            inner.map(lambda x: f"!({x})"),
        )

    return st.recursive(_leaf(), extend, max_leaves=6)


@settings(max_examples=300, deadline=None)
@given(rule=_rule())
def test_every_generated_request_matches_its_rule_over_http(rule: str) -> None:
    """Whatever the rule, each request handed out matches it as httpsrv will see it."""
    try:
        samples = generate(rule)
    except UnsatisfiableRuleError as exc:
        reason = str(exc)
        samples = []
    else:
        reason = ""
    assert bool(samples) != bool(reason)  # requests, or a reason for the report
    assert len(set(samples)) == len(samples)
    for sample in samples:
        assert matches_over_http(rule, sample), (rule, sample)


def _conjunction() -> st.SearchStrategy[str]:
    """Rules a request can always satisfy: one predicate of each kind, distinct names."""
    optional = st.one_of(st.none(), st.text(max_size=0))
    parts = st.tuples(
        st.one_of(_path().map(lambda p: f"Path(`{p}`)"), optional),
        st.one_of(
            st.lists(st.sampled_from(HOST_LABELS), min_size=1, max_size=3).map(
                lambda labels: "Host(`" + ".".join(labels) + "`)"
            ),
            optional,
        ),
        st.one_of(st.sampled_from(["Method(`POST`)", "Method(`PUT`, `GET`)"]), optional),
        st.dictionaries(st.sampled_from(NAMES), st.sampled_from(VALUES), max_size=3).map(
            lambda d: [f"Header(`{k}`, {v})" for k, v in d.items()]
        ),
        st.dictionaries(st.sampled_from(NAMES), st.sampled_from(VALUES), max_size=3).map(
            lambda d: [f"Query(`{k}`, {v})" for k, v in d.items()]
        ),
        st.one_of(st.just("Type(`com.example.ping`)"), optional),
    )

    def join(t: tuple[object, ...]) -> str:
        terms: list[str] = []
        for part in t:
            if isinstance(part, list):
                terms.extend(part)
            elif part:
                terms.append(str(part))
        return " && ".join(terms) or "All()"

    return parts.map(join)


@settings(max_examples=200, deadline=None)
@given(rule=_conjunction())
def test_a_satisfiable_conjunction_always_gets_a_request(rule: str) -> None:
    """Without conflicts or negations, the generator never gives up."""
    samples = generate(rule)
    assert samples
    assert all(matches_over_http(rule, sample) for sample in samples)


# --- what the requests look like -----------------------------------------------------


def test_hello_worlds_route_resolved_in_qa_is_a_get_of_its_path() -> None:
    """The frontend's route with qa's subPath: GET /qa/hello and nothing else."""
    rule = resolve("Path(`/{{.Vars.subPath}}/hello`)", {"subPath": "qa"})
    assert sample_requests(rule) == [SampleRequest(method="GET", path="/qa/hello")]


def test_parameters_get_values_their_regexes_accept() -> None:
    """Path, host, header and query parameters are filled; the first request is readable."""
    rule = (
        "Method(`POST`, `PUT`) && Host(`{env:(dev|qa)}.example.com`) && "
        "Path(`/items/{id:[0-9]+}/{name}`) && Header(`X-Token`, `{[a-f0-9]{4}}`) && "
        "Query(`page`, `{}`)"
    )
    first = sample_requests(rule)[0]
    assert first == SampleRequest(
        method="POST",
        path="/items/0/1",
        host="dev.example.com",
        headers=(("X-Token", "aaaa"),),
        query=(("page", "1"),),
    )
    assert first.to_json() == {
        "method": "POST",
        "path": "/items/0/1",
        "host": "dev.example.com",
        "headers": {"X-Token": ["aaaa"]},
        "query": {"page": ["1"]},
    }


def test_an_array_variable_gives_one_of_its_own_values() -> None:
    """A route var holding an array renders as an alternation; the sample picks an element."""
    rule = resolve("Path(`/{{.Vars.tenant}}/home`)", {"tenant": ["acme", "globex"]})
    assert sample_requests(rule)[0].path == "/acme/home"


def test_later_requests_use_other_values() -> None:
    """For a caller whose first request is taken by a higher-priority route."""
    paths = [s.path for s in sample_requests("Path(`/users/{id}`)", count=3)]
    assert paths == ["/users/1", "/users/test", "/users/kubefox"]


def test_each_alternative_of_an_or_is_offered() -> None:
    """``a || b`` yields a request for a, then one for b."""
    paths = [s.path for s in sample_requests("Path(`/a`) || Path(`/b`)")]
    assert paths == ["/a", "/b"]


def test_negations_steer_the_choice() -> None:
    """A refused method or header is avoided, not ignored."""
    assert sample_requests("!Method(`GET`) && Path(`/x`)")[0].method == "POST"
    sample = sample_requests("Header(`x-a`, `{[0-9]}`) && !Header(`x-a`, `0`)")[0]
    [(name, value)] = sample.headers
    assert name == "x-a"
    assert value.isdigit()
    assert value != "0"


def test_a_type_rule_is_sent_as_that_event_type() -> None:
    """``Type(`ping`)`` gets the type ``ping``, sent as kf-type and matched by suffix rules too."""
    sample = generate("Type(`com.example.ping`) && Type(`ping`)")[0]
    assert sample.type == "com.example.ping"
    assert matches_over_http("Type(`com.example.ping`) && Type(`ping`)", sample)


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ("Path(`/a`) && Path(`/b`)", "one segment cannot be both `a` and `b`"),
        ("Path(`/a`) && Path(`/a/b`)", "Path(`/a`) && Path(`/a/b`) cannot all hold"),
        ("Path(`/{n:[0-9]+}`) && Path(`/x`)", "segment `x` does not match `[0-9]+`"),
        ("Method(`GET`) && Method(`POST`)", "no method satisfies Method(`GET`) && Method(`POST`)"),
        ("Method(`GET`) && !Method(`GET`)", "no method satisfies"),
        ("!All()", "!All() never matches"),
        ("Type(`a.b`) && Type(`c`)", "Type(`a.b`) and Type(`c`) cannot both hold"),
        ("Header(`x`, `{}`) && !Header(`x`, `{}`)", "cannot both hold"),
        ("Header(`x`, `1`) && !Header(`x`, `{[0-9]}`)", "no value found for Header(`x`, `1`)"),
        ("Path(`/{x:(?!)}`)", "no segment value found that matches `(?!)`"),
        ("Path(`/a`) && !Path(`/a`)", "no generated request matches the rule (1 tried)"),
        ("Header(`kf-dep`, `x`)", "httpsrv removes kf-dep before routing"),
        ("Header(`Host`, `example.com`)", "httpsrv removes Host before routing"),
        ("Query(`kf-ve`, `{}`)", "httpsrv removes kf-ve before routing"),
        ("Type(`io.kubefox.routes`)", "names an event httpsrv answers itself"),
    ],
)
def test_a_rule_no_request_can_satisfy_is_refused_with_the_reason(rule: str, reason: str) -> None:
    """The reason names the predicates in the way, in the rule's own terms."""
    with pytest.raises(UnsatisfiableRuleError) as raised:
        generate(rule)
    assert reason in str(raised.value)


@pytest.mark.parametrize(
    "rule",
    [
        "Path(`/a/{id:[0-9]+}/{rest...}`)",
        "Host(`{sub}.example.com`)",
        "Header(`X-A`, `{(on|off)}`)",
        "Query(`q`, `a b`)",
        "Method(`GET`, `POST`)",
        "Type(`ping`)",
        "All()",
    ],
)
def test_show_writes_a_predicate_back_in_the_rule_language(rule: str) -> None:
    """Messages quote predicates as the user wrote them (modulo spacing)."""
    assert parse(show(parse(rule))) == parse(rule)
