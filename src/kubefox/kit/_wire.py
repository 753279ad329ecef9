"""The wire form of a :class:`MatchedEvent`, what a component receives on its subject.

:mod:`kubefox.core.codec` owns the ``Event`` wire form; until it grows the
matched-event pair, the Kit decodes (and tests encode) the envelope here with
the same rules: msgpack through msgspec, a hard size limit, and every param,
value and env value checked, so nothing malformed reaches a handler.
"""

from __future__ import annotations

import msgspec

from kubefox.core.errors import ContentTooLargeError, InvalidError
from kubefox.core.events import MatchedEvent
from kubefox.core.values import check_value

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(MatchedEvent)


def _check(matched: MatchedEvent) -> None:
    event = matched.event
    for where, mapping in (
        ("params", event.params),
        ("values", event.values),
        ("env", matched.env),
    ):
        for key, value in mapping.items():
            if type(value) is not str:  # strings are the common case and always valid
                check_value(value, path=f"{where}.{key}")


def encode_matched(matched: MatchedEvent, *, max_size: int) -> bytes:
    """The wire bytes of ``matched``.

    Raises:
        InvalidError: a param, value or env value is not a valid value.
        ContentTooLargeError: the encoded envelope is larger than ``max_size``.
    """
    _check(matched)
    try:
        data = _encoder.encode(matched)
    except (msgspec.EncodeError, TypeError, OverflowError) as exc:
        raise InvalidError(f"matched event cannot be encoded: {exc}") from exc
    if len(data) > max_size:
        raise ContentTooLargeError(
            f"event is {len(data)} bytes, the limit is {max_size} bytes",
            size=len(data),
            limit=max_size,
        )
    return data


def decode_matched(data: bytes, *, max_size: int) -> MatchedEvent:
    """The matched event ``data`` holds, fully validated.

    Raises:
        ContentTooLargeError: ``data`` is larger than ``max_size``.
        InvalidError: ``data`` is not an encoded matched event, or holds an invalid value.
    """
    if len(data) > max_size:
        raise ContentTooLargeError(
            f"event is {len(data)} bytes, the limit is {max_size} bytes",
            size=len(data),
            limit=max_size,
        )
    try:
        matched = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise InvalidError(f"malformed matched event: {exc}") from exc
    except RecursionError as exc:
        raise InvalidError("malformed matched event: nested too deeply") from exc
    _check(matched)
    return matched
