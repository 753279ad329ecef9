"""Event bytes from the wire: only InvalidError or ContentTooLargeError, in bounded memory and time.

Every process decodes what NATS hands it (the broker what components send,
components what the broker and httpsrv send, httpsrv what components answer),
so :func:`~kubefox.core.codec.decode` and :func:`~kubefox.core.codec.decode_matched`
are fuzzed with random bytes, valid encodings with bytes overwritten, valid
msgpack of the wrong shape, and lengths that promise more than is there.
"""

from __future__ import annotations

import contextlib
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubefox.core.codec import decode, decode_matched, encode, encode_matched
from kubefox.core.errors import ContentTooLargeError, InvalidError
from kubefox.core.events import Event, MatchedEvent
from tests.fuzz.budget import budget

pytestmark = pytest.mark.fuzz

DECODERS: list[Callable[..., object]] = [decode, decode_matched]
#: Peak memory a decode may take, as a multiple of the input (msgspec builds Python
#: objects; 5 MiB of ``[[], [], ...]`` is the worst shape found: 64 bytes per byte).
MAX_AMPLIFICATION = 80
TEXT = st.text(max_size=8)
WIRE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.floats()
    | TEXT
    | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=16,
)
KEYS = st.sampled_from([*Event.__struct_fields__, *MatchedEvent.__struct_fields__, "x", ""])
EVENTS = st.builds(
    Event,
    id=TEXT,
    type=TEXT,
    ttl=st.integers(0, 2**62),
    params=st.dictionaries(TEXT, TEXT, max_size=3),
    values=st.dictionaries(TEXT, st.one_of(TEXT, st.lists(TEXT, max_size=3)), max_size=3),
    content=st.binary(max_size=64),
)
MATCHED = st.builds(
    MatchedEvent,
    event=EVENTS,
    route_id=st.integers(-1, 100),
    env=st.dictionaries(TEXT, TEXT, max_size=3),
)


def _decodes_or_refuses(decoder: Callable[..., object], data: bytes) -> None:
    cause = "decoded"
    try:
        decoder(data, max_size=64 * 1024)
    except (InvalidError, ContentTooLargeError) as exc:
        cause = exc.cause
    assert cause  # a refusal says why


@budget(300)
@given(data=st.binary(max_size=1024))
def test_random_bytes_decode_or_are_refused(data: bytes) -> None:
    """Random bytes: an event, or InvalidError/ContentTooLargeError; nothing else."""
    for decoder in DECODERS:
        _decodes_or_refuses(decoder, data)


@budget(300)
@given(matched=MATCHED, flips=st.lists(st.tuples(st.integers(0), st.integers(0, 255)), min_size=1))
def test_corrupted_events_decode_or_are_refused(
    matched: MatchedEvent, flips: list[tuple[int, int]]
) -> None:
    """Valid encodings with bytes overwritten, cut short or extended never escape our errors."""
    for original in (encode(matched.event), encode_matched(matched)):
        data = bytearray(original)
        for index, byte in flips:
            data[index % len(data)] = byte
        for candidate in (bytes(data), bytes(data[: len(data) // 2]), bytes(data) + b"\xc1"):
            for decoder in DECODERS:
                _decodes_or_refuses(decoder, candidate)


@budget(300)
@given(fields=st.dictionaries(KEYS, WIRE, max_size=6))
def test_valid_msgpack_of_the_wrong_shape_is_refused_cleanly(fields: dict[str, Any]) -> None:
    """Well-formed msgpack maps with any fields and values never escape our errors."""
    try:
        data = msgspec.msgpack.encode(fields)
    except OverflowError:
        return  # an integer msgpack cannot carry: nothing to send
    for decoder in DECODERS:
        _decodes_or_refuses(decoder, data)
    for decoder in DECODERS:
        _decodes_or_refuses(decoder, msgspec.msgpack.encode({"event": fields, "route_id": 0}))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\xdd\xff\xff\xff\xff", id="array32 of 4G elements"),
        pytest.param(b"\xdf\xff\xff\xff\xff", id="map32 of 4G entries"),
        pytest.param(b"\xdb\xff\xff\xff\xff", id="str32 of 4 GiB"),
        pytest.param(b"\xc6\xff\xff\xff\xff", id="bin32 of 4 GiB"),
        pytest.param(b"\x81\xa6values\xdf\xff\xff\xff\xff", id="values promising 4G entries"),
        pytest.param(b"\x91" * 100_000, id="arrays nested 100,000 deep"),
        pytest.param(b"\x81\xa1a" * 30_000, id="maps nested 30,000 deep"),
    ],
)
@pytest.mark.parametrize("decoder", DECODERS, ids=["decode", "decode_matched"])
def test_lengths_that_promise_more_than_is_there_allocate_nothing(
    decoder: Callable[..., object], data: bytes
) -> None:
    """A header claiming gigabytes, or absurd nesting: refused at once, in under 1 MiB."""
    tracemalloc.start()
    try:
        with pytest.raises(InvalidError):
            decoder(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert peak < 1024 * 1024


@pytest.mark.parametrize("decoder", DECODERS, ids=["decode", "decode_matched"])
def test_an_event_over_the_limit_is_refused_before_decoding(
    decoder: Callable[..., object],
) -> None:
    """Bytes over max_size are ContentTooLargeError without looking at them."""
    data = b"\x00" * (1024 * 1024 + 1)
    tracemalloc.start()
    try:
        with pytest.raises(ContentTooLargeError):
            decoder(data, max_size=1024 * 1024)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert peak < 64 * 1024


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param({"values": {"a": [[]] * 200_000}}, id="values: a list of empty lists"),
        pytest.param({"values": {f"{i:x}": {} for i in range(50_000)}}, id="values: empty maps"),
        pytest.param({"params": {f"{i:x}": "a" for i in range(50_000)}}, id="params: short text"),
    ],
)
def test_worst_shapes_decode_in_bounded_memory_and_time(shape: dict[str, Any]) -> None:
    """The costliest shapes found stay within MAX_AMPLIFICATION x their size and a second."""
    data = msgspec.msgpack.encode(shape)
    tracemalloc.start()
    started = time.monotonic()
    try:
        with contextlib.suppress(InvalidError):
            decode(data)
        elapsed = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert peak < MAX_AMPLIFICATION * len(data)
    assert elapsed < 5.0  # tracemalloc slows it down several times
