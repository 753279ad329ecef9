"""Hop spans: sampling decisions, parenting across an event, W3C traceparent, attributes."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from kubefox.core.events import (
    Category,
    Component,
    Event,
    EventContext,
    SpanContext,
)
from kubefox.telemetry import attributes as attr
from kubefox.telemetry.records import SpanKind, StatusCode
from kubefox.telemetry.spans import CompactSpan, expand, shared_attributes, span_kinds
from kubefox.telemetry.tracing import (
    HopAttributes,
    HopSpan,
    HopTracer,
    KindKey,
    event_attributes,
    event_span,
    format_traceparent,
    is_sampled,
    parse_traceparent,
)

SAMPLED = SpanContext(trace_id=bytes(range(1, 17)), span_id=bytes(range(1, 9)), flags=1)
UNSAMPLED = SpanContext(trace_id=bytes(range(1, 17)), span_id=bytes(range(1, 9)), flags=0)


class Ended:
    """A sink keeping the ended spans in order."""

    def __init__(self) -> None:
        self.spans: list[HopSpan] = []

    def add(self, span: HopSpan) -> None:
        self.spans.append(span)

    def get_finished_spans(self) -> list[HopSpan]:
        return self.spans


def _tracer(ratio: float = 1.0) -> tuple[HopTracer, Ended]:
    ended = Ended()
    return HopTracer(ended, ratio=ratio), ended


@pytest.mark.parametrize(
    ("parent", "force", "root", "ratio", "wanted"),
    [
        (SAMPLED, False, False, 0.0, True),
        (UNSAMPLED, False, False, 1.0, False),
        (UNSAMPLED, True, False, 0.0, True),
        (None, False, False, 1.0, False),
        (None, False, True, 1.0, True),
        (None, False, True, 0.0, False),
        (None, True, True, 0.0, True),
    ],
)
def test_wants_follows_parent_force_and_ratio(
    parent: SpanContext | None, force: bool, root: bool, ratio: float, wanted: bool
) -> None:
    """A parent's flag decides, kf-sample forces, only a root hop samples new traces by ratio."""
    tracer, _ = _tracer(ratio)
    assert tracer.wants(parent, force=force, root=root) is wanted


def test_a_span_under_an_event_parent_continues_its_trace() -> None:
    """A hop's span has the event's parent span as parent and the same trace id."""
    tracer, exporter = _tracer()
    span = tracer.start("hop", parent=SAMPLED, kind="server", attributes={"a": 1})
    carried = event_span(span)
    tracer.end(span, status_code=200)
    (finished,) = exporter.get_finished_spans()
    assert finished.parent_span_id == SAMPLED.span_id
    assert finished.trace_id == SAMPLED.trace_id
    assert finished.kind == SpanKind.SERVER
    assert carried.trace_id == SAMPLED.trace_id
    assert carried.span_id == finished.span_id
    assert len(finished.span_id) == 8
    assert finished.span_id != SAMPLED.span_id
    assert is_sampled(carried)
    assert finished.attributes == {"a": 1, attr.HTTP_STATUS_CODE: 200}
    assert 0 < finished.start_ns <= finished.end_ns


def test_a_forced_span_is_recorded_under_an_unsampled_parent_and_at_ratio_zero() -> None:
    """kf-sample=true records the span even when the parent and the ratio say no."""
    tracer, exporter = _tracer(0.0)
    tracer.end(tracer.start("forced", parent=UNSAMPLED, force=True))
    tracer.end(tracer.start("root", parent=None, force=True))
    forced, root = exporter.get_finished_spans()
    assert [forced.name, root.name] == ["forced", "root"]
    assert forced.trace_id == UNSAMPLED.trace_id  # kf-sample keeps the caller's trace
    assert root.parent_span_id == b""
    assert len(root.trace_id) == 16
    assert root.trace_id != forced.trace_id


def test_new_ids_are_random_and_never_zero() -> None:
    """Ids come from OS randomness in batches: many spans, no repeated or all-zero id."""
    tracer, ended = _tracer()
    for _ in range(5000):
        tracer.end(tracer.start("root", parent=None))
    trace_ids = {span.trace_id for span in ended.spans}
    span_ids = {span.span_id for span in ended.spans}
    assert len(trace_ids) == len(span_ids) == 5000
    assert bytes(16) not in trace_ids
    assert bytes(8) not in span_ids


