"""Loosely typed values: what event params, event values and env vars may hold.

Upstream KubeFox calls this ``Val``: a JSON string, number, boolean or null, an
array of strings, an array of numbers, or an object of string to array of
strings (headers and query parameters). Nested objects and mixed arrays are
rejected, so every value has one obvious string, number and boolean reading.

Values are plain Python objects rather than a wrapper class: they sit inside
``Event.params``/``Event.values`` and are (de)serialised on every hop, so
:func:`check_value` validates them where they enter and the ``to_*`` functions
convert them where they are read. Conversions follow upstream's Go behaviour
(``%v`` number formatting, ``strconv.ParseBool``), with two deliberate
differences: a string that does not parse raises :class:`InvalidError` instead
of silently reading as ``false``/``0``, and Python integers keep their exact
digits (Go had already turned every number into a float64).
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import TypeAlias, TypeGuard

from kubefox.core.errors import InvalidError

#: The JSON forms a value may take.
Value: TypeAlias = (
    str | int | float | bool | list[str] | list[float | int] | dict[str, list[str]] | None
)

# msgpack (our wire format) carries integers from -2**63 to 2**64 - 1.
_MIN_INT = -(2**63)
_MAX_INT = 2**64 - 1

_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})

# Python's int()/float() also accept surrounding whitespace and digit
# underscores; Go's parsers do not, and neither do we.
_INT_RE = re.compile(r"[+-]?[0-9]+")
_FLOAT_RE = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)",
    re.IGNORECASE,
)


class EnvVarType(enum.StrEnum):
    """The type an env var schema declares, as upstream names it."""

    ARRAY = "Array"
    BOOLEAN = "Boolean"
    NUMBER = "Number"
    STRING = "String"


def _is_number(v: object) -> TypeGuard[int | float]:
    return isinstance(v, int | float) and not isinstance(v, bool)


_KINDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "boolean"),  # before int: bool is an int subclass
    ((int, float), "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
)


def _kind(v: object) -> str:
    """The JSON name of ``v``'s type, for error messages."""
    if v is None:
        return "null"
    for types, name in _KINDS:
        if isinstance(v, types):
            return name
    return type(v).__name__


def _invalid(path: str, problem: str) -> InvalidError:
    return InvalidError(f"{path}: {problem}", path=path)


def _check_number(v: int | float, path: str) -> None:
    if isinstance(v, int):
        if not _MIN_INT <= v <= _MAX_INT:
            raise _invalid(path, "integer is outside the 64-bit range")
    elif not math.isfinite(v):
        raise _invalid(path, f"{v} is not a JSON number")


def _check_array(v: list[object], path: str) -> None:
    if not v:
        return
    first = v[0]
    if _is_number(first):
        for i, item in enumerate(v):
            if not _is_number(item):
                raise _invalid(f"{path}[{i}]", f"mixed array: expected a number, got {_kind(item)}")
            _check_number(item, f"{path}[{i}]")
    elif isinstance(first, str):
        for i, item in enumerate(v):
            if not isinstance(item, str):
                raise _invalid(f"{path}[{i}]", f"mixed array: expected a string, got {_kind(item)}")
    else:
        raise _invalid(f"{path}[0]", f"arrays may hold only strings or numbers, got {_kind(first)}")


def _check_object(v: dict[object, object], path: str) -> None:
    # Headers and query maps are on every HTTP event: keep the common case
    # cheap and build paths only for the error message.
    for key, item in v.items():
        if not isinstance(key, str):
            raise _invalid(path, f"object keys must be strings, got {_kind(key)}")
        if isinstance(item, list):
            for i, element in enumerate(item):
                if not isinstance(element, str):
                    raise _invalid(
                        f"{_join(path, key)}[{i}]",
                        f"object values must be arrays of strings, got {_kind(element)}",
                    )
        elif isinstance(item, dict):
            raise _invalid(_join(path, key), "nested objects are not allowed")
        else:
            raise _invalid(
                _join(path, key), f"object values must be arrays of strings, got {_kind(item)}"
            )


