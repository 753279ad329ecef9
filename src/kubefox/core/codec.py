"""The wire form of an :class:`Event`: compact msgpack bytes, size-limited and validated.

Upstream sends protobuf; we send msgpack through msgspec, which decodes straight
into the ``Event`` struct and is the cheapest codec available to Python. Every
byte that arrives is untrusted, so :func:`decode` turns every failure into
:class:`InvalidError` or :class:`ContentTooLargeError` and checks that
``params`` and ``values`` hold only valid values (:mod:`kubefox.core.values`):
nothing malformed gets past this module, and nothing else needs to catch a
msgspec exception. :func:`encode` checks the same on the way out, so a bad value
fails at the sender, which can say why, rather than at the receiver, which
cannot even tell whom to answer.

Errors cross the wire as upstream's ``io.kubefox.error`` RESPONSE events whose
content is the JSON document of :meth:`KubeFoxError.to_wire`.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from kubefox.core.errors import ContentTooLargeError, InvalidError, KubeFoxError, from_wire
from kubefox.core.events import CONTENT_TYPE_JSON, TYPE_ERROR, Component, Event, MatchedEvent
from kubefox.core.values import check_values

_T = TypeVar("_T")

#: Largest encoded event accepted by default: 5 MiB, upstream's default.
DEFAULT_MAX_EVENT_SIZE = 5 * 1024 * 1024
# Above this size an event is decoded with the garbage collector paused: millions
# of tiny containers (5 MiB of ``[[], [], ...]``) otherwise trigger collection
# after collection, and decoding took seconds instead of half of one.
_GC_PAUSED_ABOVE = 64 * 1024

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Event)
_matched_decoder = msgspec.msgpack.Decoder(MatchedEvent)
# Error details are free-form; render anything JSON cannot hold as text.
_json_encoder = msgspec.json.Encoder(enc_hook=str)
_json_decoder = msgspec.json.Decoder(dict[str, Any])


def _too_large(size: int, max_size: int) -> ContentTooLargeError:
    return ContentTooLargeError(
        f"event is {size} bytes, the limit is {max_size} bytes", size=size, limit=max_size
    )


def _check_values(event: Event) -> None:
    # Most events carry no params, and many no values: skip the call then.
    if event.params:
        check_values(event.params, path="params")
    if event.values:
        check_values(event.values, path="values")


def encode(event: Event, *, max_size: int = DEFAULT_MAX_EVENT_SIZE, trusted: bool = False) -> bytes:
    """The wire bytes of ``event``.

    An event of exactly ``max_size`` bytes is accepted (upstream rejects it).
    ``trusted=True`` skips checking params and values: for events whose every
    value the caller built itself or decoded (and so checked) from the wire.
    Receivers check again whatever they receive, so this only moves where a
    bad value would be caught; it never lets one through.

    Raises:
        InvalidError: if a param or value is not a valid value, or a field holds
            something msgpack cannot carry (an integer beyond 64 bits).
        ContentTooLargeError: if the encoded event is larger than ``max_size``.
    """
    if not trusted:
        _check_values(event)
    try:
        data = _encoder.encode(event)
    except (msgspec.EncodeError, TypeError, OverflowError) as exc:
        raise InvalidError(f"event cannot be encoded: {exc}") from exc
    if len(data) > max_size:
        raise _too_large(len(data), max_size)
    return data


def decode(data: bytes, *, max_size: int = DEFAULT_MAX_EVENT_SIZE) -> Event:
    """The event ``data`` holds, fully validated.

    Fields missing from ``data`` take the ``Event`` defaults, as protobuf does
    (so a missing id or create time is freshly generated).

    Raises:
        ContentTooLargeError: if ``data`` is larger than ``max_size``.
        InvalidError: if ``data`` is not an encoded event, a field has the wrong
            type, or a param or value is not a valid value; the cause says which.
    """
    event = _decode_with(_decoder, data, max_size)
    _check_values(event)
    return event


def encode_matched(
    matched: MatchedEvent, *, max_size: int = DEFAULT_MAX_EVENT_SIZE, trusted: bool = False
) -> bytes:
    """The wire bytes of what a component receives: event, route id and env.

    Raises the same errors as :func:`encode`; env values are checked too,
    unless ``trusted`` (as for :func:`encode`).
    """
    if not trusted:
        _check_values(matched.event)
        if matched.env:
            check_values(matched.env, path="env")
    try:
        data = _encoder.encode(matched)
    except (msgspec.EncodeError, TypeError, OverflowError) as exc:
        raise InvalidError(f"event cannot be encoded: {exc}") from exc
    if len(data) > max_size:
        raise _too_large(len(data), max_size)
    return data


def decode_matched(data: bytes, *, max_size: int = DEFAULT_MAX_EVENT_SIZE) -> MatchedEvent:
    """The :class:`MatchedEvent` ``data`` holds, validated like :func:`decode`."""
    matched = _decode_with(_matched_decoder, data, max_size)
    _check_values(matched.event)
    if matched.env:
        check_values(matched.env, path="env")
    return matched


def _decode_with(decoder: msgspec.msgpack.Decoder[_T], data: bytes, max_size: int) -> _T:
    if len(data) > max_size:
        raise _too_large(len(data), max_size)
    collecting = len(data) > _GC_PAUSED_ABOVE and gc.isenabled()
    try:
        if collecting:
            gc.disable()
        return decoder.decode(data)
    except msgspec.DecodeError as exc:  # ValidationError is a subclass
        raise InvalidError(f"malformed event: {exc}") from exc
    except UnicodeDecodeError as exc:  # msgspec lets invalid UTF-8 in a string through as is
        raise InvalidError(f"malformed event: {exc}") from exc
    except RecursionError as exc:  # msgspec's own nesting guard, not a stack overflow
        raise InvalidError("malformed event: nested too deeply") from exc
    finally:
        if collecting:
            gc.enable()


def _error_content(error: KubeFoxError) -> bytes:
    wire = error.to_wire()
    try:
        return _json_encoder.encode(wire)
    except (msgspec.EncodeError, TypeError, ValueError, OverflowError, RecursionError):
        # Details are best effort; the code, message and cause always get through.
        wire.pop("details", None)
        return _json_encoder.encode(wire)


def error_event(request: Event, error: KubeFoxError, *, source: Component) -> Event:
    """The ``io.kubefox.error`` RESPONSE telling ``request``'s sender that it failed.

    The content is ``error``'s wire document as JSON; details that JSON cannot
    hold are rendered as text, or dropped if even that fails.
    """
    return request.reply(
        source=source,
        type=TYPE_ERROR,
        content=_error_content(error),
        content_type=CONTENT_TYPE_JSON,
    )


def error_from_event(event: Event) -> KubeFoxError:
    """The error an ``io.kubefox.error`` event carries; never raises.

    Unknown codes degrade to the root :class:`KubeFoxError` (see
    :func:`~kubefox.core.errors.from_wire`), and so does content that is not an
    error document, with a cause saying what was wrong.
    """
    try:
        payload: Mapping[str, Any] = _json_decoder.decode(event.content)
    except msgspec.DecodeError as exc:
        return KubeFoxError(f"malformed error event: {exc}")
    except RecursionError:
        return KubeFoxError("malformed error event: nested too deeply")
    return from_wire(payload)
