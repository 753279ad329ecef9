"""Loosely typed values: validation, type detection and upstream's conversions."""

from __future__ import annotations

import math

import pytest

from kubefox.core.errors import InvalidError
from kubefox.core.values import (
    EnvVarType,
    Value,
    check_value,
    check_values,
    env_var_type,
    go_format_float,
    is_empty,
    to_bool,
    to_float,
    to_int,
    to_str,
)

VALID: list[Value] = [
    "text",
    "",
    0,
    -7,
    2**64 - 1,
    -(2**63),
    1.5,
    -0.0,
    True,
    False,
    None,
    [],
    ["a", "b"],
    [1, 2.5, -3],
    {},
    {"Accept": ["text/html", "*/*"], "X-Empty": []},
]


@pytest.mark.parametrize("value", VALID)
def test_check_value_accepts_every_json_form(value: Value) -> None:
    """Strings, numbers, booleans, null, string/number arrays and string-array maps pass as is."""
    result = check_value(value)

    assert result is value


@pytest.mark.parametrize(
    ("value", "path", "fragment"),
    [
        ({"a": {"b": ["c"]}}, "values.header.a", "nested objects are not allowed"),
        ({"a": "b"}, "values.header.a", "object values must be arrays of strings, got string"),
        ({"a": ["b", 1]}, "values.header.a[1]", "got number"),
        ({1: ["b"]}, "values.header", "object keys must be strings"),
        (["a", 1], "values.header[1]", "mixed array: expected a string, got number"),
        ([1, "a"], "values.header[1]", "mixed array: expected a number, got string"),
        ([1, True], "values.header[1]", "mixed array: expected a number, got boolean"),
        ([{"a": 1}], "values.header[0]", "arrays may hold only strings or numbers, got object"),
        ([["a"]], "values.header[0]", "got array"),
        ([None], "values.header[0]", "got null"),
        ([True], "values.header[0]", "got boolean"),
        (math.nan, "values.header", "is not a JSON number"),
        (math.inf, "values.header", "is not a JSON number"),
        ([1.0, math.inf], "values.header[1]", "is not a JSON number"),
        (2**64, "values.header", "outside the 64-bit range"),
        (b"raw", "values.header", "unsupported type bytes"),
        (("a", "b"), "values.header", "unsupported type tuple"),
        (object(), "values.header", "unsupported type object"),
    ],
)
def test_check_value_rejects_other_shapes_naming_the_path(
    value: object, path: str, fragment: str
) -> None:
    """Nested objects, mixed arrays and foreign types fail with the offending element's path."""
    with pytest.raises(InvalidError) as caught:
        check_value(value, path="values.header")

    assert caught.value.details["path"] == path
    assert fragment in str(caught.value)
    assert str(caught.value).startswith(f"invalid: {path}: ")


def test_check_values_accepts_every_json_form() -> None:
    """A map of valid values passes, whatever mix of forms it holds."""
    check_values({str(i): value for i, value in enumerate(VALID)}, path="values")


@pytest.mark.parametrize(
    ("value", "path"),
    [
        (2**64, "values.bad"),
        (-(2**63) - 1, "values.bad"),
        (math.nan, "values.bad"),
        ({"a": "b"}, "values.bad.a"),
        (["a", 1], "values.bad[1]"),
        (b"raw", "values.bad"),
    ],
)
def test_check_values_rejects_what_check_value_rejects_naming_the_key(
    value: object, path: str
) -> None:
    """A bad value fails as :func:`check_value` says, its path under ``<path>.<key>``."""
    with pytest.raises(InvalidError) as caught:
        check_values({"good": 200, "bad": value}, path="values")

    assert caught.value.details["path"] == path
    with pytest.raises(InvalidError) as alone:
        check_value(value, path="values.bad")
    assert str(caught.value) == str(alone.value)


def test_check_value_without_path_names_the_value() -> None:
    """With no path the message still says where, from ``value`` down."""
    with pytest.raises(InvalidError, match=r"^invalid: value\.a: nested objects"):
        check_value({"a": {}})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["a"], EnvVarType.ARRAY),
        ([1.5], EnvVarType.ARRAY),
        ([], EnvVarType.ARRAY),
        (True, EnvVarType.BOOLEAN),
        (False, EnvVarType.BOOLEAN),
        (0, EnvVarType.NUMBER),
        (1.5, EnvVarType.NUMBER),
        ("1", EnvVarType.STRING),
        (None, EnvVarType.STRING),
        ({"a": ["b"]}, EnvVarType.STRING),
    ],
)
def test_env_var_type_detects_upstream_kinds(value: Value, expected: EnvVarType) -> None:
    """Arrays are Array, booleans Boolean, numbers Number, anything else String."""
    assert env_var_type(value) is expected


