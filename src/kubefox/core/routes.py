"""The route rule language: parsing, template resolution and priority.

A rule such as ``Method(`GET`) && Path(`/{{.Vars.sub}}/items/{id}`)`` is
written once by a component and resolved per data set (virtual environment,
release manifest) before the broker matches events against it. This module
turns text into a frozen AST (:func:`parse`), renders templates
(:func:`resolve`, :func:`template_vars`) and ranks resolved rules
(:func:`priority`); :mod:`kubefox.core.matcher` compiles the AST into matchers.

It follows upstream KubeFox's language, minus its known bugs: a missing
variable is an error instead of rendering empty, an array variable matches
only its own values, and colons inside ``{name:regex}`` are kept. Every
syntax error names the 1-based column and what was expected there. Regular
expressions use Python's :mod:`re` syntax and always match a whole segment
or value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from kubefox.core.errors import RouteInvalidError
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
from kubefox.core.values import Value, to_str

# Allowed argument counts: (minimum, maximum); None means no maximum.
_ARITY: dict[str, tuple[int, int | None]] = {
    "All": (0, 0),
    "Header": (2, 2),
    "Host": (1, 1),
    "Method": (1, None),
    "Path": (1, 1),
    "PathPrefix": (1, 1),
    "Query": (2, 2),
    "Type": (1, 1),
}
_FUNCTIONS = ", ".join(sorted(_ARITY))
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_TEMPLATE = re.compile(r"\.(Vars|Env|Secrets)\.([A-Za-z_][A-Za-z0-9_]*)")
_TOKEN = re.compile(
    r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<raw>`[^`]*`)|(?P<op>&&|\|\||[(),!]))"
)
_END = "end"
_STRING = "string"
_NAME = "name"


class _RuleSyntaxError(Exception):
    """Internal: where the rule went wrong; the public functions add the rule text."""

    def __init__(self, index: int, expected: str, *, after: str = "", found: str = "") -> None:
        self.index = index
        self.expected = expected
        text = f"column {index + 1}: expected {expected}"
        text += f" after {after}" if after else ""
        text += f", found {found}" if found else ""
        super().__init__(text)


class _Token:
    """One lexeme; strings also know their decoded value and owning call argument."""

    __slots__ = ("arg", "call", "end", "kind", "offsets", "start", "value")

    def __init__(
        self, kind: str, start: int, end: int, value: str, offsets: list[int] | None = None
    ) -> None:
        self.kind = kind
        self.start = start
        self.end = end
        self.value = value
        # Raw offset (from ``start``) of each decoded character; None: back-ticks, i + 1.
        self.offsets = offsets
        self.call = ""
        self.arg = -1

    def index_of(self, i: int) -> int:
        """Index in the rule text of decoded character ``i`` (the closing quote at the end)."""
        if i >= len(self.value):
            return self.end - 1
        return self.start + (i + 1 if self.offsets is None else self.offsets[i])

    def describe(self) -> str:
        if self.kind == _END:
            return "end of rule"
        if self.kind == _STRING:
            return "a string"
        return self.value if self.kind == _NAME else f'"{self.value}"'


@dataclass(frozen=True, slots=True)
class _Call:
    name: str
    start: int
    args: tuple[_Token, ...]


@dataclass(frozen=True, slots=True)
class _Op:
    kind: str  # "&&", "||" or "!"
    operands: tuple[_Call | _Op, ...]


def _lex(rule: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while True:
        match = _TOKEN.match(rule, i)
        if match is not None:
            kind = match.lastgroup or ""
            start, i = match.start(kind), match.end()
            text = match.group(kind)
            if kind == "raw":  # back-ticks are raw, as in Go: no escapes at all
                tokens.append(_Token(_STRING, start, i, text[1:-1]))
            else:
                tokens.append(_Token(_NAME if kind == _NAME else text, start, i, text))
            continue
        while i < len(rule) and rule[i].isspace():
            i += 1
        if i == len(rule):
            break
        token = _lex_other(rule, i)
        tokens.append(token)
        i = token.end
    tokens.append(_Token(_END, len(rule), len(rule), ""))
    return tokens


def _lex_other(rule: str, start: int) -> _Token:
    """A double-quoted string, or the error for what cannot start a token."""
    quote = rule[start]
    if quote == "`":
        raise _RuleSyntaxError(start, '"`" to close the string opened here', found="end of rule")
    if quote in "&|":
        raise _RuleSyntaxError(start, f'"{quote * 2}"', found=f'"{quote}"')
    if quote != '"':
        raise _RuleSyntaxError(start, "a function, operator or string", found=f'"{quote}"')
    chars: list[str] = []
    offsets: list[int] = []
    i = start + 1
    while i < len(rule) and rule[i] != '"':
        # Only \" and \\ are escapes, so "\{" keeps its backslash for the path syntax.
        step = 2 if rule[i] == "\\" and rule[i + 1 : i + 2] in ('"', "\\") else 1
        chars.append(rule[i + step - 1])
        offsets.append(i - start)
        i += step
    if i >= len(rule):
        raise _RuleSyntaxError(start, "'\"' to close the string opened here", found="end of rule")
    return _Token(_STRING, start, i + 1, "".join(chars), offsets)


class _Parser:
    """Recursive descent over ``or := and ("||" and)*``, ``and := unary ("&&" unary)*``."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def next(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += token.kind != _END
        return token

    def parse(self) -> _Call | _Op:
        if self.tokens[0].kind == _END:
            raise _RuleSyntaxError(0, "a predicate", found="an empty rule")
        node = self.binary("||")
        token = self.tokens[self.pos]
        if token.kind != _END:
            raise _RuleSyntaxError(token.start, '"&&", "||" or end of rule', found=token.describe())
        return node

    def binary(self, operator: str) -> _Call | _Op:
        operand = self.binary("&&") if operator == "||" else self.unary()
        operands = [operand]
        while self.tokens[self.pos].kind == operator:
            self.next()
            operands.append(self.binary("&&") if operator == "||" else self.unary())
        if len(operands) == 1:
            return operand
        # Flatten nested chains of one operator: the AST is n-ary.
        flat: list[_Call | _Op] = []
        for node in operands:
            flat.extend(
                node.operands if isinstance(node, _Op) and node.kind == operator else [node]
            )
        return _Op(operator, tuple(flat))

    def unary(self) -> _Call | _Op:
        token = self.next()
        if token.kind == "!":
            return _Op("!", (self.unary(),))
        if token.kind == "(":
            node = self.binary("||")
            close = self.next()
            if close.kind != ")":
                after = f"the group opened at column {token.start + 1}"
                raise _RuleSyntaxError(close.start, '")"', after=after, found=close.describe())
            return node
        if token.kind == _NAME:
            return self.call(token)
        expected = 'a predicate (a function call, "!" or "(")'
        raise _RuleSyntaxError(token.start, expected, found=token.describe())

    def call(self, name: _Token) -> _Call:
        if name.value not in _ARITY:
            raise _RuleSyntaxError(name.start, f"a function ({_FUNCTIONS})", found=name.value)
        token = self.next()
        if token.kind != "(":
            raise _RuleSyntaxError(token.start, '"("', after=name.value, found=token.describe())
        args: list[_Token] = []
        token = self.next()
        while token.kind != ")" or args:
            if token.kind != _STRING:
                expected = "a string in back-ticks or double quotes"
                expected += "" if args else ' or ")"'
                raise _RuleSyntaxError(token.start, expected, found=token.describe())
            token.call, token.arg = name.value, len(args)
            args.append(token)
            token = self.next()
            if token.kind == ")":
                break
            if token.kind != ",":
                after = f"argument {len(args)} of {name.value}"
                raise _RuleSyntaxError(
                    token.start, '"," or ")"', after=after, found=token.describe()
                )
            token = self.next()
        low, high = _ARITY[name.value]
        if not low <= len(args) <= (len(args) if high is None else high):
            count = "no" if high == 0 else f"at least {low}" if high is None else str(low)
            noun = "argument" if low == 1 else "arguments"
            raise _RuleSyntaxError(
                name.start, f"{count} {noun} to {name.value}", found=str(len(args))
            )
        return _Call(name.value, name.start, tuple(args))