def test_a_failed_hop_records_the_error() -> None:
    """The error's code, an exception event and status ERROR end up on the span."""
    from kubefox.core.errors import NotFoundError

    tracer, exporter = _tracer()
    tracer.end(tracer.start("hop", parent=SAMPLED), status_code=404, error=NotFoundError("gone"))
    (finished,) = exporter.get_finished_spans()
    assert finished.status_code == StatusCode.ERROR
    assert finished.status_message == str(NotFoundError("gone"))
    assert finished.attributes[attr.ERROR_CODE] == NotFoundError.code
    assert [name for name, _, _ in finished.events] == ["exception"]
    assert finished.events[0][2]["exception.message"] == str(NotFoundError("gone"))


def test_traceparent_round_trips_and_rejects_malformed_headers() -> None:
    """W3C version 00 parses; bad lengths, zero ids, version ff and non-hex do not."""
    header = "00-0102030405060708090a0b0c0d0e0f10-0102030405060708-01"
    parsed = parse_traceparent(header)
    assert parsed == SAMPLED
    assert format_traceparent(SAMPLED) == header
    for bad in (
        "",
        "00-0102-0102030405060708-01",
        "ff-0102030405060708090a0b0c0d0e0f10-0102030405060708-01",
        "00-00000000000000000000000000000000-0102030405060708-01",
        "00-0102030405060708090a0b0c0d0e0f10-0000000000000000-01",
        "00-0102030405060708090a0b0c0d0e0f1g-0102030405060708-01",
    ):
        assert parse_traceparent(bad) is None, bad


def test_event_attributes_name_the_event_context_and_target() -> None:
    """App, component, hash, deployment, VE and event id use the store's attribute names."""
    event = Event(
        id="e1",
        parent_id="p1",
        category=Category.REQUEST,
        context=EventContext(platform="demo", virtual_environment="qa", app_deployment="d"),
        target=Component(app="hello", name="backend", hash="abc"),
    )
    assert event_attributes(event) == {
        attr.EVENT_ID: "e1",
        attr.EVENT_CATEGORY: "REQUEST",
        attr.EVENT_PARENT_ID: "p1",
        attr.VIRTUAL_ENVIRONMENT: "qa",
        attr.APP_DEPLOYMENT: "d",
        attr.APP: "hello",
        attr.COMPONENT: "backend",
        attr.HASH: "abc",
    }


