"""The route rule language: parsing, templates, priority and every syntax error."""

from __future__ import annotations

import pytest

from kubefox.core.errors import InvalidError, RouteInvalidError
from kubefox.core.route_ast import (
    All,
    And,
    AnyValue,
    Header,
    Host,
    Literal,
    Method,
    Not,
    Or,
    Param,
    Path,
    PathPrefix,
    Query,
    Regex,
    Type,
)
from kubefox.core.routes import (
    parse,
    priority,
    resolve,
    template_vars,
)


def lit(text: str) -> Literal:
    return Literal(text=text)


# --- parsing: every predicate ---------------------------------------------------------


def test_parse_path_splits_literal_and_param_segments():
    """Path yields one segment per slash-separated part, params as Param."""
    rule = "Path(`/orders/{id}/items`)"

    node = parse(rule)

    assert node == Path(segments=(lit("orders"), Param(name="id"), lit("items")))


def test_parse_path_prefix_is_its_own_node():
    """PathPrefix parses to PathPrefix, not Path."""
    rule = "PathPrefix(`/static`)"

    node = parse(rule)

    assert node == PathPrefix(segments=(lit("static"),))


def test_parse_path_ignores_empty_segments():
    """Leading, trailing and doubled slashes in a pattern do not make segments."""
    rule = "Path(`//a//b/`)"

    node = parse(rule)

    assert node == Path(segments=(lit("a"), lit("b")))


def test_parse_root_path_has_no_segments():
    """Path(`/`) is the empty segment list, which the matcher reads as the root."""
    rule = "Path(`/`)"

    node = parse(rule)

    assert node == Path(segments=())


def test_parse_host_splits_on_dots():
    """Host segments are dot-separated and may hold params."""
    rule = "Host(`{sub}.example.com`)"

    node = parse(rule)

    assert node == Host(segments=(Param(name="sub"), lit("example"), lit("com")))


def test_parse_method_takes_several_arguments():
    """Method accepts any number (at least one) of methods."""
    rule = "Method(`GET`, `POST`,`PUT`)"

    node = parse(rule)

    assert node == Method(methods=("GET", "POST", "PUT"))


def test_parse_header_value_forms():
    """Header values are {} for any, {re} for a regex, otherwise literal."""
    rules = ("Header(`a`, `{}`)", "Header(`a`, `{[0-9]+}`)", "Header(`a`, `x`)")

    nodes = [parse(rule) for rule in rules]

    assert nodes == [
        Header(name="a", value=AnyValue()),
        Header(name="a", value=Regex(pattern="[0-9]+")),
        Header(name="a", value=lit("x")),
    ]


def test_parse_query_keeps_key_case():
    """Query keys are case-sensitive and kept as written."""
    rule = "Query(`Page`, `{}`)"

    node = parse(rule)

    assert node == Query(name="Page", value=AnyValue())


def test_parse_type_and_all():
    """Type keeps its argument; All() takes none."""
    rule = "Type(`http`) || All()"

    node = parse(rule)

    assert node == Or(operands=(Type(value="http"), All()))


def test_parse_and_binds_tighter_than_or():
    """a || b && c parses as a || (b && c), with n-ary flattened chains."""
    rule = "All() || Type(`a`) && Type(`b`) && Type(`c`)"

    node = parse(rule)

    assert node == Or(
        operands=(All(), And(operands=(Type(value="a"), Type(value="b"), Type(value="c"))))
    )


def test_parse_parentheses_and_negation():
    """Parentheses group, ! applies to the next operand only."""
    rule = "!(Type(`a`) || Type(`b`)) && !Method(`GET`)"

    node = parse(rule)

    assert node == And(
        operands=(
            Not(operand=Or(operands=(Type(value="a"), Type(value="b")))),
            Not(operand=Method(methods=("GET",))),
        )
    )


def test_parse_double_quoted_strings_unescape_quote_and_backslash():
    """Double-quoted strings decode \\" and \\\\ and keep other backslashes."""
    rule = r'Header("x", "say \"hi\"") && Path("/a\{b")'

    node = parse(rule)

    assert node == And(
        operands=(Header(name="x", value=lit('say "hi"')), Path(segments=(lit("a{b"),)))
    )


