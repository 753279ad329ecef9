"""A sampled request in a Kit: the handler's span, its calls' spans and its log lines' ids."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, MutableMapping
from typing import Any

import msgspec
import pytest
import structlog
from structlog.testing import LogCapture

from kubefox.core import codec
from kubefox.core.codec import encode_matched
from kubefox.core.errors import UnavailableError
from kubefox.core.events import Category, Event, MatchedEvent, SpanContext
from kubefox.kit import Kit, Kontext, Response
from kubefox.kit._server import Server
from kubefox.telemetry import attributes as attr
from kubefox.telemetry import spans as spans_module
from kubefox.telemetry import tracing as tracing_module
from kubefox.telemetry.logging import add_request_ids
from kubefox.telemetry.records import SpanKind, StatusCode
from kubefox.telemetry.tracing import SAMPLED, HopSpan, HopTracer
from tests.unit.kit.fakes import CONTEXT, MAX_SIZE, FakeTransport, request_event, settings

PARENT = SpanContext(trace_id=bytes(range(1, 17)), span_id=bytes(range(1, 9)), flags=SAMPLED)
module_log = structlog.get_logger("tests.unit.kit.test_tracing")


class _Spans:
    """A span sink keeping what it is given."""

    def __init__(self) -> None:
        self.spans: list[HopSpan] = []

    def add(self, span: HopSpan) -> None:
        self.spans.append(span)


@pytest.fixture
def lines() -> Iterator[list[MutableMapping[str, Any]]]:
    """Log lines as configure_logging's chain leaves them, before rendering."""
    capture = LogCapture()
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, add_request_ids, capture]
    )
    try:
        yield capture.entries
    finally:
        structlog.reset_defaults()


def _frontend() -> Kit:
    kit = Kit()
    backend = kit.component("backend")

    @kit.route("Path(`/qa/hello`)")
    async def hello(k: Kontext) -> Response:
        reply = await k.request(backend)
        k.log.info("greeted")
        module_log.info("module.line")
        return k.text(reply.text)

    return kit


async def _who(subject: str, event: Event) -> bytes:
    answer = event.reply(source=event.target or event.source, content=b"World")
    return codec.encode(msgspec.structs.replace(answer, values={"statusCode": 200}))


async def _serve(kit: Kit, transport: FakeTransport, spans: _Spans, parent: SpanContext) -> Event:
    server = Server(
        settings=settings(),
        transport=transport,
        routes=kit._routes,
        default=kit._default,
        dependencies=kit._dependencies,
        definition={},
        tracer=HopTracer(spans),
    )
    event = msgspec.structs.replace(request_event(), parent_span=parent)
    data = encode_matched(MatchedEvent(event=event, route_id=0), max_size=MAX_SIZE)
    # In a task of its own, as the server runs every event.
    answer = await asyncio.create_task(server._process(data))
    return codec.decode(answer)


async def test_every_line_of_a_sampled_request_carries_the_handlers_span(
    lines: list[MutableMapping[str, Any]],
) -> None:
    """k.log's and a module logger's lines carry the event id and the handler span's ids."""
    transport = FakeTransport(_who)
    spans = _Spans()

    reply = await _serve(_frontend(), transport, spans, PARENT)

    assert reply.category == Category.RESPONSE
    client, handler = spans.spans
    assert handler.parent_span_id == PARENT.span_id
    assert client.parent_span_id == handler.span_id
    [(_, sent, _)] = transport.requests
    assert sent.parent_span == client.context
    ids = {
        "event_id": handler.attributes["kubefox.event.id"],
        "trace_id": PARENT.trace_id.hex(),
        "span_id": handler.span_id.hex(),
    }
    assert [{key: line[key] for key in ids} for line in lines] == [ids, ids]
    assert [line["event"] for line in lines] == ["greeted", "module.line"]


async def test_an_unsampled_request_records_no_span_and_binds_no_ids(
    lines: list[MutableMapping[str, Any]],
) -> None:
    """Without the sampled flag: no span, the call carries the parent on, lines lack trace ids."""
    transport = FakeTransport(_who)
    spans = _Spans()
    unsampled = msgspec.structs.replace(PARENT, flags=0)

    await _serve(_frontend(), transport, spans, unsampled)

    assert spans.spans == []
    [(_, sent, _)] = transport.requests
    assert sent.parent_span == unsampled
    assert [("trace_id" in line, "event_id" in line) for line in lines] == [
        (False, True),
        (False, False),
    ]


@pytest.mark.parametrize("room", [True, False], ids=["compact", "no-room-for-kinds"])
async def test_the_handler_s_and_the_call_s_spans_have_their_hop_s_attributes(
    room: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compact, or lazy when the process has no room for their kinds: the same spans."""
    if not room:
        full = spans_module.SpanKinds(limit=0)
        monkeypatch.setattr(spans_module, "span_kinds", full)
        monkeypatch.setattr(tracing_module, "span_kinds", full)
    transport = FakeTransport(_who)
    spans = _Spans()

    await _serve(_frontend(), transport, spans, PARENT)

    client, handler = spans.spans
    [(_, sent, _)] = transport.requests
    assert (handler.name, handler.kind) == ("Path(`/qa/hello`)", int(SpanKind.SERVER))
    assert handler.trace_id == client.trace_id == PARENT.trace_id
    assert handler.start_ns <= client.start_ns <= client.end_ns <= handler.end_ns
    assert handler.all_attributes() == {
        attr.EVENT_ID: handler.attributes[attr.EVENT_ID],
        attr.EVENT_CATEGORY: "REQUEST",
        attr.EVENT_TYPE: "io.kubefox.http",
        attr.VIRTUAL_ENVIRONMENT: CONTEXT.virtual_environment,
        attr.APP_DEPLOYMENT: CONTEXT.app_deployment,
        attr.APP: "hello-world",
        attr.COMPONENT: "frontend",
        attr.ROUTE_ID: 0,
        attr.HTTP_STATUS_CODE: 200,
    }
    assert (client.name, client.kind) == ("Send REQUEST to backend", int(SpanKind.CLIENT))
    assert client.all_attributes() == {
        attr.COMPONENT: "backend",
        attr.APP: settings().app,
        attr.EVENT_PARENT_ID: handler.attributes[attr.EVENT_ID],
        attr.EVENT_ID: sent.id,
        attr.HTTP_STATUS_CODE: 200,
    }
    assert (handler.status_code, client.status_code) == (0, 0)


async def test_a_failed_call_and_handler_end_their_spans_as_errors() -> None:
    """The call's span and the handler's carry the error and its exception event."""

    async def nobody(subject: str, event: Event) -> bytes:
        raise UnavailableError("backend is not running")

    transport = FakeTransport(nobody)
    spans = _Spans()

    reply = await _serve(_frontend(), transport, spans, PARENT)

    assert reply.type == "io.kubefox.error"
    client, handler = spans.spans
    assert client.parent_span_id == handler.span_id
    for span in (client, handler):
        assert span.status_code == int(StatusCode.ERROR)
        assert "backend is not running" in span.status_message
        [(event_name, _, values)] = span.events
        assert event_name == "exception"
        assert values["exception.type"].endswith("UnavailableError")
    assert handler.attributes[attr.HTTP_STATUS_CODE] == 503
