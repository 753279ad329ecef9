"""Header and query maps as events carry them: canonical keys, lists of values.

Upstream writes header names in Go's canonical MIME form (``Content-Type``,
``X-Request-Id``) and every header or query value as a list of strings. Users
hand us plain dicts with strings or lists, in any case; these helpers turn them
into the wire form once, where they enter, so readers can look keys up cheaply.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: Header and query maps as users may pass them: one value or several per name.
HeaderInput = Mapping[str, str | Sequence[str]]

# Go's textproto only canonicalises keys made of token characters.
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def canonical_key(name: str) -> str:
    """``name`` in canonical MIME form: ``content-type`` becomes ``Content-Type``.

    Names with characters that are not valid in a header token are returned
    unchanged, as Go does.
    """
    if not name or any(c not in _TOKEN_CHARS for c in name):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def _as_list(value: str | Sequence[str]) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def header_map(headers: HeaderInput | None) -> dict[str, list[str]]:
    """``headers`` with canonical keys and list values; repeated keys are merged."""
    result: dict[str, list[str]] = {}
    if headers:
        for name, value in headers.items():
            result.setdefault(canonical_key(name), []).extend(_as_list(value))
    return result


def query_map(query: HeaderInput | None) -> dict[str, list[str]]:
    """``query`` with list values; keys are kept as given (query names are case-sensitive)."""
    return {name: _as_list(value) for name, value in query.items()} if query else {}


def string_lists(value: Any) -> dict[str, list[str]]:
    """A header or query map read from an event, or ``{}`` if the value is not one.

    :mod:`kubefox.core.codec` has already checked that maps hold lists of strings.
    """
    return value if isinstance(value, dict) else {}


def lookup(headers: Mapping[str, list[str]], name: str) -> list[str]:
    """Every value of header ``name``, matched case-insensitively; ``[]`` if absent."""
    values = headers.get(name)
    if values is None:
        values = headers.get(canonical_key(name))
    if values is None:
        lowered = name.lower()
        values = next((v for k, v in headers.items() if k.lower() == lowered), [])
    return values


def first(values: Iterable[str]) -> str | None:
    """The first of ``values``, or ``None`` if there is none."""
    return next(iter(values), None)
