"""The lean span of a platform hop, and its wire form between a component and the platform.

Every hop of a sampled request (httpsrv, the broker, a component's handler,
each call to a dependency) records a :class:`HopSpan`: a mutable msgspec
struct holding exactly what OTLP keeps of a span (ids, name, kind, times,
status, attributes, events), with raw id bytes (``random.getrandbits``, as the
SDK's id generator) and attributes as a plain dict. Nothing is converted while the request runs: a
batch of spans is encoded once, by :mod:`kubefox.telemetry.export`, as
one JSON chunk for the telemetry store (:mod:`kubefox.telemetry._chunks`;
posted as msgpack to :data:`PACKED_PATH` by a component), or as OTLP for an
external collector.

*Why not the OpenTelemetry SDK's span:* measured on this machine, starting and
ending an SDK span with a hop's eight attributes costs 19.5 µs before any
export (sampler, context, attribute validation and copies, the batch
processor's queue), and encoding it as OTLP protobuf another 37.5 µs (plus
the HTTP request and the receiver's decoding); a :class:`HopSpan` costs
1.6 µs and packing it 1.4 µs. See ``docs/benchmarks.md``. What a user sees
stays OpenTelemetry: the W3C trace context, OTLP to a collector, and the SDK
for user code.
"""

from __future__ import annotations

import dataclasses
import random
import time
import traceback
from collections.abc import Mapping
from typing import Any

import msgspec

from kubefox.core.events import SpanContext
from kubefox.telemetry import attributes as attr
from kubefox.telemetry.records import StatusCode

#: The W3C ``sampled`` trace flag.
SAMPLED = 0x01
#: Where a component posts its packed spans on the platform's receiver.
PACKED_PATH = "/v1/kubefox/spans"
#: The media type of a packed batch (a chunk, see :func:`kubefox.telemetry._chunks.pack`).
PACKED_MEDIA_TYPE = "application/vnd.kubefox.spans+msgpack"

_getrandbits = random.getrandbits


class _IdSource:
    """Trace and span ids as the OpenTelemetry SDK makes them: ``random.getrandbits``.

    The SDK's ``RandomIdGenerator`` does the same: ids must be unique, not
    secret, and the ``random`` module's generator is seeded from OS randomness
    and reseeded in a forked child. One call is a fraction of a microsecond,
    where a lock around a pool of ``os.urandom`` bytes cost two.
    """

    __slots__ = ()

    @staticmethod
    def take(size: int) -> bytes:
        """``size`` random bytes, never all zero (W3C forbids zero ids)."""
        while True:
            value = _getrandbits(size * 8)
            if value:
                return value.to_bytes(size, "big")


ids = _IdSource()


@dataclasses.dataclass(frozen=True, slots=True)
class SharedSet:
    """One set of :data:`shared_attributes`: its index (-1 when the table was full), its values."""

    index: int
    values: dict[str, Any]

    def onto(self, attributes: dict[str, Any]) -> int:
        """The index a span with ``attributes`` names; with none, the values go into them."""
        if self.index < 0:
            attributes.update(self.values)
        return self.index


class SharedAttributes:
    """Attribute sets many spans of a process have in common, each kept once, by index.

    The spans of one hop differ in little but their event ids: the context,
    the target, the route are the same for every event of a kind. A span
    names such a set by its index (:attr:`HopSpan.shared`), and a chunk of
    spans holds each set it uses once (:mod:`kubefox.telemetry._chunks`),
    so a span is about half the bytes to encode, send and store.

    Sets are only added (an index stays valid for the life of the process),
    and the same values added again get the index they already have, so a
    cache of sets that starts anew does not fill the table. At most ``limit``
    sets are kept; past it a new set gets -1 and the caller keeps the
    attributes on the span itself (:meth:`SharedSet.onto`).
    """

    __slots__ = ("_indexes", "_sets", "limit")

    def __init__(self, limit: int = 4096) -> None:
        self._sets: list[dict[str, Any]] = []
        self._indexes: dict[tuple[tuple[str, Any], ...], int] = {}
        self.limit = limit

    def share(self, values: dict[str, Any]) -> SharedSet:
        """Keep ``values`` (not to be changed after) unless kept already; the set."""
        key: tuple[tuple[str, Any], ...] | None = tuple(values.items())
        try:
            hash(key)
        except TypeError:  # an unhashable value: kept as a set of its own
            key = None
        index = None if key is None else self._indexes.get(key)
        if index is None:
            if len(self._sets) >= self.limit:
                return SharedSet(-1, values)
            index = len(self._sets)
            self._sets.append(values)
            if key is not None:
                self._indexes[key] = index
        return SharedSet(index, values)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self._sets[index]

    def __len__(self) -> int:
        return len(self._sets)


#: This process's shared attribute sets.
shared_attributes = SharedAttributes()


#: What spans of one kind have in common: their name, OTLP kind and shared set's index.
KindEntry = tuple[str, int, int]


class SpanKinds:
    """The kinds of this process's compact spans (:data:`CompactSpan`), each kept once, by index.

    Like :class:`SharedAttributes`: kinds are only added (an index stays valid
    for the life of the process, so a span waiting for its export can name
    one), the same kind added again gets its index, and past ``limit`` kinds
    :meth:`index` answers -1 (the hop then builds a full span instead).
    """

    __slots__ = ("_indexes", "_kinds", "limit")

    def __init__(self, limit: int = 16384) -> None:
        self._kinds: list[KindEntry] = []
        self._indexes: dict[KindEntry, int] = {}
        self.limit = limit

    def index(self, name: str, kind: int, shared: int) -> int:
        """The index of spans named ``name``, of OTLP ``kind``, with ``shared`` set; -1 if full.

        A kind without a shared set (-1) gets no index: its spans carry their attributes.
        """
        key = (name, kind, shared)
        index = self._indexes.get(key)
        if index is None:
            if shared < 0 or len(self._kinds) >= self.limit:
                return -1
            index = self._indexes[key] = len(self._kinds)
            self._kinds.append(key)
        return index

    def __getitem__(self, index: int) -> KindEntry:
        return self._kinds[index]

    def __len__(self) -> int:
        return len(self._kinds)


