"""The error tree: stable codes, HTTP statuses, builtin co-parents and the wire form."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest

from kubefox.core.errors import (
    BrokerMismatchError,
    BrokerUnavailableError,
    ComponentGoneError,
    ComponentMismatchError,
    ConflictError,
    ContentTooLargeError,
    DeadlineExceededError,
    InvalidError,
    KubeFoxError,
    NotFoundError,
    PortUnavailableError,
    RouteInvalidError,
    RouteNotFoundError,
    UnauthorizedError,
    UnavailableError,
    UnknownContentTypeError,
    UnsupportedAdapterError,
    error_for_code,
    from_wire,
)

# (class, code, upstream name, message, gRPC code, HTTP status): reference §2.6, then ours.
TABLE: list[tuple[type[KubeFoxError], int, str, str, int, int]] = [
    (KubeFoxError, 0, "Unexpected", "unexpected error", 2, 500),
    (BrokerMismatchError, 1, "BrokerMismatch", "broker mismatch", 9, 502),
    (BrokerUnavailableError, 2, "BrokerUnavailable", "broker unavailable", 14, 502),
    (ComponentGoneError, 3, "ComponentGone", "component gone", 9, 502),
    (ComponentMismatchError, 4, "ComponentMismatch", "component mismatch", 9, 502),
    (ContentTooLargeError, 5, "ContentTooLarge", "content too large", 8, 413),
    (InvalidError, 6, "Invalid", "invalid", 3, 400),
    (NotFoundError, 7, "NotFound", "not found", 12, 404),
    (PortUnavailableError, 8, "PortUnavailable", "port unavailable", 14, 409),
    (RouteInvalidError, 9, "RouteInvalid", "route invalid", 3, 400),
    (RouteNotFoundError, 10, "RouteNotFound", "route not found", 12, 404),
    (DeadlineExceededError, 11, "Timeout", "time out", 4, 504),
    (UnauthorizedError, 12, "Unauthorized", "component unauthorized", 7, 403),
    (UnknownContentTypeError, 13, "UnknownContentType", "unknown content type", 3, 400),
    (UnsupportedAdapterError, 14, "UnsupportedAdapter", "unsupported adapter", 12, 400),
    (UnavailableError, 15, "Unavailable", "unavailable", 14, 503),
    (ConflictError, 16, "Conflict", "conflict", 10, 409),
]
CLASSES = [row[0] for row in TABLE]


@pytest.mark.parametrize("row", TABLE, ids=[row[2] for row in TABLE])
def test_error_class_has_documented_code_name_and_statuses(
    row: tuple[type[KubeFoxError], int, str, str, int, int],
) -> None:
    """Each class carries the code, name, message, gRPC code and HTTP status of the table."""
    cls, code, name, message, grpc, http = row

    error = cls()

    assert (error.code, error.name, error.message) == (code, name, message)
    assert (error.grpc_code, error.http_status) == (grpc, HTTPStatus(http))
    assert error_for_code(code) is cls


def test_error_codes_are_unique() -> None:
    """No two classes share a wire code."""
    codes = [cls.code for cls in CLASSES]

    assert len(set(codes)) == len(codes)


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (NotFoundError, LookupError),
        (RouteNotFoundError, LookupError),
        (DeadlineExceededError, TimeoutError),
        (InvalidError, ValueError),
        (RouteInvalidError, ValueError),
        (UnknownContentTypeError, ValueError),
        (ContentTooLargeError, ValueError),
        (UnauthorizedError, PermissionError),
        (BrokerUnavailableError, ConnectionError),
        (UnavailableError, ConnectionError),
    ],
)
def test_error_is_also_its_builtin(cls: type[KubeFoxError], builtin: type[Exception]) -> None:
    """Errors co-inherit the matching builtin, so generic handlers catch them."""
    error = cls("boom")

    assert isinstance(error, builtin)
    assert isinstance(error, KubeFoxError)


def test_error_subclasses_nest_under_their_family() -> None:
    """Route errors are caught by the invalid/not-found handlers."""
    assert issubclass(RouteInvalidError, InvalidError)
    assert issubclass(UnknownContentTypeError, InvalidError)
    assert issubclass(RouteNotFoundError, NotFoundError)


def test_error_text_is_message_colon_cause() -> None:
    """The text form is ``msg: cause``, as upstream prints it."""
    error = RouteNotFoundError("no route for GET /x")

    assert str(error) == "route not found: no route for GET /x"


def test_error_text_without_cause_is_the_message() -> None:
    """With no cause, the text is the message alone."""
    assert str(DeadlineExceededError()) == "time out"


def test_error_custom_message_replaces_the_default() -> None:
    """A message given by the raiser replaces the class default."""
    error = InvalidError("bad header", message="invalid context")

    assert str(error) == "invalid context: bad header"


def test_error_keeps_details() -> None:
    """Keyword details stay on the instance for callers."""
    error = ContentTooLargeError("too big", size=10, limit=5)

    assert error.details == {"size": 10, "limit": 5}


def test_error_to_wire_has_upstream_fields() -> None:
    """The wire document uses upstream's keys; an empty cause and details are left out."""
    wire = NotFoundError().to_wire()

    assert wire == {"code": 7, "grpcCode": 12, "httpCode": 404, "msg": "not found"}


@pytest.mark.parametrize("cls", CLASSES)
def test_error_wire_round_trip_keeps_class_and_text(cls: type[KubeFoxError]) -> None:
    """from_wire(to_wire(e)) rebuilds the same class, message, cause and details."""
    error = cls("the cause", note="x", count=3)

    rebuilt = from_wire(error.to_wire())

    assert type(rebuilt) is cls
    assert (rebuilt.message, rebuilt.cause, rebuilt.details) == (
        error.message,
        "the cause",
        {"note": "x", "count": 3},
    )


def test_error_from_wire_unknown_code_degrades_to_root() -> None:
    """A code from a newer peer becomes the root class, keeping message, cause and code."""
    rebuilt = from_wire({"code": 999, "msg": "quota exceeded", "cause": "too many"})

    assert type(rebuilt) is KubeFoxError
    assert str(rebuilt) == "quota exceeded: too many"
    assert rebuilt.details["wire_code"] == 999


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"code": "7"},
        {"code": True},
        {"code": None, "msg": 3, "cause": ["x"]},
        {"code": 1.5},
        {"details": "not a map"},
    ],
)
def test_error_from_wire_malformed_payload_degrades_to_root(payload: dict[str, Any]) -> None:
    """Malformed fields never crash: the result is the root class with default text."""
    rebuilt = from_wire(payload)

    assert type(rebuilt) is KubeFoxError
    assert str(rebuilt) == "unexpected error"