def test_parse_escaped_brace_is_a_literal_segment():
    """\\{ and \\} in a segment are literal braces, not a placeholder."""
    rule = r"Path(`/v\{n\}`)"

    node = parse(rule)

    assert node == Path(segments=(lit("v{n}"),))


def test_parse_param_regex_keeps_colons():
    """Colons after the first one stay in the regex (upstream deleted them)."""
    rule = "Path(`/at/{time:[0-9]{2}:[0-9]{2}}`)"

    node = parse(rule)

    assert node == Path(segments=(lit("at"), Param(name="time", regex="[0-9]{2}:[0-9]{2}")))


def test_parse_anonymous_params_do_not_capture():
    """{:regex} and {} match a segment without a name."""
    rule = "Path(`/{:v[12]}/{}`)"

    node = parse(rule)

    assert node == Path(segments=(Param(name="", regex="v[12]"), Param(name="")))


def test_parse_rest_param_is_a_wildcard():
    """A final {name...} captures the remaining segments."""
    rule = "PathPrefix(`/files/{rest...}`)"

    node = parse(rule)

    assert node == PathPrefix(segments=(lit("files"), Param(name="rest", rest=True)))


def test_parse_error_is_route_invalid_and_value_error():
    """Parse errors are RouteInvalidError, an InvalidError and a ValueError."""
    rule = "Nope()"

    with pytest.raises(RouteInvalidError) as caught:
        parse(rule)

    assert isinstance(caught.value, InvalidError)
    assert isinstance(caught.value, ValueError)


BAD_RULES = [
    ("", 1, "a predicate"),
    ("   ", 1, "a predicate"),
    ("Path", 5, '"(" after Path'),
    ("Method(`GET`) && Path`/`", 22, '"(" after Path'),
    ("Foo(`x`)", 1, "a function (All, Header, Host, Method, Path, PathPrefix, Query, Type)"),
    ("Path(`/a`", 10, '"," or ")" after argument 1 of Path'),
    ("Path(`/a)", 6, '"`" to close the string'),
    ('Path("/a)', 6, "'\"' to close the string"),
    ("Path(`/a`) & Method(`GET`)", 12, '"&&"'),
    ("Path(`/a`) | Method(`GET`)", 12, '"||"'),
    ("Path(`/a`) Method(`GET`)", 12, '"&&", "||" or end of rule'),
    ("Path(`/a`))", 11, '"&&", "||" or end of rule'),
    ("(Path(`/a`)", 12, '")" after the group opened at column 1'),
    ("Path(`/a`, `/b`)", 1, "1 argument to Path"),
    ("Path()", 1, "1 argument to Path"),
    ("Method()", 1, "at least 1 argument to Method"),
    ("Header(`a`)", 1, "2 arguments to Header"),
    ("All(`x`)", 1, "no arguments to All"),
    ("Path(/a)", 6, "a function, operator or string"),
    ("Path(a)", 6, 'a string in back-ticks or double quotes or ")"'),
    ("Method(`GET`,)", 14, "a string in back-ticks or double quotes"),
    ("Path(`/a`) && ", 15, "a predicate"),
    ("!", 2, "a predicate"),
    ("Path(`/a`) $", 12, "a function, operator or string"),
    ("Path(`/v{n}`)", 9, '"/" before a parameter'),
    ("Path(`/{n}v`)", 11, '"/" or end of pattern after a parameter'),
    ("Path(`/a}`)", 9, '"/" before a parameter'),
    ("Path(`/{id`)", 8, '"}" to close the parameter'),
    ("Path(`/{id:[0-9}`)", 12, "a valid regular expression"),
    ("Header(`a`, `{(}`)", 15, "a valid regular expression"),
    ("Path(`/{1x}`)", 9, "a parameter name"),
    ("Path(`/{a...}/b`)", 15, "end of pattern after a {name...} parameter"),
    ("Host(`{a...}.com`)", 7, "a {name} or {name:regex} parameter"),
    ("Host(`localhost:8080`)", 16, "a host without a port"),
    ("Host(``)", 7, "a non-empty host pattern"),
    ("Header(``, `x`)", 9, "a non-empty header name"),
    ("Method(`GET`, ``)", 16, "a non-empty argument to Method"),
    ("Path(`/{{.Vars.x}}`)", 8, "a resolved rule (call resolve first)"),
]