def _parse_tree(rule: str) -> tuple[list[_Token], _Call | _Op]:
    tokens = _lex(rule)
    return tokens, _Parser(tokens).parse()


def _invalid(fault: _RuleSyntaxError, rule: str) -> RouteInvalidError:
    return RouteInvalidError(
        str(fault), position=fault.index + 1, expected=fault.expected, rule=rule
    )


def parse(rule: str) -> Rule:
    """Parse a resolved rule into its AST.

    Raises:
        RouteInvalidError: the rule does not parse or still holds a ``{{ }}``
            template; ``details`` hold ``position`` (1-based column) and
            ``expected``, and the message says both.
    """
    try:
        return _to_rule(_parse_tree(rule)[1])
    except _RuleSyntaxError as fault:
        raise _invalid(fault, rule) from None


def _to_rule(node: _Call | _Op) -> Rule:
    if isinstance(node, _Call):
        return _to_predicate(node)
    operands = tuple(_to_rule(operand) for operand in node.operands)
    if node.kind == "!":
        return Not(operand=operands[0])
    return And(operands=operands) if node.kind == "&&" else Or(operands=operands)


def _to_predicate(node: _Call) -> Rule:
    for token in node.args:
        if (at := token.value.find("{{")) >= 0:
            expected = "a resolved rule (call resolve first)"
            raise _RuleSyntaxError(token.index_of(at), expected, found='a template "{{"')
    args = node.args
    name = node.name
    if name in {"Path", "PathPrefix"}:
        segments = _segments(args[0], "/")
        return Path(segments=segments) if name == "Path" else PathPrefix(segments=segments)
    if name == "Host":
        return Host(segments=_host_segments(args[0]))
    if name in {"Header", "Query"}:
        if not args[0].value:
            raise _RuleSyntaxError(args[0].index_of(0), f"a non-empty {name.lower()} name")
        value = _value_pattern(args[1])
        key = args[0].value
        return Header(name=key, value=value) if name == "Header" else Query(name=key, value=value)
    for token in args:
        if not token.value:
            raise _RuleSyntaxError(token.index_of(0), f"a non-empty argument to {name}")
    if name == "Method":
        return Method(methods=tuple(token.value for token in args))
    return Type(value=args[0].value) if name == "Type" else All()


