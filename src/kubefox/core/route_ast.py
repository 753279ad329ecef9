"""The abstract syntax of route rules: frozen nodes produced by :func:`kubefox.core.routes.parse`.

Kept apart from the parser so that the matcher (and anything else that walks
rules) depends on the shape of a rule, not on how text becomes one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias


@dataclass(frozen=True, slots=True, kw_only=True)
class Literal:
    """A path or host segment, or a header or query value, equal to ``text``."""

    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Param:
    """A whole segment matched by ``regex`` (``None``: any one segment).

    ``name`` is where the segment is captured (``""``: not captured); ``rest``
    marks a final ``{name...}`` that captures all remaining path segments.
    """

    name: str
    regex: str | None = None
    rest: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Regex:
    """A header or query value that must fully match ``pattern``."""

    pattern: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AnyValue:
    """A header or query value written ``{}``: any value, as long as there is one."""


@dataclass(frozen=True, slots=True, kw_only=True)
class All:
    """``All()``: matches every event."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Type:
    """``Type(`t`)``: the event type is ``value`` or ends with it, ignoring case."""

    value: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Method:
    """``Method(`GET`, ...)``: the method is one of ``methods``, ignoring case."""

    methods: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Path:
    """``Path(`/a/{id}`)``: the whole path, segment by segment."""

    segments: tuple[Segment, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PathPrefix:
    """``PathPrefix(`/a`)``: the leading path segments; the rest is the path suffix."""

    segments: tuple[Segment, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Host:
    """``Host(`{sub}.example.com`)``: the host without its port, split on dots."""

    segments: tuple[Segment, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Header:
    """``Header(`name`, `value`)``: some value of header ``name`` matches."""

    name: str
    value: ValuePattern


@dataclass(frozen=True, slots=True, kw_only=True)
class Query:
    """``Query(`name`, `value`)``: some value of query parameter ``name`` matches."""

    name: str
    value: ValuePattern


@dataclass(frozen=True, slots=True, kw_only=True)
class And:
    """Every operand matches (``a && b && c``)."""

    operands: tuple[Rule, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Or:
    """Some operand matches (``a || b``); the first one that does provides the params."""

    operands: tuple[Rule, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Not:
    """The operand does not match (``!a``); it never provides params."""

    operand: Rule


Segment: TypeAlias = Literal | Param
ValuePattern: TypeAlias = Literal | Regex | AnyValue
Rule: TypeAlias = All | Type | Method | Path | PathPrefix | Host | Header | Query | And | Or | Not
