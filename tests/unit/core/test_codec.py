"""The event wire codec: lossless round trips, the size limit, hostile bytes, error events."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubefox.core.codec import (
    DEFAULT_MAX_EVENT_SIZE,
    decode,
    encode,
    error_event,
    error_from_event,
)
from kubefox.core.errors import (
    ContentTooLargeError,
    DeadlineExceededError,
    InvalidError,
    KubeFoxError,
    NotFoundError,
    RouteNotFoundError,
    error_for_code,
)
from kubefox.core.events import (
    CONTENT_TYPE_JSON,
    TYPE_ERROR,
    TYPE_HTTP,
    Category,
    Component,
    Event,
    EventContext,
    SpanContext,
)
from kubefox.core.values import Value

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
WIRE_INT = st.integers(min_value=-(2**63), max_value=2**64 - 1)
NUMBER = WIRE_INT | st.floats(allow_nan=False, allow_infinity=False)
VALUE: st.SearchStrategy[Value] = st.one_of(
    st.text(),
    NUMBER,
    st.booleans(),
    st.none(),
    st.lists(st.text(), max_size=4),
    st.lists(NUMBER, max_size=4),
    st.dictionaries(st.text(), st.lists(st.text(), max_size=3), max_size=3),
)
VALUE_MAP = st.dictionaries(st.text(), VALUE, max_size=5)
COMPONENT = st.builds(
    Component,
    type=st.text(),
    app=st.text(),
    name=st.text(),
    hash=st.text(),
    id=st.text(),
    broker_id=st.text(),
)
SPAN = st.builds(
    SpanContext,
    trace_id=st.binary(max_size=16),
    span_id=st.binary(max_size=8),
    trace_state=st.text(),
    flags=st.integers(min_value=0, max_value=2**32 - 1),
)
CONTEXT = st.builds(
    EventContext,
    platform=st.text(),
    virtual_environment=st.text(),
    app_deployment=st.text(),
    release_manifest=st.text(),
)
EVENT = st.builds(
    Event,
    id=st.text(),
    parent_id=st.text(),
    parent_span=st.none() | SPAN,
    type=st.text(),
    category=st.sampled_from(Category),
    create_time=INT64,
    ttl=INT64,
    context=CONTEXT,
    source=COMPONENT,
    target=st.none() | COMPONENT,
    params=VALUE_MAP,
    values=VALUE_MAP,
    content_type=st.text(),
    content=st.binary(max_size=256),
)

HTTPSRV = Component(type="HTTPAdapter", name="httpsrv", hash="3baaaee", id="abc")
FRONTEND = Component(type="KubeFox", app="hello-world", name="frontend", hash="98c75bd", id="x")


def _request() -> Event:
    return Event(
        type=TYPE_HTTP,
        category=Category.REQUEST,
        ttl=60_000_000_000,
        context=EventContext(platform="dev", virtual_environment="qa", app_deployment="hw"),
        source=HTTPSRV,
        target=FRONTEND,
        values={"method": "GET", "header": {"Accept": ["*/*"]}, "statusCode": 200},
    )


def _event_of_size(size: int) -> Event:
    """An event whose encoding is exactly ``size`` bytes (content pads it out)."""
    probe = Event(id="fixed", create_time=1, content=b"x" * 100_000)
    overhead = len(encode(probe, max_size=2 * size)) - 100_000
    event = Event(id="fixed", create_time=1, content=b"x" * (size - overhead))
    assert len(encode(event, max_size=2 * size)) == size
    return event


@settings(max_examples=200)
@given(EVENT)
def test_codec_round_trip_is_lossless(event: Event) -> None:
    """decode(encode(e)) == e for every event, every field and every value form."""
    data = encode(event)

    decoded = decode(data)

    assert decoded == event


def test_codec_round_trip_keeps_number_types() -> None:
    """Integers stay integers and floats stay floats, so text renderings do not drift."""
    event = Event(values={"i": 1, "f": 1.0, "big": 2**64 - 1, "a": [1, 2.0]})

    decoded = decode(encode(event))

    assert [type(v) for v in decoded.values.values()] == [int, float, int, list]
    assert [type(v) for v in decoded.values["a"]] == [int, float]


def test_codec_event_of_exactly_max_size_is_accepted() -> None:
    """The limit is inclusive both ways (upstream wrongly rejects an event of exactly the limit)."""
    event = _event_of_size(DEFAULT_MAX_EVENT_SIZE)

    data = encode(event)

    assert len(data) == DEFAULT_MAX_EVENT_SIZE
    assert decode(data) == event


def test_codec_encode_over_max_size_is_content_too_large() -> None:
    """One byte over the limit fails with the actual size and the limit in the error."""
    event = _event_of_size(DEFAULT_MAX_EVENT_SIZE + 1)

    with pytest.raises(ContentTooLargeError) as caught:
        encode(event)

    assert caught.value.details == {"size": 5 * 1024 * 1024 + 1, "limit": 5 * 1024 * 1024}
    assert str(caught.value) == (
        "content too large: event is 5242881 bytes, the limit is 5242880 bytes"
    )


def test_codec_decode_over_max_size_is_content_too_large() -> None:
    """Bytes one over the limit are refused before any parsing."""
    data = encode(_request())

    with pytest.raises(ContentTooLargeError, match=f"event is {len(data)} bytes"):
        decode(data, max_size=len(data) - 1)


def test_codec_decode_at_custom_max_size_is_accepted() -> None:
    """A custom limit equal to the size accepts the bytes."""
    data = encode(_request())

    event = decode(data, max_size=len(data))

    assert event.values["statusCode"] == 200


def _packed(obj: Any) -> bytes:
    return msgspec.msgpack.encode(obj)


def _deeply_nested_value() -> bytes:
    head = _packed({"values": {"x": 0}})[:-1]  # drop the 0, keep the map and key headers
    return head + b"\x91" * 100_000 + b"\x00"


MALFORMED: dict[str, bytes] = {
    "empty bytes": b"",
    "reserved msgpack byte": b"\xc1",
    "random bytes": bytes(range(256)),
    "truncated event": encode(_request())[:-3],
    "trailing garbage": encode(_request()) + b"\x00",
    "array instead of map": _packed([1, 2, 3]),
    "string instead of map": _packed("event"),
    "id of the wrong type": _packed({"id": 5}),
    "unknown category": _packed({"category": 9}),
    "source not a map": _packed({"source": "frontend"}),
    "params not a map": _packed({"params": [1, 2]}),
    "content not bytes": _packed({"content": 12}),
    "invalid utf-8 in a string": b"\x81\xa4type\xa2\xff\xfe",
    "values key not a string": _packed({"values": {1: "x"}}),
    "values entry with nested object": _packed({"values": {"header": {"a": {"b": ["c"]}}}}),
    "values entry with mixed array": _packed({"values": {"x": ["a", 1]}}),
    "values entry with array of objects": _packed({"values": {"x": [{"a": 1}]}}),
    "values entry with bytes": _packed({"values": {"x": b"raw"}}),
    "values entry with extension type": _packed({"values": {"x": msgspec.msgpack.Ext(1, b"x")}}),
    "values entry with nan": _packed({"values": {"x": float("nan")}}),
    "params entry with nested object": _packed({"params": {"p": {"q": {}}}}),
    "huge declared binary length": b"\xc6\xff\xff\xff\xff",
    "huge declared string length": b"\xdb\xff\xff\xff\xff",
    "huge declared map length": b"\xdf\xff\xff\xff\xff",
    "huge declared content length": b"\x81\xa7content\xc6\xff\xff\xff\xff",
    "deeply nested value": _deeply_nested_value(),
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_codec_decode_malformed_bytes_is_invalid_with_a_cause(data: bytes) -> None:
    """Hostile or broken bytes only ever give InvalidError, and the cause says what is wrong."""
    with pytest.raises(InvalidError) as caught:
        decode(data)

    assert type(caught.value) is InvalidError
    assert caught.value.cause


def test_codec_decode_names_the_bad_value_path() -> None:
    """A bad value is reported with its place in the event."""
    data = MALFORMED["values entry with nested object"]

    with pytest.raises(InvalidError, match=r"^invalid: values\.header\.a: nested objects"):
        decode(data)


@settings(max_examples=200)
@given(st.binary(max_size=512))
def test_codec_decode_arbitrary_bytes_never_escapes_our_errors(data: bytes) -> None:
    """Random bytes decode to an Event or fail with InvalidError, never another exception."""
    try:
        result = decode(data)
    except (InvalidError, ContentTooLargeError):
        return

    assert isinstance(result, Event)


@settings(max_examples=200)
@given(EVENT, st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1))
def test_codec_decode_corrupted_events_never_escapes_our_errors(
    event: Event, flips: list[tuple[int, int]]
) -> None:
    """A valid encoding with bytes overwritten decodes to an Event or fails with InvalidError."""
    data = bytearray(encode(event))
    for index, byte in flips:
        data[index % len(data)] = byte

    try:
        result = decode(bytes(data))
    except InvalidError:
        return

    assert isinstance(result, Event)


MSGPACK_OBJECT = st.recursive(
    st.none()
    | st.booleans()
    | WIRE_INT
    | st.floats()
    | st.text(max_size=8)
    | st.binary(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
EVENT_KEYS = st.sampled_from(list(Event.__struct_fields__))


@settings(max_examples=200)
@given(st.dictionaries(EVENT_KEYS, MSGPACK_OBJECT, max_size=5))
def test_codec_decode_well_formed_but_wrong_maps_never_escapes_our_errors(
    fields: dict[str, Any],
) -> None:
    """Valid msgpack with arbitrary field contents decodes to a valid Event or InvalidError."""
    try:
        result = decode(_packed(fields))
    except InvalidError:
        return

    assert decode(encode(result)) == result


def test_codec_encode_invalid_value_fails_at_the_sender() -> None:
    """A bad value is refused while encoding, with its path, not left for the receiver."""
    event = Event(values={"header": {"a": {"b": "c"}}})

    with pytest.raises(InvalidError, match=r"values\.header\.a"):
        encode(event)


def test_codec_encode_unencodable_field_is_invalid() -> None:
    """A field msgpack cannot carry (an integer beyond 64 bits) is InvalidError."""
    event = Event(ttl=2**70)

    with pytest.raises(InvalidError, match="event cannot be encoded"):
        encode(event)


def test_error_event_is_an_error_response_to_the_request() -> None:
    """The error event answers the request: error type, RESPONSE, JSON, back to the source."""
    request = _request()

    event = error_event(request, RouteNotFoundError("GET /nope"), source=FRONTEND)

    assert (event.type, event.category) == (TYPE_ERROR, Category.RESPONSE)
    assert event.content_type == CONTENT_TYPE_JSON == "application/json; charset=UTF-8"
    assert event.parent_id == request.id
    assert (event.source, event.target) == (FRONTEND, HTTPSRV)
    assert (event.context, event.ttl) == (request.context, request.ttl)
    assert msgspec.json.decode(event.content) == {
        "code": 10,
        "grpcCode": 12,
        "httpCode": 404,
        "msg": "route not found",
        "cause": "GET /nope",
    }


@pytest.mark.parametrize("code", range(17))
def test_error_event_round_trips_every_error_through_the_wire(code: int) -> None:
    """error_from_event(decode(encode(error_event(e)))) rebuilds class, text and details."""
    error = error_for_code(code)("the cause", attempt=2)
    event = error_event(_request(), error, source=FRONTEND)

    rebuilt = error_from_event(decode(encode(event)))

    assert type(rebuilt) is type(error)
    assert str(rebuilt) == str(error)
    assert rebuilt.details == {"attempt": 2}


def test_error_event_renders_non_json_details_as_text() -> None:
    """Details JSON cannot hold are sent as their text rather than failing."""
    error = DeadlineExceededError("slow", where=Component(name="x"), at=object)

    rebuilt = error_from_event(error_event(_request(), error, source=FRONTEND))

    assert rebuilt.details["where"] == {"name": "x"}
    assert rebuilt.details["at"] == "<class 'object'>"


def test_error_event_drops_details_json_cannot_hold_at_all() -> None:
    """Details that cannot be encoded even as text are dropped; code and text still arrive."""
    loop: dict[str, Any] = {}
    loop["self"] = loop
    error = NotFoundError("gone", bad=loop)

    rebuilt = error_from_event(error_event(_request(), error, source=FRONTEND))

    assert type(rebuilt) is NotFoundError
    assert str(rebuilt) == "not found: gone"
    assert rebuilt.details == {}


@pytest.mark.parametrize(
    "content",
    [b"", b"not json", b"[1, 2]", b'"text"', b"{", b"[" * 100_000, b"\xff\xfe"],
)
def test_error_from_event_malformed_content_is_the_root_error(content: bytes) -> None:
    """Content that is not an error document becomes the root error, never an exception."""
    event = Event(type=TYPE_ERROR, content=content)

    error = error_from_event(event)

    assert type(error) is KubeFoxError
    assert error.cause.startswith("malformed error event")


def test_error_from_event_unknown_code_is_the_root_error() -> None:
    """A code from a newer peer degrades to the root class with its text kept."""
    event = Event(type=TYPE_ERROR, content=b'{"code": 99, "msg": "new thing", "cause": "why"}')

    error = error_from_event(event)

    assert type(error) is KubeFoxError
    assert str(error) == "new thing: why"


def test_error_from_event_details_named_like_arguments_are_kept() -> None:
    """Details named like constructor arguments neither crash the reader nor get lost."""
    event = Event(
        type=TYPE_ERROR,
        content=b'{"code": 7, "msg": "not found", "details": {"message": 1, "cause": 2}}',
    )

    error = error_from_event(event)

    assert type(error) is NotFoundError
    assert error.details == {"message": 1, "cause": 2}
