"""What a recording is and what it holds: its spec, and one captured exchange per request.

Both are msgspec structs encoded as camelCase JSON (bodies as base64), the
form the API serves and JetStream stores. An exchange is built by
:func:`capture` from what httpsrv saw and answered, with credentials removed
*before* anything leaves httpsrv: the ``Authorization``, ``Cookie``,
``Proxy-Authorization`` and ``Set-Cookie`` headers (and a few API-key headers)
are dropped and only their names are kept, in ``redacted``. Bodies over
:data:`MAX_BODY` are cut and flagged, so one exchange always fits in one NATS
message.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from kubefox.core.errors import InvalidError
from kubefox.core.events import EventContext

#: Headers never stored (lower case): credentials of the client, or of the answer.
REDACTED_HEADERS = frozenset(
    {
        "authorization",
        "cookie",
        "proxy-authorization",
        "set-cookie",
        "x-api-key",
        "x-auth-token",
    }
)
#: Largest request or response body kept whole; a longer one is cut and ``truncated`` set.
MAX_BODY = 256 * 1024
#: Default bounds of one recording.
DEFAULT_MAX_REQUESTS = 1000
DEFAULT_MAX_BYTES = 16 * 1024 * 1024

_ID_SAFE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
_MAX_ID = 100


class RecordingState(enum.StrEnum):
    """Where a recording is in its life."""

    RECORDING = "Recording"
    STOPPED = "Stopped"  # by a user
    COMPLETE = "Complete"  # a bound was reached


class Recording(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One recording: what it records (a virtual environment, maybe one deployment) and bounds."""

    id: str
    virtual_environment: str
    app_deployment: str = ""
    max_requests: int = DEFAULT_MAX_REQUESTS
    max_bytes: int = DEFAULT_MAX_BYTES
    state: RecordingState = RecordingState.RECORDING
    start_time: str = ""
    stop_time: str = ""
    #: Filled in when read back: how many exchanges are stored.
    requests: int = 0

    @property
    def active(self) -> bool:
        """Whether requests are still being recorded."""
        return self.state is RecordingState.RECORDING

    def matches(self, virtual_environment: str, app_deployment: str) -> bool:
        """Whether a request answered in this context belongs to the recording."""
        return virtual_environment == self.virtual_environment and (
            not self.app_deployment or app_deployment == self.app_deployment
        )

    def stopped(self, state: RecordingState) -> Recording:
        """This recording ended now, as ``state``."""
        return msgspec.structs.replace(self, state=state, stop_time=now_iso())


class RecordedRequest(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """The request as the client sent it, minus the redacted headers."""

    method: str
    path: str
    query: str = ""
    headers: list[tuple[str, str]] = []
    body: bytes = b""


class RecordedResponse(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """The answer as the client received it, minus the redacted headers."""

    status: int
    headers: list[tuple[str, str]] = []
    body: bytes = b""


class Exchange(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    """One genesis request and its response, with the context it was served in."""

    recording: str
    event_id: str
    time: str
    platform: str = ""
    virtual_environment: str = ""
    app_deployment: str = ""
    release_manifest: str = ""
    request: RecordedRequest
    response: RecordedResponse
    redacted: list[str] = []
    truncated: bool = False


def now_iso() -> str:
    """The current UTC time, ISO 8601 to the millisecond."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def new_recording_id(virtual_environment: str) -> str:
    """``<ve>-<yyyymmdd>-<hhmmss>-<4 hex>``: readable, sortable by start, safe as a NATS token."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{virtual_environment}-{stamp}-{secrets.token_hex(2)}"


def check_recording_id(value: str) -> str:
    """``value`` if it can name a recording (lower-case letters, digits, ``-``); else raise.

    Raises:
        InvalidError: the id could alter a subject or a key.
    """
    if not value or len(value) > _MAX_ID or not set(value) <= _ID_SAFE:
        raise InvalidError(
            f'"{value[:_MAX_ID]}" is not a recording id (lower-case letters, digits and -)',
            id=value[:_MAX_ID],
        )
    return value


def _headers(raw: Iterable[tuple[bytes, bytes]], redacted: set[str]) -> list[tuple[str, str]]:
    kept: list[tuple[str, str]] = []
    for raw_name, raw_value in raw:
        name = raw_name.decode("latin-1").lower()
        if name in REDACTED_HEADERS:
            redacted.add(name)
            continue
        kept.append((name, raw_value.decode("latin-1")))
    return kept


def _cut(body: bytes) -> tuple[bytes, bool]:
    return (body[:MAX_BODY], True) if len(body) > MAX_BODY else (body, False)


def capture(
    *,
    recording: str,
    event_id: str,
    scope: Mapping[str, Any],
    body: bytes,
    status: int,
    response_headers: Iterable[tuple[bytes, bytes]],
    response_body: bytes,
    context: EventContext,
) -> Exchange:
    """An :class:`Exchange` of an ASGI request and the answer httpsrv wrote, redacted.

    ``context`` is the event context the request was served in (platform,
    virtual environment, app deployment, release manifest).
    """
    redacted: set[str] = set()
    request_body, cut_request = _cut(body)
    answer_body, cut_answer = _cut(response_body)
    query: bytes = scope.get("query_string", b"")
    return Exchange(
        recording=recording,
        event_id=event_id,
        time=now_iso(),
        platform=context.platform,
        virtual_environment=context.virtual_environment,
        app_deployment=context.app_deployment,
        release_manifest=context.release_manifest,
        request=RecordedRequest(
            method=scope["method"],
            path=scope.get("raw_path", scope["path"].encode()).decode("latin-1"),
            query=query.decode("latin-1"),
            headers=_headers(scope["headers"], redacted),
            body=request_body,
        ),
        response=RecordedResponse(
            status=status, headers=_headers(response_headers, redacted), body=answer_body
        ),
        redacted=sorted(redacted),
        truncated=cut_request or cut_answer,
    )


_ENCODER = msgspec.json.Encoder()


def encode(value: Recording | Exchange) -> bytes:
    """JSON bytes of a recording or an exchange."""
    return _ENCODER.encode(value)


def to_builtins(value: Recording | Exchange) -> Any:
    """JSON-ready builtins of a recording or an exchange (bodies as base64)."""
    return msgspec.to_builtins(value)


def decode_recording(data: bytes) -> Recording:
    """The recording in ``data``.

    Raises:
        InvalidError: ``data`` is not one.
    """
    try:
        return msgspec.json.decode(data, type=Recording)
    except msgspec.DecodeError as exc:
        raise InvalidError(f"not a recording: {exc}") from exc


def decode_exchange(data: bytes) -> Exchange:
    """The exchange in ``data``.

    Raises:
        InvalidError: ``data`` is not one.
    """
    try:
        return msgspec.json.decode(data, type=Exchange)
    except msgspec.DecodeError as exc:
        raise InvalidError(f"not a recorded exchange: {exc}") from exc


def exchange_from_builtins(value: Any) -> Exchange:
    """The exchange in a JSON value (as the API serves it).

    Raises:
        InvalidError: ``value`` is not one.
    """
    try:
        return msgspec.convert(value, type=Exchange)
    except msgspec.ValidationError as exc:
        raise InvalidError(f"not a recorded exchange: {exc}") from exc


def recording_from_builtins(value: Any) -> Recording:
    """The recording in a JSON value (as the API serves it).

    Raises:
        InvalidError: ``value`` is not one.
    """
    try:
        return msgspec.convert(value, type=Recording)
    except msgspec.ValidationError as exc:
        raise InvalidError(f"not a recording: {exc}") from exc