def _closing_brace(text: str, start: int) -> int:
    """Index of the ``}`` matching ``text[start] == "{"``, or -1; regex quantifiers nest."""
    depth = 0
    i = start
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        depth += (c == "{") - (c == "}")
        if depth == 0:
            return i
        i += 1
    return -1


def _segments(token: _Token, sep: str) -> tuple[Segment, ...]:
    text = token.value
    segments: list[Segment] = []
    i = 0
    while i < len(text):
        if text[i] == sep:
            i += 1
            continue
        if segments and isinstance(segments[-1], Param) and segments[-1].rest:
            raise _RuleSyntaxError(token.index_of(i), "end of pattern after a {name...} parameter")
        if text[i] == "{":
            end = _closing_brace(text, i)
            if end < 0:
                raise _RuleSyntaxError(token.index_of(i), '"}" to close the parameter opened here')
            segments.append(_param(token, i, end, sep))
            i = end + 1
            if i < len(text) and text[i] != sep:
                expected = f'"{sep}" or end of pattern after a parameter'
                raise _RuleSyntaxError(token.index_of(i), expected, found=f'"{text[i]}"')
            continue
        chars: list[str] = []
        while i < len(text) and text[i] != sep:
            c = text[i]
            if c == "\\" and text[i + 1 : i + 2] in ("{", "}"):
                chars.append(text[i + 1])
                i += 2
                continue
            if c in "{}":
                expected = f'"{sep}" before a parameter (escape a literal brace as \\{c})'
                raise _RuleSyntaxError(token.index_of(i), expected, found=f'"{c}" inside a segment')
            chars.append(c)
            i += 1
        segments.append(Literal(text="".join(chars)))
    return tuple(segments)