def _join(path: str, key: str) -> str:
    return f"{path}.{key}"


def check_value(v: object, *, path: str = "") -> Value:
    """Return ``v`` unchanged if it is one of the accepted JSON forms.

    Args:
        v: the candidate value, typically freshly decoded.
        path: where ``v`` sits (``values.header``), named in the error;
            ``value`` if not given.

    Raises:
        InvalidError: for nested objects, mixed arrays, arrays of objects or
            arrays, non-string object keys, non-finite floats, integers outside
            the 64-bit range, and any other Python type (tuples and bytes too,
            which would not survive a round trip unchanged). ``details["path"]``
            names the offending element.
    """
    # Plain str first: by far the most common, and the cheapest test.
    if type(v) is str or v is None or isinstance(v, str | bool):
        return v
    path = path or "value"
    if isinstance(v, int | float):
        _check_number(v, path)
        return v
    if isinstance(v, list):
        _check_array(v, path)
        return v
    if isinstance(v, dict):
        _check_object(v, path)
        return v
    raise _invalid(path, f"unsupported type {_kind(v)}")


# Values that are valid whatever they hold, by exact type: with integers (whose
# range is checked inline), the common case on every hop, decided with one set
# lookup. Subclasses (an IntEnum, a str enum) take the general path.
_ALWAYS_VALID: frozenset[type] = frozenset({str, bool, type(None)})


def check_values(values: Mapping[str, object], *, path: str) -> None:
    """Check every value of ``values`` as :func:`check_value` does.

    Errors name the value as ``<path>.<key>`` (``values.header``). Every event
    is checked on every hop, so the common scalars are accepted here without
    a call, and the path is only built for values that need a closer look.

    Raises:
        InvalidError: for the first value :func:`check_value` rejects.
    """
    for key, value in values.items():
        kind = type(value)
        if kind in _ALWAYS_VALID or (kind is int and _MIN_INT <= value <= _MAX_INT):  # type: ignore[operator]
            continue
        check_value(value, path=f"{path}.{key}")


def env_var_type(v: Value) -> EnvVarType:
    """The env var type of ``v``: arrays are Array, booleans Boolean, numbers Number.

    Everything else (strings, null and, as upstream, string-array maps) is String.
    """
    if isinstance(v, list):
        return EnvVarType.ARRAY
    if isinstance(v, bool):
        return EnvVarType.BOOLEAN
    if isinstance(v, int | float):
        return EnvVarType.NUMBER
    return EnvVarType.STRING


def _shortest_digits(f: float) -> tuple[str, int]:
    """Shortest round-trip digits of ``abs(f)`` and the decimal point position.

    ``f == 0.<digits> * 10**point``; Python's ``repr`` and Go's shortest
    formatting pick the same digits.
    """
    _, digit_tuple, exponent = Decimal(repr(abs(f))).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    # The caller passes finite numbers only, so the exponent is an int.
    point = len(digit_tuple) + int(exponent)
    return digits, point


def _format_e(digits: str, point: int) -> str:
    exp = point - 1
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def _format_f(digits: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * -point + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


def go_format_float(f: float) -> str:
    """``f`` as Go's ``fmt.Sprint(float64)`` renders it (``%v``, that is ``%g``).

    Shortest digits; exponent form when the exponent is below -4 or at least 6
    (``1e+06``, ``1e-05``, ``1e+21``); ``NaN``, ``+Inf``, ``-Inf``.
    """
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, f) < 0 else ""
    if f == 0:
        return sign + "0"
    digits, point = _shortest_digits(f)
    exp = point - 1
    body = _format_e(digits, point) if exp < -4 or exp >= 6 else _format_f(digits, point)
    return sign + body