#: This process's span kinds.
span_kinds = SpanKinds()

#: A span in its compact form: ``(kind, event_id, parent_event_id, trace_id,
#: span_id, parent_span_id, start_ns, end_ns, status)``, ``kind`` an index of
#: :data:`span_kinds`, ``status`` the HTTP status (0: none; 500 and more make it
#: an error). Only primitives: a batch of them is kept flat in one list and
#: encoded in one C call (:class:`~kubefox.telemetry._chunks.HopChunkWriter`), and
#: nothing in it is tracked by the garbage collector.
CompactSpan = tuple[int, str, str, bytes, bytes, bytes, int, int, int]
#: Values per compact span in a flat list of them.
COMPACT_FIELDS = 9
#: Positions in a compact span.
(
    C_KIND,
    C_EVENT,
    C_PARENT_EVENT,
    C_TRACE,
    C_SPAN,
    C_PARENT,
    C_START,
    C_END,
    C_STATUS,
) = range(COMPACT_FIELDS)
_ERROR = int(StatusCode.ERROR)


def event_ids(event_id: str, parent_event_id: str) -> dict[str, Any]:
    """A new dict of a span's own attributes: its event's id and, if any, its parent's."""
    own: dict[str, Any] = {attr.EVENT_ID: event_id}
    if parent_event_id:
        own[attr.EVENT_PARENT_ID] = parent_event_id
    return own


def ended(  # noqa: PLR0917 - a span's fields, in order
    trace_id: bytes,
    span_id: bytes,
    parent: bytes,
    name: str,
    kind: int,
    start: int,
    end: int,
    status: int,
    own: dict[str, Any],
    shared: int,
) -> HopSpan:
    """An ended span answered with HTTP ``status`` (0: none; 500 and more make it an error).

    ``own`` (its attributes, ``shared`` aside) gets the status too.
    """
    if status:
        own[attr.HTTP_STATUS_CODE] = status
    error = _ERROR if status >= 500 else 0
    return HopSpan(trace_id, span_id, parent, name, kind, start, end, error, "", own, (), shared)


def expand_flat(flat: list[Any]) -> list[HopSpan]:
    """The spans of a flat list of this process's compact spans."""
    return [
        expand(flat[start : start + COMPACT_FIELDS])
        for start in range(0, len(flat), COMPACT_FIELDS)
    ]


def expand(span: CompactSpan | list[Any], kind: KindEntry | None = None) -> HopSpan:
    """The :class:`HopSpan` of a compact span (``kind``: its kind, when not this process's)."""
    index, event_id, parent_event_id, trace_id, span_id, parent, start, end, status = span
    name, span_kind, shared = span_kinds[index] if kind is None else kind
    own = event_ids(event_id, parent_event_id)
    return ended(trace_id, span_id, parent, name, span_kind, start, end, status, own, shared)


class HopSpan(msgspec.Struct, array_like=True, gc=False):
    """One span, as recorded on the hot path and sent as it is (msgpack, array-like).

    Ids are raw bytes (16 for the trace, 8 for spans; the parent is empty for
    a root), times Unix nanoseconds (``end_ns`` 0 until ended), ``kind`` and
    ``status_code`` OTLP's numbers; ``events`` holds ``(name, time_ns,
    attributes)`` triples; ``shared`` names a set of :data:`shared_attributes`
    the span has besides its own.

    Not tracked by the garbage collector (``gc=False``), and ``events`` is a
    tuple: thousands of spans wait in a batch for up to half a second, and
    tracked containers would make every collection walk them.
    """

    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes
    name: str
    kind: int
    start_ns: int
    end_ns: int = 0
    status_code: int = 0
    status_message: str = ""
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)
    events: tuple[tuple[str, int, dict[str, Any]], ...] = ()
    #: The set of :data:`shared_attributes` the span has too (its index), or -1.
    shared: int = -1

    def all_attributes(self) -> dict[str, Any]:
        """Every attribute of the span: its shared ones, then its own."""
        if self.shared < 0:
            return self.attributes
        return {**shared_attributes[self.shared], **self.attributes}

    def set_attribute(self, key: str, value: Any) -> None:
        """Set one attribute."""
        self.attributes[key] = value

    def set_attributes(self, values: Mapping[str, Any]) -> None:
        """Set several attributes."""
        self.attributes.update(values)

    def record_exception(self, error: BaseException) -> None:
        """An ``exception`` event with OpenTelemetry's semantic attributes."""
        kind = type(error)
        self.events = (
            *self.events,
            (
                "exception",
                time.time_ns(),
                {
                    "exception.type": f"{kind.__module__}.{kind.__qualname__}",
                    "exception.message": str(error),
                    "exception.stacktrace": "".join(traceback.format_exception(error)),
                },
            ),
        )

    def set_status(self, code: int, message: str = "") -> None:
        """End the span as ``code`` (:class:`~kubefox.telemetry.records.StatusCode`)."""
        self.status_code = int(code)
        self.status_message = message

    @property
    def context(self) -> SpanContext:
        """This span's trace context, sampled, to carry in an event or a ``traceparent``."""
        return SpanContext(trace_id=self.trace_id, span_id=self.span_id, flags=SAMPLED)
