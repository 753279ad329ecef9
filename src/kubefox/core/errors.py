"""Errors raised on purpose by kubefox, with stable wire codes and HTTP statuses.

Every error has a stable integer ``code`` (upstream KubeFox's codes 0-14, then ours
from 15 on) so it survives a hop through the broker as an ``io.kubefox.error``
event. The class hierarchy mirrors the codes::

    KubeFoxError                        0  unexpected            500
    ├── BrokerMismatchError             1  broker mismatch       502
    ├── BrokerUnavailableError          2  broker unavailable    502  (also ConnectionError)
    ├── ComponentGoneError              3  component gone        502
    ├── ComponentMismatchError          4  component mismatch    502
    ├── ContentTooLargeError            5  content too large     413  (also ValueError)
    ├── InvalidError                    6  invalid               400  (also ValueError)
    │   ├── RouteInvalidError           9  route invalid         400
    │   └── UnknownContentTypeError    13  unknown content type  400
    ├── NotFoundError                   7  not found             404  (also LookupError)
    │   └── RouteNotFoundError         10  route not found       404
    ├── PortUnavailableError            8  port unavailable      409
    ├── DeadlineExceededError          11  time out              504  (also TimeoutError)
    ├── UnauthorizedError              12  component unauthorized 403 (also PermissionError)
    ├── UnsupportedAdapterError        14  unsupported adapter   400
    ├── UnavailableError               15  unavailable           503  (also ConnectionError)
    └── ConflictError                  16  conflict              409

The wire form is upstream's JSON error document
``{"code", "grpcCode", "httpCode", "msg", "cause"}`` plus our ``details``;
:func:`from_wire` degrades an unknown code to the root class instead of failing.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, ClassVar

_BY_CODE: dict[int, type[KubeFoxError]] = {}


class KubeFoxError(Exception):
    """Base class; catch this to handle every error kubefox raises on purpose.

    ``message`` is the lowercase, period-free text a user sees; ``cause`` names
    the specific reason (``msg: cause`` is the text form, as upstream); keyword
    ``details`` are kept for callers and for the wire.
    """

    code: ClassVar[int] = 0
    name: ClassVar[str] = "Unexpected"
    default_message: ClassVar[str] = "unexpected error"
    grpc_code: ClassVar[int] = 2  # Unknown
    http_status: ClassVar[HTTPStatus] = HTTPStatus.INTERNAL_SERVER_ERROR

    def __init__(self, cause: str = "", *, message: str | None = None, **details: Any) -> None:
        self.message = message if message is not None else self.default_message
        self.cause = cause
        self.details: dict[str, Any] = details
        super().__init__(str(self))

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        existing = _BY_CODE.setdefault(cls.code, cls)
        if existing is not cls and not issubclass(cls, existing):
            raise TypeError(f"wire code {cls.code} is already used by {existing.__name__}")

    def __str__(self) -> str:
        return f"{self.message}: {self.cause}" if self.cause else self.message

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready document carried by an ``io.kubefox.error`` event."""
        wire: dict[str, Any] = {
            "code": self.code,
            "grpcCode": self.grpc_code,
            "httpCode": int(self.http_status),
            "msg": self.message,
        }
        if self.cause:
            wire["cause"] = self.cause
        if self.details:
            wire["details"] = self.details
        return wire


def from_wire(payload: Mapping[str, Any]) -> KubeFoxError:
    """Rebuild the most specific error class known for ``payload["code"]``.

    Anything malformed or unknown becomes the root :class:`KubeFoxError`, keeping
    whatever message and cause could be read, so a newer peer never crashes us.
    """
    raw_code = payload.get("code", 0)
    code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else 0
    error_cls = _BY_CODE.get(code, KubeFoxError)
    raw_details = payload.get("details")
    details = dict(raw_details) if isinstance(raw_details, Mapping) else {}
    if error_cls is KubeFoxError and code != 0:
        details.setdefault("wire_code", raw_code)
    msg = payload.get("msg")
    cause = payload.get("cause")
    error = error_cls(
        cause if isinstance(cause, str) else "", message=msg if isinstance(msg, str) else None
    )
    # set after construction: wire details may use any key, even "message" or "cause"
    error.details = {str(k): v for k, v in details.items()}
    return error


