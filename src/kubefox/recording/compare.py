"""Compare a recorded answer with a replayed one: status, headers and body, minus ignored fields.

Rules (:func:`ignore_rules`) name what may differ:

* ``status``, or ``body`` (the whole body);
* a JSON path into the body, ``$.items[*].id``, ``$.meta.created``, ``$[0]``;
* anything else is a header name (``Date``, ``header:X-Trace``), in any case.

A built-in set is on unless switched off: the headers that differ on every
request or every deployment (:data:`BUILTIN_HEADERS`: ``Date``,
``Kubefox-Event-Id``, the context headers, ``Content-Length``, which follows the
body), and dates and ids inside bodies, which are replaced by placeholders on
both sides before comparing (ISO 8601 and HTTP dates, UUIDs).

Bodies that are both JSON are compared as values (key order and spacing do not
matter) and their diff is of the pretty-printed values; other bodies are
compared as bytes and diffed as text.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
from collections.abc import Iterable
from typing import Any

from kubefox.recording.records import RecordedResponse

#: Headers ignored by the built-in rules (lower case).
BUILTIN_HEADERS = frozenset(
    {
        "age",
        "content-length",
        "date",
        "etag",
        "expires",
        "kubefox-adapter",
        "kubefox-app-deployment",
        "kubefox-event-id",
        "kubefox-platform",
        "kubefox-release-manifest",
        "kubefox-virtual-environment",
        "last-modified",
        "server",
        "set-cookie",
        "traceparent",
        "x-request-id",
    }
)

_PLACEHOLDERS = (
    (
        re.compile(
            r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?",
        ),
        "<date>",
    ),
    (
        re.compile(
            r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
            r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT"
        ),
        "<date>",
    ),
    (
        re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"),
        "<id>",
    ),
)
_PATH_PART = re.compile(r"\.([^.\[\]]+)|\[(\*|\d+)\]|\[['\"]([^'\"]+)['\"]\]")
_WILDCARD = "*"

PathPart = str | int


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class IgnoreRules:
    """What a comparison leaves out; build it with :func:`ignore_rules`."""

    headers: frozenset[str] = BUILTIN_HEADERS
    json_paths: tuple[tuple[PathPart, ...], ...] = ()
    status: bool = False
    body: bool = False
    placeholders: bool = True


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Difference:
    """One field that differs: ``status``, ``body`` or ``header:<name>``."""

    field: str
    recorded: str
    replayed: str
    #: For bodies: a unified diff, recorded first.
    diff: str = ""


def parse_json_path(text: str) -> tuple[PathPart, ...]:
    """``$.a[0].b`` -> ``("a", 0, "b")``; ``[*]`` and ``.*`` match every item.

    Raises:
        ValueError: ``text`` is not a JSON path of that form.
    """
    rest = text.strip()
    if not rest.startswith("$"):
        raise ValueError(f"a JSON path starts with $: {text!r}")
    rest = rest[1:]
    parts: list[PathPart] = []
    position = 0
    for match in _PATH_PART.finditer(rest):
        if match.start() != position:
            break
        name, index, quoted = match.groups()
        if index is not None:
            parts.append(_WILDCARD if index == _WILDCARD else int(index))
        else:
            parts.append(name if name is not None else quoted)
        position = match.end()
    if position != len(rest):
        raise ValueError(f"not a JSON path: {text!r} (use $.a.b, $.a[0], $.a[*].b)")
    return tuple(parts)


def ignore_rules(fields: Iterable[str] = (), *, builtin: bool = True) -> IgnoreRules:
    """The rules for ``fields`` (see the module docstring), plus the built-in ones if asked.

    Raises:
        ValueError: a JSON path is malformed.
    """
    headers: set[str] = set(BUILTIN_HEADERS) if builtin else set()
    paths: list[tuple[PathPart, ...]] = []
    status = body = False
    for raw in fields:
        field = raw.strip()
        if field.lower() == "status":
            status = True
        elif field.lower() == "body":
            body = True
        elif field.startswith("$"):
            paths.append(parse_json_path(field))
        elif field:
            headers.add(field.lower().removeprefix("header:"))
    return IgnoreRules(
        headers=frozenset(headers),
        json_paths=tuple(paths),
        status=status,
        body=body,
        placeholders=builtin,
    )


def _placeheld(text: str) -> str:
    for pattern, placeholder in _PLACEHOLDERS:
        text = pattern.sub(placeholder, text)
    return text


def _normalised(value: Any, *, placeholders: bool) -> Any:
    if isinstance(value, dict):
        return {k: _normalised(v, placeholders=placeholders) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalised(v, placeholders=placeholders) for v in value]
    if isinstance(value, str) and placeholders:
        return _placeheld(value)
    return value


def _drop(value: Any, path: tuple[PathPart, ...]) -> None:
    """Remove what ``path`` names from ``value`` in place."""
    if not path:
        return
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        keys = list(value) if head == _WILDCARD else [head] if head in value else []
        for key in keys:
            if rest:
                _drop(value[key], rest)
            else:
                del value[key]
    elif isinstance(value, list):
        if head == _WILDCARD:
            indexes = list(range(len(value)))
        elif isinstance(head, int) and -len(value) <= head < len(value):
            indexes = [head]
        else:
            indexes = []
        for index in reversed(indexes):
            if rest:
                _drop(value[index], rest)
            else:
                value[index] = "<ignored>"


def _json(body: bytes) -> tuple[bool, Any]:
    if not body:
        return False, None
    try:
        return True, json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False, None


def _text(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")


def _unified(recorded: str, replayed: str) -> str:
    lines = difflib.unified_diff(
        recorded.splitlines(keepends=True),
        replayed.splitlines(keepends=True),
        fromfile="recorded",
        tofile="replayed",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _body_difference(recorded: bytes, replayed: bytes, rules: IgnoreRules) -> Difference | None:
    is_json, old = _json(recorded)
    is_json_too, new = _json(replayed)
    if is_json and is_json_too:
        old = _normalised(old, placeholders=rules.placeholders)
        new = _normalised(new, placeholders=rules.placeholders)
        for path in rules.json_paths:
            _drop(old, path)
            _drop(new, path)
        if old == new:
            return None
        left = json.dumps(old, indent=2, sort_keys=True, ensure_ascii=False)
        right = json.dumps(new, indent=2, sort_keys=True, ensure_ascii=False)
        return Difference(field="body", recorded=left, replayed=right, diff=_unified(left, right))
    left, right = _text(recorded), _text(replayed)
    if recorded == replayed or (rules.placeholders and _placeheld(left) == _placeheld(right)):
        return None
    return Difference(field="body", recorded=left, replayed=right, diff=_unified(left, right))


def _header_map(headers: Iterable[tuple[str, str]], ignored: frozenset[str]) -> dict[str, str]:
    found: dict[str, list[str]] = {}
    for name, value in headers:
        key = name.lower()
        if key not in ignored:
            found.setdefault(key, []).append(value)
    return {name: ", ".join(values) for name, values in found.items()}


def compare(
    recorded: RecordedResponse, replayed: RecordedResponse, rules: IgnoreRules
) -> list[Difference]:
    """Every field of ``replayed`` that differs from ``recorded`` and is not ignored."""
    differences: list[Difference] = []
    if not rules.status and recorded.status != replayed.status:
        differences.append(
            Difference(field="status", recorded=str(recorded.status), replayed=str(replayed.status))
        )
    old = _header_map(recorded.headers, rules.headers)
    new = _header_map(replayed.headers, rules.headers)
    differences.extend(
        Difference(field=f"header:{name}", recorded=old.get(name, ""), replayed=new.get(name, ""))
        for name in sorted(old.keys() | new.keys())
        if old.get(name) != new.get(name)
    )
    if not rules.body:
        body = _body_difference(recorded.body, replayed.body, rules)
        if body is not None:
            differences.append(body)
    return differences
