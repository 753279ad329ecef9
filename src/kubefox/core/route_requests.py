"""Requests generated from a route rule: one that matches it, for every route of an app.

The built-in ``io.kubefox.routes`` event sends every route of a deployment a
request; this module builds those requests from resolved rules. A rule is
brought to disjunctive normal form (``!`` pushed down to the predicates, at
most :data:`MAX_ALTERNATIVES` alternatives), and each alternative is solved
predicate by predicate: the type and method sets are intersected, path and
host patterns merged segment by segment (parameters get values their regexes
accept, from :func:`kubefox.core.regex_samples.regex_sample`), and headers and
query parameters get a value per positive predicate. Negated predicates are
honoured where they conflict with a positive one and otherwise left to the
final check.

That final check is the real matcher: :func:`sample_requests` returns only
requests the compiled rule matches, so a request it hands out can be trusted
to reach the rule's handler (unless a higher-priority route takes it, which
only the caller, knowing every route, can tell). When none can be built, the
:class:`UnsatisfiableRuleError` says why, in the rule's own terms.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Iterator
from typing import Any

from kubefox.core.events import TYPE_HTTP, VAL_HEADER, VAL_HOST, VAL_METHOD, VAL_PATH, VAL_QUERY
from kubefox.core.events import Event as _Event
from kubefox.core.matcher import compile_route
from kubefox.core.regex_samples import regex_sample
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
    Rule,
    Segment,
    Type,
    ValuePattern,
)

#: Most alternatives (``||`` branches once ``!`` is pushed down) solved per rule.
MAX_ALTERNATIVES = 16
#: Methods tried, in order, when the rule does not name one.
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")
#: Values of unconstrained parameters, headers and queries, by variant.
_PLAIN_VALUES = ("1", "test", "kubefox")
# A header value may not hold control characters (an HTTP server refuses them).
_CONTROL = "".join(chr(c) for c in range(32)) + "\x7f"
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

_Atom = tuple[bool, Rule]  # (positive, predicate): never And, Or or Not


class UnsatisfiableRuleError(ValueError):
    """No request could be generated for a rule; the message is the reason, for people."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SampleRequest:
    """A generated HTTP request: what a client would send to reach one route.

    ``host`` is the rule's, else the one the caller sends requests to (it
    matters to negated Host predicates); ``type`` is empty for a plain HTTP
    request (``io.kubefox.http``), else the event type to send as ``kf-type``.
    Header names are as the rule wrote them.
    """

    method: str = "GET"
    path: str = "/"
    host: str = ""
    type: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    query: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The request as a JSON object; repeated names keep every value, in order."""
        document: dict[str, Any] = {"method": self.method, "path": self.path}
        if self.host:
            document["host"] = self.host
        if self.type:
            document["type"] = self.type
        if self.headers:
            document["headers"] = _grouped(self.headers)
        if self.query:
            document["query"] = _grouped(self.query)
        return document

    def event(self) -> _Event:
        """The values of the genesis event httpsrv would build (what the matcher reads)."""
        header: dict[str, list[str]] = {}
        for name, value in self.headers:
            header.setdefault(_canonical_header(name), []).append(value)
        return _Event(
            type=self.type or TYPE_HTTP,
            values={
                VAL_PATH: self.path,
                VAL_HOST: self.host.lower(),
                VAL_METHOD: self.method,
                VAL_HEADER: header,
                VAL_QUERY: _grouped(self.query),
            },
        )


def _grouped(pairs: tuple[tuple[str, str], ...]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    return grouped


def _canonical_header(name: str) -> str:
    # Go's CanonicalMIMEHeaderKey, as httpsrv stores header names and the matcher reads them.
    if not _TOKEN.fullmatch(name):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.lower().split("-"))


def sample_requests(
    rule: str,
    *,
    count: int = 4,
    host: str = "",
    reserved_headers: Collection[str] = (),
    reserved_query: Collection[str] = (),
    reserved_types: Collection[str] = (),
) -> list[SampleRequest]:
    """Up to ``count`` distinct requests that the resolved ``rule`` matches, most readable first.

    Args:
        rule: a resolved rule (no templates left).
        count: how many different requests to return at most; later ones use
            other parameter values, for a caller whose first choice is taken
            by another route.
        host: the host (and port) requests go to when the rule names none.
        reserved_headers: lower-case header names a request cannot carry to
            the matcher (httpsrv removes them); a rule that needs one is refused.
        reserved_query: the same for query parameters.
        reserved_types: event types that must not be generated (httpsrv
            answers them itself).

    Raises:
        RouteInvalidError: the rule does not parse.
        UnsatisfiableRuleError: no request could be built, or none that
            matches; the message says which predicate stood in the way.
    """
    route = compile_route(rule, target=None)
    reasons: list[str] = []
    found: list[SampleRequest] = []
    tried: set[SampleRequest] = set()
    for alternative in _dnf(route.node, positive=True):
        for variant in range(count):
            solver = _Solver(variant, host, reserved_headers, reserved_query, reserved_types)
            try:
                candidate = solver.solve(alternative)
            except UnsatisfiableRuleError as exc:
                reasons.append(str(exc))
                break  # a conflict does not go away with other values
            tried.add(candidate)
            if candidate not in found and route.matches(candidate.event()) is not None:
                found.append(candidate)
                if len(found) >= count:
                    return found
    if found:
        return found
    if reasons:
        raise UnsatisfiableRuleError("; ".join(dict.fromkeys(reasons)))
    raise UnsatisfiableRuleError(f"no generated request matches the rule ({len(tried)} tried)")


def _dnf(rule: Rule, *, positive: bool) -> list[list[_Atom]]:
    """The alternatives of ``rule`` (or of its negation), each a list of predicates."""
    if isinstance(rule, Not):
        return _dnf(rule.operand, positive=not positive)
    if isinstance(rule, And | Or):
        conjunction = isinstance(rule, And) == positive  # De Morgan for a negated operator
        if conjunction:
            result: list[list[_Atom]] = [[]]
            for operand in rule.operands:
                parts = _dnf(operand, positive=positive)
                result = [a + b for a in result for b in parts][:MAX_ALTERNATIVES]
            return result
        alternatives: list[list[_Atom]] = []
        for operand in rule.operands:
            alternatives.extend(_dnf(operand, positive=positive))
        return alternatives[:MAX_ALTERNATIVES]
    return [[(positive, rule)]]


def show(rule: Rule) -> str:  # noqa: PLR0911 - one return per kind of predicate
    """A predicate (or rule) written back in the rule language, for messages."""
    if isinstance(rule, Not):
        return "!" + show(rule.operand)
    if isinstance(rule, And | Or):
        joiner = " && " if isinstance(rule, And) else " || "
        return "(" + joiner.join(show(operand) for operand in rule.operands) + ")"
    if isinstance(rule, Path | PathPrefix):
        text = "/" + "/".join(_show_segment(s) for s in rule.segments)
        return f"{type(rule).__name__}(`{text}`)"
    if isinstance(rule, Host):
        return "Host(`" + ".".join(_show_segment(s) for s in rule.segments) + "`)"
    if isinstance(rule, Header | Query):
        return f"{type(rule).__name__}(`{rule.name}`, `{_show_value(rule.value)}`)"
    if isinstance(rule, Method):
        return "Method(" + ", ".join(f"`{m}`" for m in rule.methods) + ")"
    if isinstance(rule, Type):
        return f"Type(`{rule.value}`)"
    return "All()"


def _show_segment(segment: Segment) -> str:
    if isinstance(segment, Literal):
        return segment.text
    name = segment.name + ("..." if segment.rest else "")
    return "{" + name + (f":{segment.regex}" if segment.regex else "") + "}"


def _show_value(value: ValuePattern) -> str:
    if isinstance(value, Literal):
        return value.text
    return "{}" if isinstance(value, AnyValue) else "{" + value.pattern + "}"


def _show_atom(atom: _Atom) -> str:
    positive, predicate = atom
    return show(predicate) if positive else "!" + show(predicate)


def _plain(variant: int) -> str:
    value = _PLAIN_VALUES[variant % len(_PLAIN_VALUES)]
    return value if variant < len(_PLAIN_VALUES) else f"{value}{variant}"


class _Solver:
    """Builds one request for one alternative; raises the conflict it meets, if any."""

    def __init__(
        self,
        variant: int,
        default_host: str,
        reserved_headers: Collection[str],
        reserved_query: Collection[str],
        reserved_types: Collection[str],
    ) -> None:
        self.variant = variant
        self.default_host = default_host
        self.reserved_headers = reserved_headers
        self.reserved_query = reserved_query
        self.reserved_types = reserved_types

    def solve(self, atoms: list[_Atom]) -> SampleRequest:
        by_kind: dict[type[Rule], list[_Atom]] = {}
        for atom in atoms:
            if isinstance(atom[1], All):
                if not atom[0]:
                    raise UnsatisfiableRuleError("!All() never matches")
                continue
            by_kind.setdefault(type(atom[1]), []).append(atom)
        paths = by_kind.get(Path, []) + by_kind.get(PathPrefix, [])
        return SampleRequest(
            method=self.method(by_kind.get(Method, [])),
            path=self.path([a for a in paths if a[0]]),
            host=self.host([a for a in by_kind.get(Host, []) if a[0]]),
            type=self.event_type(by_kind.get(Type, [])),
            headers=self.values(by_kind.get(Header, []), header=True),
            query=self.values(by_kind.get(Query, []), header=False),
        )

    def event_type(self, atoms: list[_Atom]) -> str:
        wanted = [a[1].value for a in atoms if a[0] and isinstance(a[1], Type)]
        chosen = max(wanted, key=len, default="")
        for value in wanted:
            if not _type_matches(chosen, value):
                raise UnsatisfiableRuleError(
                    f"Type(`{chosen}`) and Type(`{value}`) cannot both hold"
                )
        if chosen in self.reserved_types:
            raise UnsatisfiableRuleError(
                f"Type(`{chosen}`) names an event httpsrv answers itself "
                "while the built-in events are on"
            )
        effective = chosen or TYPE_HTTP
        refused = [a[1].value for a in atoms if not a[0] and isinstance(a[1], Type)]
        for value in refused:
            if _type_matches(effective, value):
                raise UnsatisfiableRuleError(
                    f"!Type(`{value}`) excludes the event type {effective}"
                )
        return chosen

    def method(self, atoms: list[_Atom]) -> str:
        allowed: list[str] | None = None
        refused: set[str] = set()
        for positive, predicate in atoms:
            assert isinstance(predicate, Method)  # noqa: S101 - grouped by type above
            names = [m.upper() for m in predicate.methods]
            if not positive:
                refused.update(names)
            elif allowed is None:
                allowed = names
            else:
                allowed = [m for m in allowed if m in names]
        candidates = [m for m in (METHODS if allowed is None else allowed) if m not in refused]
        if not candidates:
            raise UnsatisfiableRuleError(
                "no method satisfies " + " && ".join(_show_atom(a) for a in atoms)
            )
        return "GET" if "GET" in candidates else candidates[0]

    def path(self, atoms: list[_Atom]) -> str:
        labels = self.segments(atoms, sep="/")
        return "/" + "/".join(labels)

    def host(self, atoms: list[_Atom]) -> str:
        if not atoms:
            return self.default_host
        return ".".join(self.segments(atoms, sep="."))

    def segments(self, atoms: list[_Atom], *, sep: str) -> list[str]:
        """Merge every positive Path/PathPrefix (or Host) into one list of segment values."""
        exact: int | None = None
        minimum = 0
        slots: dict[int, list[Segment]] = {}
        for _, predicate in atoms:
            assert isinstance(predicate, Path | PathPrefix | Host)  # noqa: S101 - grouped above
            segments = predicate.segments
            rest = bool(segments) and isinstance(segments[-1], Param) and segments[-1].rest
            if isinstance(predicate, Path | Host) and not rest:
                if exact is not None and exact != len(segments):
                    raise UnsatisfiableRuleError(
                        " && ".join(_show_atom(a) for a in atoms) + " cannot all hold"
                    )
                exact = len(segments)
            minimum = max(minimum, len(segments))
            for i, segment in enumerate(segments):
                slots.setdefault(i, []).append(segment)
        if exact is not None and exact < minimum:
            raise UnsatisfiableRuleError(
                " && ".join(_show_atom(a) for a in atoms) + " cannot all hold"
            )
        size = minimum if exact is None else exact
        return [self.segment(slots.get(i, []), sep=sep) for i in range(size)]

    def segment(self, constraints: list[Segment], *, sep: str) -> str:
        """One segment value every constraint on its position accepts."""
        lower = sep == "."  # hosts are matched lower-cased
        texts = {c.text.lower() if lower else c.text for c in constraints if isinstance(c, Literal)}
        regexes = [c.regex for c in constraints if isinstance(c, Param) and c.regex]
        if len(texts) > 1:
            shown = " and ".join(f"`{t}`" for t in sorted(texts))
            raise UnsatisfiableRuleError(f"one segment cannot be both {shown}")
        if texts:
            text = texts.pop()
            for regex in regexes:
                if re.fullmatch(regex, text) is None:
                    raise UnsatisfiableRuleError(f"segment `{text}` does not match `{regex}`")
            return text
        for attempt in range(self.variant, self.variant + 8):
            if regexes:
                value = regex_sample(regexes[0], variant=attempt, avoid=sep, nonempty=True)
                if value is None:
                    break
            else:
                value = _plain(attempt)
            value = value.lower() if lower else value
            if all(re.fullmatch(regex, value) for regex in regexes):
                return value
        shown = " and ".join(f"`{r}`" for r in regexes)
        raise UnsatisfiableRuleError(f"no segment value found that matches {shown}")

    def values(self, atoms: list[_Atom], *, header: bool) -> tuple[tuple[str, str], ...]:
        """A value per positive Header (or Query) predicate, clear of the negated ones."""
        kind = "Header" if header else "Query"
        reserved = self.reserved_headers if header else self.reserved_query
        wanted: dict[str, list[ValuePattern]] = {}
        refused: dict[str, list[ValuePattern]] = {}
        names: dict[str, str] = {}
        for positive, predicate in atoms:
            assert isinstance(predicate, Header | Query)  # noqa: S101 - grouped above
            key = predicate.name.lower() if header else predicate.name
            names.setdefault(key, predicate.name)
            (wanted if positive else refused).setdefault(key, []).append(predicate.value)
        pairs: list[tuple[str, str]] = []
        for key, patterns in wanted.items():
            if (key.lower() if header else key) in reserved:
                raise UnsatisfiableRuleError(
                    f"{kind}(`{names[key]}`, ...) never matches: httpsrv removes "
                    f"{names[key]} before routing"
                )
            avoid = refused.get(key, [])
            if any(isinstance(p, AnyValue) for p in avoid):
                raise UnsatisfiableRuleError(
                    f"{kind}(`{names[key]}`, ...) and !{kind}(`{names[key]}`, `{{}}`) "
                    "cannot both hold"
                )
            values: list[str] = []
            for pattern in sorted(patterns, key=lambda p: isinstance(p, AnyValue)):
                if isinstance(pattern, AnyValue) and values:
                    continue  # any value will do, and one is there already
                value = self.value(pattern, avoid, kind, names[key], header=header)
                if value not in values:
                    values.append(value)
            pairs.extend((names[key], value) for value in values)
        return tuple(pairs)

    def value(
        self,
        pattern: ValuePattern,
        avoid: list[ValuePattern],
        kind: str,
        name: str,
        *,
        header: bool,
    ) -> str:
        for value in self._value_candidates(pattern, header=header):
            if not any(_value_matches(a, value) for a in avoid):
                return value
        shown = f"{kind}(`{name}`, `{_show_value(pattern)}`)"
        raise UnsatisfiableRuleError(f"no value found for {shown} that the negations allow")

    def _value_candidates(self, pattern: ValuePattern, *, header: bool) -> Iterator[str]:
        if isinstance(pattern, Literal):
            yield pattern.text
            return
        for attempt in range(self.variant, self.variant + 8):
            if isinstance(pattern, AnyValue):
                yield _plain(attempt)
                continue
            value = regex_sample(pattern.pattern, variant=attempt, avoid=_CONTROL if header else "")
            if value is None:
                return
            yield value


def _type_matches(event_type: str, value: str) -> bool:
    return event_type == value or event_type.lower().endswith(value.lower())


def _value_matches(pattern: ValuePattern, value: str) -> bool:
    if isinstance(pattern, AnyValue):
        return True
    if isinstance(pattern, Literal):
        return pattern.text == value
    assert isinstance(pattern, Regex)  # noqa: S101 - the last kind of value pattern
    return re.fullmatch(pattern.pattern, value) is not None