def error_for_code(code: int) -> type[KubeFoxError]:
    """The class registered for ``code``, or the root class for unknown codes."""
    return _BY_CODE.get(code, KubeFoxError)


_BY_CODE[0] = KubeFoxError


class BrokerMismatchError(KubeFoxError):
    """An event reached a broker it was not addressed to."""

    code = 1
    name = "BrokerMismatch"
    default_message = "broker mismatch"
    grpc_code = 9  # FailedPrecondition
    http_status = HTTPStatus.BAD_GATEWAY


class BrokerUnavailableError(KubeFoxError, ConnectionError):
    """No broker could be reached."""

    code = 2
    name = "BrokerUnavailable"
    default_message = "broker unavailable"
    grpc_code = 14  # Unavailable
    http_status = HTTPStatus.BAD_GATEWAY


class ComponentGoneError(KubeFoxError):
    """The component instance an event was pinned to is no longer there."""

    code = 3
    name = "ComponentGone"
    default_message = "component gone"
    grpc_code = 9
    http_status = HTTPStatus.BAD_GATEWAY


class ComponentMismatchError(KubeFoxError):
    """Source or target is not part of the event's AppDeployment at that hash."""

    code = 4
    name = "ComponentMismatch"
    default_message = "component mismatch"
    grpc_code = 9
    http_status = HTTPStatus.BAD_GATEWAY


class ContentTooLargeError(KubeFoxError, ValueError):
    """An event or body is larger than the platform's maximum event size."""

    code = 5
    name = "ContentTooLarge"
    default_message = "content too large"
    grpc_code = 8  # ResourceExhausted
    http_status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class InvalidError(KubeFoxError, ValueError):
    """Input is malformed or inconsistent (bad context, bad resource, bad event)."""

    code = 6
    name = "Invalid"
    default_message = "invalid"
    grpc_code = 3  # InvalidArgument
    http_status = HTTPStatus.BAD_REQUEST


class NotFoundError(KubeFoxError, LookupError):
    """A named thing (resource, handler, deployment) does not exist."""

    code = 7
    name = "NotFound"
    default_message = "not found"
    grpc_code = 12  # Unimplemented
    http_status = HTTPStatus.NOT_FOUND


class PortUnavailableError(KubeFoxError):
    """A port needed to serve is taken."""

    code = 8
    name = "PortUnavailable"
    default_message = "port unavailable"
    grpc_code = 14
    http_status = HTTPStatus.CONFLICT


class RouteInvalidError(InvalidError):
    """A route rule does not parse or resolve."""

    code = 9
    name = "RouteInvalid"
    default_message = "route invalid"


class RouteNotFoundError(NotFoundError):
    """No route of the event's context matches the event."""

    code = 10
    name = "RouteNotFound"
    default_message = "route not found"


class DeadlineExceededError(KubeFoxError, TimeoutError):
    """The event's time to live was spent before a reply came."""

    code = 11
    name = "Timeout"
    default_message = "time out"
    grpc_code = 4  # DeadlineExceeded
    http_status = HTTPStatus.GATEWAY_TIMEOUT


class UnauthorizedError(KubeFoxError, PermissionError):
    """A component tried something its identity does not allow."""

    code = 12
    name = "Unauthorized"
    default_message = "component unauthorized"
    grpc_code = 7  # PermissionDenied
    http_status = HTTPStatus.FORBIDDEN


class UnknownContentTypeError(InvalidError):
    """A body could not be read as the content type it claims."""

    code = 13
    name = "UnknownContentType"
    default_message = "unknown content type"


class UnsupportedAdapterError(KubeFoxError):
    """A dependency names an adapter type the platform does not run."""

    code = 14
    name = "UnsupportedAdapter"
    default_message = "unsupported adapter"
    grpc_code = 12
    http_status = HTTPStatus.BAD_REQUEST


class UnavailableError(KubeFoxError, ConnectionError):
    """Nothing is running that could handle the event (e.g. no live instance)."""

    code = 15
    name = "Unavailable"
    default_message = "unavailable"
    grpc_code = 14
    http_status = HTTPStatus.SERVICE_UNAVAILABLE


class ConflictError(KubeFoxError):
    """A write lost a race: the resource changed since it was read, or already exists."""

    code = 16
    name = "Conflict"
    default_message = "conflict"
    grpc_code = 10  # Aborted
    http_status = HTTPStatus.CONFLICT