@pytest.mark.parametrize(("rule", "column", "expected"), BAD_RULES)
def test_parse_bad_rule_names_column_and_expectation(rule: str, column: int, expected: str) -> None:
    """Each malformed rule fails with the 1-based column and what was expected there."""
    with pytest.raises(RouteInvalidError) as caught:
        parse(rule)

    error = caught.value
    assert f"column {column}: expected {expected}" in str(error)
    assert error.details["position"] == column
    detail = error.details["expected"]
    assert detail.startswith(expected) or expected.startswith(detail)
    assert error.details["rule"] == rule


def test_parse_error_message_is_lowercase_without_period():
    """The house style for messages holds for syntax errors."""
    with pytest.raises(RouteInvalidError) as caught:
        parse("Path")

    assert (
        str(caught.value) == 'route invalid: column 5: expected "(" after Path, found end of rule'
    )


# --- templates ------------------------------------------------------------------------


def test_template_vars_lists_names_in_order_without_duplicates():
    """Vars and Env are synonyms; whitespace inside {{ }} is allowed."""
    rule = (
        "Host(`{{ .Env.host }}`) && Path(`/{{.Vars.sub}}/{{.Vars.host}}`)"
        " || Header(`a`, `{{.Vars.x}}`)"
    )

    names = template_vars(rule)

    assert names == ["host", "sub", "x"]


def test_template_vars_of_a_plain_rule_is_empty():
    """A rule without templates uses no variables."""
    rule = "Path(`/a/{id}`)"

    names = template_vars(rule)

    assert names == []


@pytest.mark.parametrize(
    ("rule", "column", "expected"),
    [
        ("Path(`/{{.Secrets.token}}`)", 8, "{{.Vars.NAME}} or {{.Env.NAME}}"),
        ("Path(`/{{.Vars.a`)", 8, '"}}" to close the template'),
        ('Path(`/{{ index .Vars "a" }}`)', 8, "{{.Vars.NAME}} or {{.Env.NAME}}"),
        ("Path(`/{{.Vars.a}}`", 20, '"," or ")"'),
    ],
)
def test_template_vars_rejects_bad_templates(rule: str, column: int, expected: str) -> None:
    """Secrets, unclosed or unsupported templates and syntax errors are errors."""
    with pytest.raises(RouteInvalidError) as caught:
        template_vars(rule)

    assert f"column {column}: expected {expected}" in str(caught.value)


def test_resolve_renders_scalars_like_go():
    """Scalars render as text: 1.0 is 1, true is true, strings as they are."""
    rule = "Path(`/{{.Vars.sub}}/v{{.Env.version}}/{{.Vars.on}}`)"

    resolved = resolve(rule, {"sub": "qa", "version": 1.0, "on": True})

    assert resolved == "Path(`/qa/v1/true`)"


def test_resolve_collapses_whitespace_between_tokens():
    """Runs of whitespace outside strings become one space; strings are untouched."""
    rule = "  Path( `/a  b` )\n\t&&   Method(`GET`)  "

    resolved = resolve(rule, {})

    assert resolved == "Path( `/a  b` ) && Method(`GET`)"


def test_resolve_missing_variables_is_an_error_listing_them():
    """Every missing name is reported once, in order (upstream rendered them empty)."""
    rule = "Path(`/{{.Vars.b}}/{{.Vars.a}}/{{.Vars.b}}/{{.Vars.c}}`)"

    with pytest.raises(RouteInvalidError) as caught:
        resolve(rule, {"c": "x"})

    assert caught.value.details["missing"] == ["b", "a"]
    assert "missing template variables: b, a" in str(caught.value)


def test_resolve_null_value_counts_as_missing():
    """A variable whose value is null cannot render and is reported missing."""
    rule = "Path(`/{{.Vars.a}}`)"

    with pytest.raises(RouteInvalidError) as caught:
        resolve(rule, {"a": None})

    assert caught.value.details["missing"] == ["a"]


def test_resolve_array_in_path_becomes_an_alternation_of_its_values():
    """An array fills a segment with a non-capturing regex of its escaped values."""
    rule = "Path(`/{{.Vars.envs}}/hello`)"

    resolved = resolve(rule, {"envs": ["qa", "a.b"]})

    assert resolved == r"Path(`/{:qa|a\.b}/hello`)"
    assert parse(resolved) == Path(segments=(Param(name="", regex=r"qa|a\.b"), lit("hello")))


