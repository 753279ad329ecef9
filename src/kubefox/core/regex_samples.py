"""Strings that fully match a regular expression: sample values for route parameters.

The built-in ``io.kubefox.routes`` event needs, for a route such as
``Path(`/items/{id:[0-9]+}`)``, a segment the regex accepts. This module walks
the pattern's parse tree (the one :mod:`re` itself builds) and picks, at every
choice, the first character or branch from a preferred alphabet (lower-case
letters, digits, then the rest of printable ASCII), so the default sample is
stable and readable (``[0-9]+`` gives ``0``, ``[a-z]{3}`` gives ``aaa``). Other
variants choose at random from a seed, so a caller that needs another value
(the first was shadowed by a more specific route, or must avoid a character)
asks for the next variant.

Nothing is trusted: every candidate is checked with :func:`re.fullmatch`
before it is returned, so lookarounds, back-references and flags the walker
treats loosely can only cost a sample, never produce a wrong one.
"""

from __future__ import annotations

import importlib
import random
import re
import string
from collections.abc import Callable
from typing import Any

# The parser is private and unstubbed, but its tree has kept its shape since
# Python 3.5 (it was ``sre_parse``, now deprecated); anything unexpected in it
# only makes a sample fail verification.
_parser: Any = importlib.import_module("re._parser")

#: Characters tried first, in order: readable in a URL, a header or a log line.
PREFERRED = (
    string.ascii_lowercase
    + string.digits
    + string.ascii_uppercase
    + "-_.~"
    + "".join(c for c in string.punctuation if c not in "-_.~")
    + " "
)
#: Most variants tried by :func:`regex_sample` before giving up.
ATTEMPTS = 24
#: Extra repetitions a random variant may add to a quantifier's minimum.
_EXTRA_REPEATS = 3

_CharTest = Callable[[str], bool]


class _ImpossibleError(Exception):
    """Internal: the walk reached something that cannot produce a string."""


def _category(name: str) -> _CharTest:
    tests: dict[str, _CharTest] = {
        "CATEGORY_DIGIT": str.isdigit,
        "CATEGORY_SPACE": str.isspace,
        "CATEGORY_WORD": lambda c: c.isalnum() or c == "_",
        "CATEGORY_LINEBREAK": lambda c: c == "\n",
    }
    positive = name.replace("_NOT_", "_")
    test = tests.get(positive)
    if test is None:
        raise _ImpossibleError
    if positive != name:
        return lambda c: not test(c)
    return test


def _in_range(low: int, high: int) -> _CharTest:
    return lambda c: low <= ord(c) <= high


def _set_test(items: list[Any]) -> tuple[_CharTest, list[str]]:
    """Membership in a ``[...]`` set, and the characters it names (for non-ASCII sets)."""
    negate = False
    tests: list[_CharTest] = []
    named: list[str] = []
    for op, arg in items:
        kind = str(op)
        if kind == "NEGATE":
            negate = True
        elif kind == "LITERAL":
            named.append(chr(arg))
            tests.append(_in_range(arg, arg))
        elif kind == "RANGE":
            named.append(chr(arg[0]))
            tests.append(_in_range(*arg))
        elif kind == "CATEGORY":
            tests.append(_category(str(arg)))
        else:  # RANGE_UNI_IGNORE and friends: rare; verification decides
            raise _ImpossibleError

    def test(c: str) -> bool:
        return any(t(c) for t in tests) != negate

    return test, ([] if negate else named)


class _Walker:
    """One attempt at a string for a parsed pattern."""

    def __init__(self, rng: random.Random | None, avoid: str) -> None:
        self.rng = rng
        self.avoid = avoid
        self.groups: dict[int, str] = {}

    def char(self, test: _CharTest, named: list[str] | None = None) -> str:
        allowed = [c for c in PREFERRED if c not in self.avoid and test(c)]
        if not allowed and named:
            allowed = [c for c in named if c not in self.avoid and test(c)]
        if not allowed:
            raise _ImpossibleError
        return allowed[0] if self.rng is None else self.rng.choice(allowed)

    def walk(self, tree: Any) -> str:
        return "".join(self.node(op, arg) for op, arg in tree)

    def node(self, op: Any, arg: Any) -> str:  # noqa: PLR0911, PLR0912 - one branch per opcode
        kind = str(op)
        if kind == "LITERAL":
            char = chr(arg)
            if char in self.avoid:
                raise _ImpossibleError
            return char
        if kind == "NOT_LITERAL":
            return self.char(lambda c: c != chr(arg))
        if kind == "ANY":
            return self.char(lambda c: c != "\n")
        if kind == "IN":
            return self.char(*_set_test(arg))
        if kind == "BRANCH":
            branches = arg[1]
            if self.rng is None:
                return self.walk(branches[0])
            return self.walk(self.rng.choice(branches))
        if kind == "SUBPATTERN":
            group, _, _, tree = arg
            text = self.walk(tree)
            if group is not None:
                self.groups[group] = text
            return text
        if kind in {"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"}:
            return self.repeat(*arg)
        if kind == "ATOMIC_GROUP":
            return self.walk(arg)
        if kind == "GROUPREF":
            return self.groups.get(arg, "")
        if kind == "GROUPREF_EXISTS":
            group, yes, no = arg
            if group in self.groups:
                return self.walk(yes)
            return "" if no is None else self.walk(no)
        if kind in {"AT", "ASSERT", "ASSERT_NOT"}:
            return ""  # anchors and lookarounds consume nothing; verification judges them
        raise _ImpossibleError  # FAILURE, or an opcode this walker does not know

    def repeat(self, low: int, high: int, tree: Any) -> str:
        # At least once where allowed: a parameter is a whole non-empty segment.
        count = max(low, min(1, high))
        if self.rng is not None:
            count = self.rng.randint(low, min(high, low + _EXTRA_REPEATS))
        return "".join(self.walk(tree) for _ in range(count))


def regex_sample(
    pattern: str, *, variant: int = 0, avoid: str = "", nonempty: bool = False
) -> str | None:
    """A string that fully matches ``pattern``, or ``None`` if none was found.

    Args:
        pattern: a Python regular expression (it must compile).
        variant: 0 for the stable, most readable sample; each other number
            gives a sample chosen at random from that seed (possibly equal).
        avoid: characters the sample must not contain (``/`` in a path segment).
        nonempty: whether the empty string is refused.

    Every returned string satisfies ``re.fullmatch(pattern, sample)``. ``None``
    means the walk could not produce one within :data:`ATTEMPTS` tries from
    ``variant`` on (the regex never matches, or only in ways the walker does
    not find, such as through lookarounds).
    """
    compiled = re.compile(pattern)
    try:
        tree = _parser.parse(pattern)
    except re.error:
        return None
    for attempt in range(variant, variant + ATTEMPTS):
        walker = _Walker(None if attempt == 0 else random.Random(attempt), avoid)  # noqa: S311 - not security
        try:
            text = walker.walk(tree)
        except (_ImpossibleError, RecursionError):
            continue
        fits = (text or not nonempty) and not any(c in avoid for c in text)
        if fits and compiled.fullmatch(text) is not None:
            return text
    return None