def _param(token: _Token, start: int, end: int, sep: str) -> Param:
    # Only the first colon separates name from regex: the rest belong to the regex.
    name, colon, regex = token.value[start + 1 : end].partition(":")
    rest = name.endswith("...")
    if rest:
        name = name[:-3]
        if sep != "/" or colon:
            found = "{name...} in a host" if sep != "/" else "a regex after {name...}"
            raise _RuleSyntaxError(
                token.index_of(start), "a {name} or {name:regex} parameter", found=found
            )
    if (name or rest) and not _PARAM_NAME.fullmatch(name):
        expected = 'a parameter name (a letter or "_", then letters, digits, "_", "-" or ".")'
        raise _RuleSyntaxError(token.index_of(start + 1), expected, found=f'"{name}"')
    if not regex:
        return Param(name=name, rest=rest)
    try:
        re.compile(regex)
    except re.error as exc:
        at = token.index_of(start + 1 + len(name) + 1 + (exc.pos or 0))
        raise _RuleSyntaxError(at, "a valid regular expression", found=f"{exc.msg}") from None
    return Param(name=name, regex=regex)


def _host_segments(token: _Token) -> tuple[Segment, ...]:
    segments = _segments(token, ".")
    if not segments:
        raise _RuleSyntaxError(token.index_of(0), "a non-empty host pattern")
    last = segments[-1]
    if isinstance(last, Literal) and ":" in last.text and not last.text.startswith("["):
        at = token.index_of(token.value.rfind(":"))
        expected = "a host without a port (ports are ignored when matching)"
        raise _RuleSyntaxError(at, expected, found=f'"{last.text}"')
    return segments


def _value_pattern(token: _Token) -> ValuePattern:
    value = token.value
    if len(value) < 2 or value[0] != "{" or value[-1] != "}":
        return Literal(text=value)
    if value == "{}":
        return AnyValue()
    try:
        re.compile(value[1:-1])
    except re.error as exc:
        at = token.index_of(1 + (exc.pos or 0))
        raise _RuleSyntaxError(at, "a valid regular expression", found=f"{exc.msg}") from None
    return Regex(pattern=value[1:-1])


def _templates(token: _Token) -> list[tuple[int, int, str]]:
    """``(start, end, name)`` of each ``{{ .Vars.name }}`` in a string token."""
    found: list[tuple[int, int, str]] = []
    text = token.value
    start = text.find("{{")
    while start >= 0:
        while text.startswith("{", start + 2):  # "{{{.Vars.x}}}": a brace, then a template
            start += 1
        end = text.find("}}", start + 2)
        if end < 0:
            raise _RuleSyntaxError(token.index_of(start), '"}}" to close the template opened here')
        inner = text[start + 2 : end].strip()
        match = _TEMPLATE.fullmatch(inner)
        if match is None or match.group(1) == "Secrets":
            expected = "{{.Vars.NAME}} or {{.Env.NAME}}"
            what = "a secret (secrets are never part of a route)" if match else f'"{inner}"'
            raise _RuleSyntaxError(token.index_of(start), expected, found=what)
        found.append((start, end + 2, match.group(2)))
        start = text.find("{{", end + 2)
    return found


def template_vars(rule: str) -> list[str]:
    """Names of the variables a rule's templates use, in order of first use.

    Raises:
        RouteInvalidError: the rule does not parse, or a template is malformed
            or names a secret.
    """
    try:
        tokens = _parse_tree(rule)[0]
        names = [
            name for token in tokens if token.kind == _STRING for *_, name in _templates(token)
        ]
    except _RuleSyntaxError as fault:
        raise _invalid(fault, rule) from None
    return list(dict.fromkeys(names))