def test_the_kit_imports_no_opentelemetry_without_telemetry_settings() -> None:
    """A component with telemetry off never loads the SDK (the idle-memory budget)."""
    code = (
        "import sys, kubefox.kit, kubefox.kit._server\n"
        "from kubefox.kit._settings import KitSettings\n"
        "s = KitSettings.from_environ({'KUBEFOX_KIT_PLATFORM': 'p', 'KUBEFOX_KIT_APP': 'a',"
        " 'KUBEFOX_KIT_NAME': 'n', 'KUBEFOX_KIT_HASH': 'h', 'KUBEFOX_KIT_NATS_URL': 'x'})\n"
        "assert not s.telemetry.enabled\n"
        "print(any(m.startswith('opentelemetry') for m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_kit_settings_read_the_telemetry_variables() -> None:
    """``KUBEFOX_KIT_TELEMETRY_*`` as the operator writes them come back as the same settings."""
    from kubefox.kit._settings import TELEMETRY_PREFIX, KitSettings
    from kubefox.telemetry import TelemetrySettings

    wanted = TelemetrySettings(sampling_ratio=0.5, embedded_endpoint="http://127.0.0.1:4318")
    environ = {
        "KUBEFOX_KIT_PLATFORM": "p",
        "KUBEFOX_KIT_APP": "a",
        "KUBEFOX_KIT_NAME": "n",
        "KUBEFOX_KIT_HASH": "h",
        "KUBEFOX_KIT_NATS_URL": "nats://x",
        **wanted.to_environ(TELEMETRY_PREFIX),
    }
    assert KitSettings.from_environ(environ).telemetry == wanted


def _event(event_id: str, *, ve: str = "qa") -> Event:
    return Event(
        id=event_id,
        parent_id=f"parent-of-{event_id}",
        category=Category.REQUEST,
        context=EventContext(platform="demo", virtual_environment=ve, app_deployment="d"),
        source=Component(app="hello", name="frontend"),
        target=Component(app="hello", name="backend", hash="abc"),
    )


def _of(
    hop_attributes: HopAttributes, event: Event, target: Component | None = None
) -> tuple[str, dict[str, Any], int]:
    return hop_attributes.of_key(hop_attributes.key(event, target), event.id, event.parent_id)


def test_events_of_a_kind_share_everything_but_their_ids() -> None:
    """A span gets its event's ids; the rest is one shared set per kind, the same for all."""
    hop_attributes = HopAttributes(source=True, extra={attr.ROUTE_ID: 3})

    _, first, first_set = _of(hop_attributes, _event("e1"))
    _, second, second_set = _of(hop_attributes, _event("e2"))
    *_, other_set = _of(hop_attributes, _event("e3", ve="prod"))

    assert first == {attr.EVENT_ID: "e1", attr.EVENT_PARENT_ID: "parent-of-e1"}
    assert second == {attr.EVENT_ID: "e2", attr.EVENT_PARENT_ID: "parent-of-e2"}
    assert first_set == second_set >= 0
    assert other_set not in (first_set, -1)
    assert shared_attributes[first_set] == {
        attr.EVENT_CATEGORY: "REQUEST",
        attr.VIRTUAL_ENVIRONMENT: "qa",
        attr.APP_DEPLOYMENT: "d",
        attr.APP: "hello",
        attr.COMPONENT: "backend",
        attr.HASH: "abc",
        attr.SOURCE_NAME: "frontend",
        attr.SOURCE_APP: "hello",
        attr.ROUTE_ID: 3,
    }
    assert shared_attributes[other_set][attr.VIRTUAL_ENVIRONMENT] == "prod"


def test_a_target_given_stands_for_the_event_s_and_a_kind_is_named_once() -> None:
    """The broker's spans: the routed target's attributes, its name made once per kind."""
    names: list[str] = []

    def name(kind: KindKey) -> str:
        names.append(kind[2].virtual_environment)
        return f"Route {kind[0].name}"

    hop_attributes = HopAttributes(name=name)
    routed = Component(app="hello", name="backend", hash="def")

    first_name, _, first_set = _of(hop_attributes, _event("e1"), routed)
    again_name, _, again_set = _of(hop_attributes, _event("e2"), routed)
    *_, unrouted_set = _of(hop_attributes, _event("e3", ve="dev"))

    assert first_name == again_name == "Route REQUEST"
    assert names == ["qa", "dev"]
    assert first_set == again_set != unrouted_set
    assert shared_attributes[first_set][attr.HASH] == "def"
    assert shared_attributes[unrouted_set][attr.HASH] == "abc"
    assert _of(HopAttributes(), _event("e4"))[0] == ""


def test_a_span_of_a_shared_kind_has_all_of_event_attributes() -> None:
    """all_attributes() is what event_attributes() gives, shared set or not."""
    event = _event("e1")
    _, own, index = _of(HopAttributes(), event)
    span = _tracer()[0].start("hop", parent=SAMPLED, attributes=own, shared=index)

    assert span.all_attributes() == event_attributes(event)


def test_with_the_process_table_full_a_span_keeps_its_kind_s_attributes_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past the table's limit nothing is shared: each span carries every attribute."""
    monkeypatch.setattr(shared_attributes, "limit", len(shared_attributes))
    event = _event("e1", ve="full")

    _, own, index = _of(HopAttributes(), event)

    assert index == -1
    assert own == event_attributes(event)


def test_kinds_remembered_anew_name_the_sets_they_had() -> None:
    """A hop's cache of kinds starting anew does not add its kinds to the table again."""
    hop_attributes = HopAttributes(limit=1)  # every new kind clears the cache
    *_, qa = _of(hop_attributes, _event("e1", ve="anew-qa"))
    size = len(shared_attributes)

    *_, prod = _of(hop_attributes, _event("e2", ve="anew-prod"))
    *_, qa_again = _of(hop_attributes, _event("e3", ve="anew-qa"))

    assert qa_again == qa != prod
    assert len(shared_attributes) == size + 1


class Compact(Ended):
    """A sink taking compact spans as they are, as a SpanBatcher does."""

    def __init__(self) -> None:
        super().__init__()
        self.compact: list[CompactSpan] = []

    def keep(self, span: CompactSpan) -> None:
        self.compact.append(span)


def _end_hop(
    hop_attributes: HopAttributes, tracer: HopTracer, event: Event, error: Exception | None = None
) -> SpanContext:
    context, parent_id = tracer.child(SAMPLED)
    hop_attributes.end(
        tracer,
        hop_attributes.key(event),
        event.id,
        event.parent_id,
        context,
        parent_id,
        123,
        201 if error is None else 404,
        error,
    )
    return context


def test_a_hop_s_span_goes_compact_and_expands_to_its_kind_s_name_and_attributes() -> None:
    """A sink that keeps compact spans gets primitives; expanded, they are the whole span."""
    hop_attributes = HopAttributes(kind="server", name="GET /hello", extra={attr.ROUTE_ID: 1})
    sink = Compact()
    event = _event("e1", ve="compact")

    context = _end_hop(hop_attributes, HopTracer(sink), event)

    [kept] = sink.compact
    assert sink.spans == []
    assert all(isinstance(value, (int, str, bytes)) for value in kept)
    span = expand(kept)
    assert (span.name, span.kind, span.start_ns) == ("GET /hello", SpanKind.SERVER, 123)
    assert (span.trace_id, span.span_id, span.parent_span_id) == (
        SAMPLED.trace_id,
        context.span_id,
        SAMPLED.span_id,
    )
    assert span.end_ns >= span.start_ns
    assert span.status_code == StatusCode.UNSET
    assert span.all_attributes() == {
        **event_attributes(event),
        attr.ROUTE_ID: 1,
        attr.HTTP_STATUS_CODE: 201,
    }


def test_a_sink_without_keep_gets_a_hop_s_span_whole_and_a_failed_one_its_error() -> None:
    """Any other sink gets spans expanded at once; a failed hop's carries its exception."""
    from kubefox.core.errors import NotFoundError

    hop_attributes = HopAttributes(kind="server", name="handler")
    tracer, ended = _tracer()
    compact = Compact()

    _end_hop(hop_attributes, tracer, _event("e1", ve="whole"))
    _end_hop(hop_attributes, tracer, _event("e2", ve="whole"), NotFoundError("gone"))
    _end_hop(hop_attributes, HopTracer(compact), _event("e3", ve="whole"), NotFoundError("gone"))

    ok, failed = ended.spans
    assert ok.name == failed.name == "handler"
    assert ok.all_attributes()[attr.EVENT_ID] == "e1"
    for span in (failed, *compact.spans):
        assert span.status_code == StatusCode.ERROR
        assert span.attributes[attr.HTTP_STATUS_CODE] == 404
        assert [name for name, _, _ in span.events] == ["exception"]
    assert compact.compact == []  # a failed hop's span is built with its error, even there
    assert [span.attributes[attr.EVENT_ID] for span in compact.spans] == ["e3"]


def test_with_no_room_for_another_kind_a_hop_s_span_is_built_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past the kinds table's limit the span goes lazy, with every attribute, not compact."""
    monkeypatch.setattr(span_kinds, "limit", len(span_kinds))
    hop_attributes = HopAttributes(kind="server", name="handler")
    sink = Compact()
    tracer = HopTracer(sink)
    event = _event("e1", ve="no-room")

    _end_hop(hop_attributes, tracer, event)

    assert sink.compact == []
    [lazy] = sink.spans  # Ended has no defer: the lazy span was built at once
    assert isinstance(lazy, HopSpan)
    assert lazy.name == "handler"
    assert lazy.all_attributes() == {**event_attributes(event), attr.HTTP_STATUS_CODE: 201}


def test_a_kind_has_one_index_for_the_life_of_the_process() -> None:
    """The same name, kind and set get the same index; a kind without a set gets none."""
    shared = shared_attributes.share({"kind-test": 1}).index

    first = span_kinds.index("kind test", 2, shared)

    assert span_kinds.index("kind test", 2, shared) == first >= 0
    assert span_kinds.index("kind test", 3, shared) not in (first, -1)
    assert span_kinds[first] == ("kind test", 2, shared)
    assert span_kinds.index("kind test", 2, -1) == -1
