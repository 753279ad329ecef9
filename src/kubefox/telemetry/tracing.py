"""Spans of one hop: the sampling decision, the event's trace context, the attributes.

Every hop of a request (httpsrv, the broker, a component's handler and each
of its calls) starts its span through a :class:`HopTracer`. The decision
whether to record is taken first, so an unsampled request builds no span
object, no context and no attribute dict:

* a hop with a parent follows the parent's sampled flag (W3C ``traceparent``
  on HTTP, the event's ``parent_span`` inside the platform);
* ``force`` (``kf-sample=true``) records whatever the parent says;
* only a hop allowed to start a trace (httpsrv) samples a new one, at the
  platform's ratio.

A recorded hop draws its span's context (:meth:`HopTracer.child`) and, once
ended, hands on what the span is made of. The hops whose spans have a kind
(the broker, a component's handler and its calls) hand a
:data:`~kubefox.telemetry.spans.CompactSpan` (the kind's index and
primitives) to :meth:`HopTracer.hand_on`, through :meth:`HopAttributes.end`; a
:class:`~kubefox.telemetry.export.SpanBatcher` keeps it flat and encodes it
as it is, readers expand it. httpsrv, whose spans are named by their path,
hands a :data:`LazySpan` to :meth:`HopTracer.finish`, built into a
:class:`~kubefox.telemetry.spans.HopSpan` when exported. Any other sink
(one with only ``add(span)``) gets spans built at once;
:meth:`HopTracer.start` and :meth:`HopTracer.end` make one eagerly. The
OpenTelemetry SDK is not on this path (see :mod:`kubefox.telemetry.spans`
for why). Across processes the trace context
travels in :class:`kubefox.core.events.SpanContext` (raw trace and span id
bytes and the W3C flags), on HTTP as ``traceparent``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, Protocol

from kubefox.core.events import Category, Component, Event, EventContext, SpanContext
from kubefox.telemetry import attributes as attr
from kubefox.telemetry.records import SpanKind, StatusCode
from kubefox.telemetry.spans import (
    SAMPLED,
    CompactSpan,
    HopSpan,
    SharedSet,
    ended,
    event_ids,
    expand,
    ids,
    shared_attributes,
    span_kinds,
)

__all__ = [
    "SAMPLED",
    "HopAttributes",
    "HopSpan",
    "HopTracer",
    "KindKey",
    "LazySpan",
    "SpanParts",
    "SpanSink",
    "dependency_span",
    "end_span",
    "ended_span",
    "event_attributes",
    "event_span",
    "format_traceparent",
    "is_sampled",
    "log_ids",
    "parse_traceparent",
]

_HEX = frozenset("0123456789abcdef")
_getrandbits = random.getrandbits
_KINDS = {
    "internal": int(SpanKind.INTERNAL),
    "server": int(SpanKind.SERVER),
    "client": int(SpanKind.CLIENT),
    "producer": int(SpanKind.PRODUCER),
    "consumer": int(SpanKind.CONSUMER),
}
_ERROR = int(StatusCode.ERROR)
# ``Category.name`` is a descriptor call on the enum; a dict lookup is a third of it.
_CATEGORY_NAMES = {category: category.name for category in Category}


class SpanSink(Protocol):
    """Takes ended spans (a :class:`~kubefox.telemetry.export.SpanBatcher`, a test's list)."""

    def add(self, span: HopSpan) -> None:
        """Keep or send ``span``; called on the hot path, must not block."""


def is_sampled(span: SpanContext | None) -> bool:
    """Whether ``span`` (an event's ``parent_span``) asks its children to record."""
    return span is not None and bool(span.flags & SAMPLED) and len(span.trace_id) == 16


def parse_traceparent(value: str) -> SpanContext | None:
    """The W3C ``traceparent`` header (version 00 form) as a span context; ``None`` if malformed."""
    parts = value.strip().lower().split("-")
    if len(parts) < 4 or len(parts[0]) != 2 or parts[0] == "ff":
        return None
    _, trace_hex, span_hex, flags_hex = parts[:4]
    if (
        len(trace_hex) != 32
        or len(span_hex) != 16
        or len(flags_hex) != 2
        or not _HEX.issuperset(trace_hex + span_hex + flags_hex)
        or trace_hex == "0" * 32
        or span_hex == "0" * 16
    ):
        return None
    return SpanContext(
        trace_id=bytes.fromhex(trace_hex), span_id=bytes.fromhex(span_hex), flags=int(flags_hex, 16)
    )


def format_traceparent(span: SpanContext) -> str:
    """``00-<trace id>-<span id>-<flags>``: the W3C header of ``span``."""
    return f"00-{span.trace_id.hex()}-{span.span_id.hex()}-{span.flags & 0xFF:02x}"


def event_span(span: HopSpan) -> SpanContext:
    """The trace context to put in an event's ``parent_span``: ``span``'s own."""
    return span.context


def log_ids(span: SpanContext | None) -> dict[str, str]:
    """``trace_id`` and ``span_id`` (hex) to bind to a logger; empty without a span."""
    if span is None or not span.trace_id:
        return {}
    return {"trace_id": span.trace_id.hex(), "span_id": span.span_id.hex()}


def event_attributes(event: Event) -> dict[str, Any]:
    """The attributes every hop puts on its span: the event, its context and its target."""
    values: dict[str, Any] = {attr.EVENT_ID: event.id}
    if event.parent_id:
        values[attr.EVENT_PARENT_ID] = event.parent_id
    values.update(_kind_attributes(event.category, event.type, event.context, event.target))
    return values


def _kind_attributes(
    category: Category, type_: str, context: EventContext, target: Component | None
) -> dict[str, Any]:
    """What :func:`event_attributes` holds besides the event's own ids."""
    values: dict[str, Any] = {attr.EVENT_CATEGORY: _CATEGORY_NAMES[category]}
    if type_:
        values[attr.EVENT_TYPE] = type_
    if context.virtual_environment:
        values[attr.VIRTUAL_ENVIRONMENT] = context.virtual_environment
    if context.app_deployment:
        values[attr.APP_DEPLOYMENT] = context.app_deployment
    if context.release_manifest:
        values[attr.RELEASE_MANIFEST] = context.release_manifest
    if target is not None:
        if target.app:
            values[attr.APP] = target.app
        if target.name:
            values[attr.COMPONENT] = target.name
        if target.hash:
            values[attr.HASH] = target.hash
    return values


#: The kind of an event, as :class:`HopAttributes` keys it: category, type,
#: context, target and (for the broker's spans) sender.
KindKey = tuple[Category, str, EventContext, Component | None, Component | None]

#: What a span is made of after its kind, in either form (:data:`LazySpan`,
#: :data:`~kubefox.telemetry.spans.CompactSpan`): ``(event_id, parent_event_id,
#: trace_id, span_id, parent_span_id, start_ns, end_ns, status_code)``.
SpanParts = tuple[str, str, bytes, bytes, bytes, int, int, int]

#: A span ended on the hot path and built only when its batch is exported
#: (:meth:`HopTracer.finish`): ``(build, name, kind, event_id, parent_event_id,
#: trace_id, span_id, parent_span_id, start_ns, end_ns, status_code)``;
#: ``build(lazy)`` makes the :class:`HopSpan` of it. ``kind`` is what ``build``
#: makes the attributes of (a :data:`KindKey` for :meth:`HopAttributes.build`,
#: a shared set for :func:`dependency_span`); ``status_code`` is the HTTP
#: status (0: none). One flat tuple: thousands wait for each export.
LazySpan = tuple[Callable[[Any], HopSpan], str, Any, str, str, bytes, bytes, bytes, int, int, int]


class HopAttributes:
    """:func:`event_attributes` of one hop's events, what events of a kind share kept once.

    Events of one kind (:data:`KindKey`: category, type, context, target, and
    sender when asked) differ in their ids only: the rest is built the first
    time, kept in :data:`~kubefox.telemetry.spans.shared_attributes`, and
    named by its index on every span of that kind after, so a sampled hop
    builds a dict of two ids instead of a dozen attributes, and its span
    encodes in half the bytes. The span's name, when the hop names its spans
    by kind, is made once per kind too, and the kind (name, OTLP kind, shared
    set) gets an index in :data:`~kubefox.telemetry.spans.span_kinds`, which
    :meth:`end` hands on in a compact span. At most ``limit`` kinds are remembered
    (past it the table starts anew); when the process's shared table is full
    a kind's attributes go on each span itself, as before.

    Args:
        source: whether the sender's app and name are attributes too (the broker's spans).
        extra: attributes every span of the hop carries, whatever its event.
        name: the span name of every kind, or a function naming a kind; without
            it spans of every kind are named "".
        kind: the OTLP span kind of the spans :meth:`build` makes.
        limit: kinds remembered at most.
    """

    __slots__ = ("_extra", "_kinds", "_limit", "_name", "_source", "_span_kind")

    def __init__(
        self,
        *,
        source: bool = False,
        extra: dict[str, Any] | None = None,
        name: str | Callable[[KindKey], str] | None = None,
        kind: str = "internal",
        limit: int = 1024,
    ) -> None:
        self._source = source
        self._extra = dict(extra or {})
        self._name = name
        self._span_kind = _KINDS[kind]
        self._limit = limit
        # per kind: its span name, shared set and index in span_kinds (-1: none)
        self._kinds: dict[KindKey, tuple[str, SharedSet, int]] = {}

    def key(self, event: Event, target: Component | None = None) -> KindKey:
        """The kind of ``event``; ``target``, when given, stands for its own (its route's)."""
        return (
            event.category,
            event.type,
            event.context,
            event.target if target is None else target,
            event.source if self._source else None,
        )

    def of_key(
        self, key: KindKey, event_id: str, parent_id: str
    ) -> tuple[str, dict[str, Any], int]:
        """The span name of kind ``key``, a new dict of the event's own ids, the kind's index.

        With an index of -1 the dict holds the kind's attributes too (see
        :meth:`HopSpan.all_attributes <kubefox.telemetry.spans.HopSpan.all_attributes>`).
        """
        kind = self._kinds.get(key)
        if kind is None:
            kind = self._remember(key)
        own = event_ids(event_id, parent_id)
        return kind[0], own, kind[1].onto(own)

    def end(  # noqa: PLR0917 - a span's parts, in order, on the hot path
        self,
        tracer: HopTracer,
        key: KindKey,
        event_id: str,
        parent_event_id: str,
        context: SpanContext,
        parent_id: bytes,
        start_ns: int,
        status: int,
        error: BaseException | None,
    ) -> None:
        """End the span of a hop of kind ``key`` (``context`` under ``parent_id``), now.

        The span goes to ``tracer`` compact (:data:`~kubefox.telemetry.spans.CompactSpan`:
        its kind by index, the rest primitives), or, when the process has no
        room for another kind, lazy (:meth:`build`).
        """
        kind = self._kinds.get(key)
        if kind is None:
            kind = self._remember(key)
        made = (
            event_id,
            parent_event_id,
            context.trace_id,
            context.span_id,
            parent_id,
            start_ns,
            time.time_ns(),
            status,
        )
        tracer.hand_on(kind[2], self.build, "", key, made, error)

    def build(self, lazy: LazySpan) -> HopSpan:
        """The span of a :data:`LazySpan` whose kind is a :data:`KindKey`.

        An empty name is the kind's (see ``name``).
        """
        _, name, key, event_id, parent_id, *_ = lazy
        kind_name, own, shared = self.of_key(key, event_id, parent_id)
        return ended_span(lazy, name or kind_name, self._span_kind, own, shared)

    def _remember(self, key: KindKey) -> tuple[str, SharedSet, int]:
        category, type_, context, target, source = key
        values = _kind_attributes(category, type_, context, target)
        if source is not None:
            values[attr.SOURCE_NAME] = source.name
            values[attr.SOURCE_APP] = source.app
        values.update(self._extra)
        namer = self._name
        name = "" if namer is None else namer if isinstance(namer, str) else namer(key)
        shared = shared_attributes.share(values)
        kind = (name, shared, span_kinds.index(name, self._span_kind, shared.index))
        if len(self._kinds) >= self._limit:
            self._kinds.clear()
        self._kinds[key] = kind
        return kind


def dependency_span(lazy: LazySpan) -> HopSpan:
    """The client span of a call: a :data:`LazySpan` whose kind is the call's shared set.

    Its event is the request, its parent event the one whose handler called.
    """
    _, name, common, event_id, parent_id, *_ = lazy
    own = event_ids(event_id, parent_id)
    return ended_span(lazy, name, _KINDS["client"], own, common.onto(own))


def ended_span(lazy: LazySpan, name: str, kind: int, own: dict[str, Any], shared: int) -> HopSpan:
    """The span of ``lazy``: ``name``, OTLP ``kind``, ``own`` attributes plus its HTTP status.

    A status of 500 or more makes it an error; ``shared`` names its shared set (or -1).
    """
    _, _, _, _, _, trace_id, span_id, parent, start, end, status = lazy
    return ended(trace_id, span_id, parent, name, kind, start, end, status, own, shared)


def end_span(span: HopSpan, *, status_code: int = 0, error: BaseException | None = None) -> None:
    """Set the HTTP status of the answer and, if it failed, the error (the span is not sent)."""
    if status_code:
        span.attributes[attr.HTTP_STATUS_CODE] = status_code
    if error is not None:
        code = getattr(error, "code", None)
        if isinstance(code, int):
            span.attributes[attr.ERROR_CODE] = code
        span.record_exception(error)
        span.set_status(_ERROR, str(error))
    elif status_code >= 500:
        span.status_code = _ERROR
    span.end_ns = time.time_ns()


class HopTracer:
    """Starts the spans of one role, deciding first whether anything is recorded at all.

    Args:
        sink: where ended spans go (the role's :class:`~kubefox.telemetry.export.SpanBatcher`).
        ratio: the share of new traces sampled (httpsrv only starts traces).
    """

    __slots__ = ("_random", "defer", "keep_compact", "ratio", "sink")

    def __init__(self, sink: SpanSink, *, ratio: float = 1.0) -> None:
        self.sink = sink
        self._random = random.Random()  # noqa: S311 - sampling, not secrecy
        self.ratio = ratio
        #: Hands an ended :data:`LazySpan` to the sink: kept as it is by a sink
        #: that builds spans when it exports them (a SpanBatcher's ``defer``),
        #: built now for any other.
        self.defer: Callable[[LazySpan], None] = getattr(sink, "defer", None) or self._build_now
        #: Hands an ended compact span to the sink: kept as it is by a sink that
        #: takes them (a SpanBatcher's ``keep``), expanded now for any other.
        self.keep_compact: Callable[[CompactSpan], None] = (
            getattr(sink, "keep", None) or self._expand_now
        )

    def _build_now(self, lazy: LazySpan) -> None:
        self.sink.add(lazy[0](lazy))

    def _expand_now(self, span: CompactSpan) -> None:
        self.sink.add(expand(span))

    @staticmethod
    def child(parent: SpanContext | None) -> tuple[SpanContext, bytes]:
        """A new span's context under ``parent`` (sampled), and its parent's span id.

        Under a parent the span continues the parent's trace; without one, or
        under one whose trace id is malformed, it starts a trace of its own
        (no parent id). The one place a hop's span ids are drawn: every
        sampled hop calls it.
        """
        if parent is not None and len(parent.trace_id) == 16:
            trace_id, parent_id = parent.trace_id, parent.span_id
        else:
            trace_id, parent_id = ids.take(16), b""
        # What ids.take(8) gives, without its call. Zero (one draw in 2**64) is
        # no valid span id; 1 stands in for it.
        span_id = (_getrandbits(64) or 1).to_bytes(8, "big")
        return SpanContext(trace_id=trace_id, span_id=span_id, flags=SAMPLED), parent_id

    def finish(self, lazy: LazySpan, error: BaseException | None = None) -> None:
        """End a lazy span: kept to be built at export, or, with ``error``, built and ended now.

        A failed hop's span carries the error and its exception event (see :func:`end_span`).
        """
        if error is None:
            self.defer(lazy)
        else:
            self.end(lazy[0](lazy), status_code=lazy[10], error=error)

    def hand_on(  # noqa: PLR0917 - a span's form and parts, in order, on the hot path
        self,
        index: int,
        build: Callable[[LazySpan], HopSpan],
        name: str,
        kind: Any,
        made: SpanParts,
        error: BaseException | None,
    ) -> None:
        """End a hop's span: compact when its kind has an ``index`` (of span_kinds), else lazy.

        The lazy form is ``(build, name, kind, *made)`` (see :data:`LazySpan`);
        either way a failed hop's span is built now, with its error.
        """
        if index >= 0:
            compact = (index, *made)
            if error is None:
                self.keep_compact(compact)  # what keep does without an error, a call less
            else:
                self.keep(compact, error)
            return
        self.finish((build, name, kind, *made), error)

    def keep(self, span: CompactSpan, error: BaseException | None = None) -> None:
        """End a compact span: kept as it is, or, with ``error``, expanded and ended now."""
        if error is None:
            self.keep_compact(span)
        else:
            *_, status = span
            self.end(expand(span), status_code=status, error=error)

    def wants(self, parent: SpanContext | None, *, force: bool = False, root: bool = False) -> bool:
        """Whether a span under ``parent`` is recorded (cheap: no span is built)."""
        if force:
            return True
        if parent is not None:
            return bool(parent.flags & SAMPLED)
        if not root:
            return False
        ratio = self.ratio
        return ratio >= 1.0 or (ratio > 0.0 and self._random.random() < ratio)

    def start(
        self,
        name: str,
        *,
        parent: SpanContext | None,
        kind: str = "internal",
        attributes: dict[str, Any] | None = None,
        force: bool = False,
        start_time: int | None = None,
        shared: int = -1,
    ) -> HopSpan:
        """A recording span (call :meth:`wants` first); ``parent`` may be remote.

        Under a parent the span continues the parent's trace (even an unsampled
        one when forced); without one it starts a new trace. The span keeps
        the ``attributes`` dict it is given (a fresh one per span: no copy),
        and has the ``shared`` set of attributes too (see :class:`HopAttributes`).
        """
        context, parent_id = self.child(parent)
        # Positional, in field order: built in C without matching keywords.
        return HopSpan(
            context.trace_id,
            context.span_id,
            parent_id,
            name,
            _KINDS[kind],
            time.time_ns() if start_time is None else start_time,
            0,
            0,
            "",
            {} if attributes is None else attributes,
            (),
            shared,
        )

    def end(
        self, span: HopSpan, *, status_code: int = 0, error: BaseException | None = None
    ) -> None:
        """End ``span`` (see :func:`end_span`) and hand it to the sink."""
        if error is None and status_code < 500:
            # What end_span does for a success, without the call: every sampled hop ends here.
            if status_code:
                span.attributes[attr.HTTP_STATUS_CODE] = status_code
            span.end_ns = time.time_ns()
        else:
            end_span(span, status_code=status_code, error=error)
        self.sink.add(span)