def _go_json_number(n: int | float) -> str:
    """A number as Go's ``encoding/json`` writes a float64 (``1e+21``, ``1e-7``)."""
    if isinstance(n, int):
        return str(n)
    if n == 0:
        return "-0" if math.copysign(1.0, n) < 0 else "0"
    sign = "-" if n < 0 else ""
    digits, point = _shortest_digits(n)
    if abs(n) < 1e-6 or abs(n) >= 1e21:
        text = _format_e(digits, point)
        # Go trims one leading zero of a negative exponent: e-07 becomes e-7.
        text = re.sub(r"e-0(\d)$", r"e-\1", text)
    else:
        text = _format_f(digits, point)
    return sign + text


def _json_string(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def to_str(v: Value) -> str:
    """``v`` as text: strings as is, numbers like Go's ``%v``, arrays and maps as JSON.

    ``None`` is ``""``, booleans are ``true``/``false``, integers keep their
    exact digits, floats follow :func:`go_format_float` (``1.0`` is ``1``).
    Arrays and maps are compact JSON, map keys sorted as Go writes them.
    """
    if v is None or isinstance(v, str):
        return v or ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v) if isinstance(v, int) else go_format_float(v)
    if isinstance(v, list):
        items = (_go_json_number(i) if _is_number(i) else _json_string(str(i)) for i in v)
        return "[" + ",".join(items) + "]"
    pairs = (f"{_json_string(k)}:[{','.join(_json_string(s) for s in v[k])}]" for k in sorted(v))
    return "{" + ",".join(pairs) + "}"


def _parse_float(s: str) -> float:
    if not _FLOAT_RE.fullmatch(s):
        raise InvalidError(f"{s!r} is not a number", value=s)
    return float(s)


def to_bool(v: Value) -> bool:
    """``v`` as a boolean: numbers are true unless zero, ``None`` is false.

    Strings are parsed like Go's ``strconv.ParseBool`` (``1 t T TRUE true True``
    and ``0 f F FALSE false False``).

    Raises:
        InvalidError: for any other string, and for arrays and maps.
    """
    if v is None:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float):
        return v != 0
    if isinstance(v, str):
        if v in _GO_TRUE:
            return True
        if v in _GO_FALSE:
            return False
        raise InvalidError(f"{v!r} is not a boolean", value=v)
    raise InvalidError(f"cannot read {_kind(v)} as a boolean")


def to_float(v: Value) -> float:
    """``v`` as a float: booleans are 1/0, ``None`` is 0, strings are parsed.

    Strings use Go's decimal syntax (``1``, ``-1.5e3``, ``.5``, ``Inf``, ``NaN``);
    surrounding whitespace and digit underscores are refused.

    Raises:
        InvalidError: for a string that is not a number, and for arrays and maps.
    """
    if v is None:
        return 0.0
    if isinstance(v, int | float):
        try:
            return float(v)
        except OverflowError as exc:
            raise InvalidError(f"{v} does not fit a float") from exc
    if isinstance(v, str):
        return _parse_float(v)
    raise InvalidError(f"cannot read {_kind(v)} as a number")


def to_int(v: Value) -> int:
    """``v`` as an integer: floats and numeric strings are truncated toward zero.

    Booleans are 1/0 and ``None`` is 0. Integer strings keep every digit (no
    detour through a float).

    Raises:
        InvalidError: for a string that is not a number, a non-finite number,
            and for arrays and maps.
    """
    if isinstance(v, int):
        return int(v)  # bool becomes 1/0
    if isinstance(v, str) and _INT_RE.fullmatch(v):
        return int(v)
    f = to_float(v)
    if not math.isfinite(f):
        raise InvalidError(f"{to_str(v)} is not a finite number")
    return int(f)


def is_empty(v: Value) -> bool:
    """True for ``None``, ``""`` and empty arrays or maps; numbers and booleans never are."""
    if v is None:
        return True
    if isinstance(v, str | list | dict):
        return len(v) == 0
    return False