def test_resolve_array_in_header_value_becomes_a_regex_value():
    """An array that is a whole Header or Query value becomes a {regex} value."""
    rule = "Header(`X-Env`, `{{.Vars.envs}}`) && Query(`n`, `{{.Vars.nums}}`)"

    resolved = resolve(rule, {"envs": ["qa", "prod"], "nums": [1, 2.5]})

    assert resolved == r"Header(`X-Env`, `{qa|prod}`) && Query(`n`, `{1|2\.5}`)"


def test_resolve_empty_array_matches_nothing():
    """An empty array renders a regex that can never match, not 'any segment'."""
    rule = "Path(`/{{.Vars.envs}}`)"

    resolved = resolve(rule, {"envs": []})

    assert resolved == "Path(`/{:(?!)}`)"


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("Path(`/x{{.Vars.arr}}`)", "an array variable to fill a whole segment"),
        ("Host(`{{.Vars.arr}}-x.com`)", "an array variable to fill a whole segment"),
        ("Header(`a`, `x{{.Vars.arr}}`)", "an array variable to fill the whole value"),
        ("Header(`{{.Vars.arr}}`, `x`)", "a scalar variable in argument 1 of Header"),
        ("Method(`{{.Vars.arr}}`)", "a scalar variable in argument 1 of Method"),
    ],
)
def test_resolve_array_outside_a_whole_segment_or_value_is_an_error(
    rule: str, expected: str
) -> None:
    """Arrays only stand for a whole segment or a whole header/query value."""
    with pytest.raises(RouteInvalidError) as caught:
        resolve(rule, {"arr": ["a", "b"]})

    assert f"expected {expected}" in str(caught.value)


def test_resolve_map_value_is_an_error():
    """A header-style map cannot be rendered into a rule."""
    rule = "Path(`/{{.Vars.m}}`)"

    with pytest.raises(RouteInvalidError) as caught:
        resolve(rule, {"m": {"a": ["b"]}})

    assert "column 8: expected a scalar or array variable" in str(caught.value)


def test_resolve_secret_is_an_error():
    """Secrets never reach a route rule."""
    rule = "Header(`Authorization`, `{{.Secrets.token}}`)"

    with pytest.raises(RouteInvalidError) as caught:
        resolve(rule, {"token": "t"})

    assert "secrets are never part of a route" in str(caught.value)


def test_resolve_value_with_back_tick_is_requoted():
    """A rendered value holding a back-tick is written as a double-quoted string."""
    rule = "Header(`X-A`, `{{.Vars.v}}`)"

    resolved = resolve(rule, {"v": 'a`b"c'})

    assert resolved == r'Header(`X-A`, "a`b\"c")'
    assert parse(resolved) == Header(name="X-A", value=lit('a`b"c'))


def test_resolve_rendering_that_does_not_parse_is_an_error():
    """The resolved text is parsed, and its errors point into the resolved text."""
    rule = "Path(`/{{.Vars.v}}`)"

    with pytest.raises(RouteInvalidError) as caught:
        resolve(rule, {"v": "a{b"})

    assert caught.value.details["resolved"] == "Path(`/a{b`)"
    assert "column 9: expected" in str(caught.value)


# --- priority -------------------------------------------------------------------------


def test_priority_counts_placeholders_as_two_characters():
    """Param names and regexes do not change the priority."""
    rules = ["Path(`/a/{id}`)", "Path(`/a/{identifier:[0-9]{2,3}}`)", "Path(`/a/{}`)"]

    priorities = {priority(rule) for rule in rules}

    assert priorities == {len("Path(`/a/{}`)")}


def test_priority_prefers_longer_literal_rules():
    """A longer literal prefix ranks above a shorter one."""
    longer, shorter = "PathPrefix(`/qa/hasura/static`)", "PathPrefix(`/qa/hasura`)"

    ranks = (priority(longer), priority(shorter))

    assert ranks[0] > ranks[1]


def test_priority_counts_header_regex_values_as_placeholders():
    """A {regex} header value counts as {} too; an escaped brace is literal."""
    rule = r"Header(`a`, `{[a-z]+}`) && Path(`/\{x}`)"

    rank = priority(rule)

    assert rank == len(r"Header(`a`, `{}`) && Path(`/\{x}`)")
