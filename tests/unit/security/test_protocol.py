"""The pure checks shared by both backends: paths, names and serials."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kubefox.core.errors import InvalidError
from kubefox.security.protocol import (
    check_document,
    check_names,
    check_path,
    check_prefix,
    normalise_serial,
)


@pytest.mark.parametrize("path", ["a", "env/qa", "nats/accounts/acme.shop", "A-1/b_2/c.3"])
def test_safe_paths_are_accepted(path: str) -> None:
    """Letters, digits, '.', '_' and '-' in up to 16 segments."""
    assert check_path(path) == path


@pytest.mark.parametrize(
    "path",
    ["", "/a", "a/", "a//b", "..", "a/../b", "a/./b", "a b", "a/%2e", "-a", "/".join("a" * 17)],
)
def test_unsafe_paths_are_invalid(path: str) -> None:
    """Nothing that a backend would escape, normalise or read as a parent."""
    with pytest.raises(InvalidError):
        check_path(path)


def test_prefixes_may_be_empty_or_end_with_a_slash() -> None:
    """'' lists everything; 'env/' is the same folder as 'env'."""
    assert check_prefix("") == ""
    assert check_prefix("env/") == "env"
    with pytest.raises(InvalidError):
        check_prefix("../env")


def test_names_are_deduplicated_with_the_common_name_first() -> None:
    """The CN is always a DNS SAN; IPs are canonical."""
    names, ips = check_names(
        "svc", ["localhost", "svc", "*.svc.local"], ["::0001", "127.0.0.1"], timedelta(hours=1)
    )

    assert names == ["svc", "localhost", "*.svc.local"]
    assert ips == ["::1", "127.0.0.1"]


def test_documents_must_be_json_objects() -> None:
    """A list, non-string keys or non-JSON values are refused."""
    assert check_document({"a": [1, {"b": None}]}) == {"a": [1, {"b": None}]}
    for bad in ([1], {1: "a"}, {"a": object()}, "text"):
        with pytest.raises(InvalidError):
            check_document(bad)


@pytest.mark.parametrize(
    ("serial", "expected"), [("0a:1b", "a1b"), ("7B:16", "7b16"), ("00ff", "ff"), ("abc", "abc")]
)
def test_serials_are_normalised_to_plain_hex(serial: str, expected: str) -> None:
    """Bao's colon form and our hex form name the same certificate."""
    assert normalise_serial(serial) == expected


def test_a_non_hex_serial_is_invalid() -> None:
    """Revoking needs a number."""
    with pytest.raises(InvalidError):
        normalise_serial("xyz")