def test_env_var_type_values_are_upstream_names() -> None:
    """The enum values are the strings an env var schema holds."""
    assert [str(t) for t in EnvVarType] == ["Array", "Boolean", "Number", "String"]


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (1.0, "1"),
        (1.5, "1.5"),
        (0.0, "0"),
        (-0.0, "-0"),
        (-2.5, "-2.5"),
        (0.1, "0.1"),
        (100000.0, "100000"),
        (123456.0, "123456"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (1e20, "1e+20"),
        (1e21, "1e+21"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-2.5e-5, "-2.5e-05"),
        (1e100, "1e+100"),
        (5e-324, "5e-324"),
        (1 / 3, "0.3333333333333333"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
    ],
)
def test_go_format_float_matches_go_percent_v(number: float, text: str) -> None:
    """Floats render as Go's ``fmt.Sprint(float64)``: shortest digits, %e outside [1e-4, 1e6)."""
    assert go_format_float(number) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("plain", "plain"),
        ("", ""),
        (None, ""),
        (True, "true"),
        (False, "false"),
        (200, "200"),
        (10**7, "10000000"),
        (1.0, "1"),
        (1e21, "1e+21"),
        ([], "[]"),
        (["a", 'q"uote', "é"], '["a","q\\"uote","é"]'),
        ([1, 1.5, 1.0, 1e21, 1e-7, 1e20], "[1,1.5,1,1e+21,1e-7,100000000000000000000]"),
        ({"b": ["2"], "a": ["1", "x"]}, '{"a":["1","x"],"b":["2"]}'),
        ({}, "{}"),
    ],
)
def test_to_str_renders_like_upstream(value: Value, text: str) -> None:
    """Strings as is, numbers like Go, arrays and maps as compact JSON with sorted keys."""
    assert to_str(value) == text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        *[(s, True) for s in ("1", "t", "T", "TRUE", "true", "True")],
        *[(s, False) for s in ("0", "f", "F", "FALSE", "false", "False")],
        (True, True),
        (False, False),
        (1, True),
        (-0.5, True),
        (0, False),
        (0.0, False),
        (None, False),
    ],
)
def test_to_bool_reads_like_go(value: Value, expected: bool) -> None:
    """Strings parse as strconv.ParseBool; numbers are true unless zero; null is false."""
    assert to_bool(value) is expected


@pytest.mark.parametrize("value", ["yes", "tRUE", " true", "", "2", ["true"], {"a": ["b"]}])
def test_to_bool_rejects_what_go_would_not_parse(value: Value) -> None:
    """Unparseable strings, arrays and maps raise instead of silently reading false."""
    with pytest.raises(InvalidError):
        to_bool(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, 3.0),
        (1.25, 1.25),
        (True, 1.0),
        (False, 0.0),
        (None, 0.0),
        ("1.5", 1.5),
        ("-2e3", -2000.0),
        (".5", 0.5),
        ("+7", 7.0),
        ("Inf", math.inf),
        ("-infinity", -math.inf),
    ],
)
def test_to_float_converts_numbers_booleans_and_strings(value: Value, expected: float) -> None:
    """Numbers convert, booleans are 1/0, null is 0 and strings are parsed."""
    assert to_float(value) == expected


def test_to_float_parses_nan() -> None:
    """``NaN`` parses, as with Go's strconv.ParseFloat."""
    assert math.isnan(to_float("NaN"))


@pytest.mark.parametrize("value", ["", "abc", " 1", "1 ", "1_000", "1.5x", ["1"], {"a": ["1"]}])
def test_to_float_rejects_non_numbers(value: Value) -> None:
    """Text that is not a Go decimal number, arrays and maps raise InvalidError."""
    with pytest.raises(InvalidError):
        to_float(value)


def test_to_float_rejects_integers_beyond_float_range() -> None:
    """An integer too big for a float raises InvalidError, not OverflowError."""
    with pytest.raises(InvalidError):
        to_float(10**400)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (42, 42),
        (2**64 - 1, 2**64 - 1),
        (1.9, 1),
        (-1.9, -1),
        (True, 1),
        (False, 0),
        (None, 0),
        ("12", 12),
        ("-12", -12),
        ("18446744073709551615", 2**64 - 1),
        ("2.7", 2),
        ("1e3", 1000),
    ],
)
def test_to_int_truncates_toward_zero(value: Value, expected: int) -> None:
    """Floats and numeric strings truncate; integer strings keep every digit."""
    result = to_int(value)

    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize("value", ["abc", "", "1 ", "Inf", "NaN", math.inf, ["1"], {"a": ["1"]}])
def test_to_int_rejects_non_numbers_and_non_finite(value: Value) -> None:
    """Unparseable text, infinities, NaN, arrays and maps raise InvalidError."""
    with pytest.raises(InvalidError):
        to_int(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, True),
        ("", True),
        ([], True),
        ({}, True),
        ("x", False),
        (0, False),
        (0.0, False),
        (False, False),
        ([""], False),
        ({"a": []}, False),
    ],
)
def test_is_empty_only_for_null_and_empty_text_or_collections(value: Value, expected: bool) -> None:
    """Null, empty strings and empty arrays or maps are empty; zero and false are not."""
    assert is_empty(value) is expected