def resolve(rule: str, data: Mapping[str, Value]) -> str:
    """Render the templates of ``rule`` with ``data`` and return the resolved rule.

    Whitespace between tokens is collapsed to one space. A scalar renders as
    text; an array renders as a regex that matches only its own elements, and
    may fill a whole Path, PathPrefix or Host segment or a whole Header or
    Query value. The result is checked to parse.

    Raises:
        RouteInvalidError: the rule or its rendering does not parse, a template
            is malformed, or variables are missing (``details["missing"]``).
    """
    try:
        tokens = _parse_tree(rule)[0]
        missing: list[str] = []
        pieces: list[str] = []
        previous_end = 0
        for token in tokens[:-1]:
            if pieces and token.start > previous_end:
                pieces.append(" ")
            if token.kind == _STRING and "{{" in token.value:
                pieces.append(_quote(_render(token, data, missing)))
            else:
                pieces.append(rule[token.start : token.end])
            previous_end = token.end
    except _RuleSyntaxError as fault:
        raise _invalid(fault, rule) from None
    if missing:
        names = list(dict.fromkeys(missing))
        cause = f"missing template variables: {', '.join(names)}"
        raise RouteInvalidError(cause, missing=names, rule=rule)
    resolved = "".join(pieces)
    try:
        parse(resolved)
    except RouteInvalidError as exc:
        cause = f"resolved rule {resolved!r}: {exc.cause}"
        raise RouteInvalidError(cause, **{**exc.details, "resolved": resolved}) from exc
    return resolved


def _render(token: _Token, data: Mapping[str, Value], missing: list[str]) -> str:
    text = token.value
    out: list[str] = []
    last = 0
    for start, end, name in _templates(token):
        out.append(text[last:start])
        last = end
        value = data.get(name)
        if value is None:
            missing.append(name)
        elif isinstance(value, list):
            out.append(_alternation(token, start, end, [to_str(item) for item in value]))
        elif isinstance(value, dict):
            raise _RuleSyntaxError(
                token.index_of(start), "a scalar or array variable", found=f'a map in "{name}"'
            )
        else:
            out.append(to_str(value))
    out.append(text[last:])
    return "".join(out)


def _alternation(token: _Token, start: int, end: int, items: list[str]) -> str:
    # "(?!)" never matches: an empty array must not turn into "any segment".
    regex = "|".join(re.escape(item) for item in items) or "(?!)"
    text = token.value
    if token.call in {"Path", "PathPrefix", "Host"}:
        sep = "." if token.call == "Host" else "/"
        if text[start - 1 : start] in ("", sep) and text[end : end + 1] in ("", sep):
            return "{:" + regex + "}"
        expected = "an array variable to fill a whole segment"
    elif token.call in {"Header", "Query"} and token.arg == 1:
        if start == 0 and end == len(text):
            return "{" + regex + "}"
        expected = "an array variable to fill the whole value"
    else:
        expected = f"a scalar variable in argument {token.arg + 1} of {token.call}"
    raise _RuleSyntaxError(token.index_of(start), expected, found="an array")


def _quote(value: str) -> str:
    if "`" not in value:
        return f"`{value}`"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def priority(resolved_rule: str) -> int:
    """Rank of a resolved rule: its length once every ``{...}`` placeholder is ``{}``.

    Longer, more literal rules rank first (``PathPrefix(`/a/b`)`` before
    ``PathPrefix(`/a`)``); names and regexes of parameters do not count.
    """
    total = 0
    i, n = 0, len(resolved_rule)
    while i < n:
        c = resolved_rule[i]
        if c == "\\":
            total += min(2, n - i)
            i += 2
        elif c == "{" and (end := _closing_brace(resolved_rule, i)) > 0:
            total += 2
            i = end + 1
        else:
            total += 1
            i += 1
    return total
