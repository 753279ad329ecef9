"""OtlpReceiver: OTLP/HTTP in, records in the store; bad requests get 4xx, never a 500."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import AsyncIterator
from typing import cast

import httpx
import msgspec
import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from kubefox.telemetry import SpanKind, SpanRecord, StatusCode, TelemetryStore
from kubefox.telemetry._chunks import pack, pack_row, unpack
from kubefox.telemetry.receiver import OtlpReceiver
from kubefox.telemetry.spans import PACKED_MEDIA_TYPE, PACKED_PATH, HopSpan
from kubefox.telemetry.sqlite import SQLiteTelemetryStore
from tests.unit.telemetry.hops import COMPACT_CALL_ATTRIBUTES, TRACE, compact_chunk, hop
from tests.unit.telemetry.otlp_messages import (
    CHILD_ID,
    ROOT_ID,
    START,
    TRACE_ID,
    child_span,
    log_record,
    logs_request,
    root_span,
    traces_request,
)

PROTOBUF = {"content-type": "application/x-protobuf"}
JSON = {"content-type": "application/json"}


@pytest.fixture
async def store() -> AsyncIterator[SQLiteTelemetryStore]:
    store = await SQLiteTelemetryStore.open(":memory:")
    try:
        yield store
    finally:
        await store.aclose()


@pytest.fixture
async def client(store: SQLiteTelemetryStore) -> AsyncIterator[httpx.AsyncClient]:
    receiver = OtlpReceiver(store, max_body_size=64 * 1024)
    transport = httpx.ASGITransport(app=receiver)
    async with httpx.AsyncClient(transport=transport, base_url="http://otlp") as client:
        yield client


async def test_protobuf_spans_are_stored_with_their_tree_and_attributes(
    client: httpx.AsyncClient, store: SQLiteTelemetryStore
) -> None:
    """Ids become hex, kinds and status map over, values keep their JSON types."""
    body = traces_request(root_span(), child_span()).SerializeToString()

    response = await client.post("/v1/traces", content=body, headers=PROTOBUF)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    assert not ExportTraceServiceResponse.FromString(response.content).HasField("partial_success")
    trace = await store.trace_for_event("ev-1")
    root, child = trace.spans
    assert trace.trace_id == TRACE_ID.hex()
    assert (root.span_id, root.parent_span_id, root.kind) == (ROOT_ID.hex(), "", SpanKind.SERVER)
    assert root.attributes == {"kubefox.event.id": "ev-1", "http.response.status_code": 200}
    assert root.resource["service.name"] == "httpsrv"
    assert root.scope == "kubefox.test"
    assert (child.parent_span_id, child.status_code, child.status_message) == (
        ROOT_ID.hex(),
        StatusCode.ERROR,
        "boom",
    )
    assert child.attributes == {"tags": ["a", "b"], "raw": "AQI=", "nested": {"k": 1.5}}
    assert child.events[0].name == "exception"
    assert child.events[0].time_ns == START + 2_000_000


async def test_json_spans_with_hex_ids_are_stored(
    client: httpx.AsyncClient, store: SQLiteTelemetryStore
) -> None:
    """OTLP/JSON carries ids as hex; the reply is JSON too."""
    document = json_format.MessageToDict(traces_request(root_span()))
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["traceId"], span["spanId"] = TRACE_ID.hex(), ROOT_ID.hex()

    response = await client.post("/v1/traces", json=document)

    assert response.status_code == 200
    assert response.json() == {}
    assert (await store.trace(TRACE_ID.hex())).spans[0].span_id == ROOT_ID.hex()


async def test_log_records_are_stored_with_their_trace_context(
    client: httpx.AsyncClient, store: SQLiteTelemetryStore
) -> None:
    """A structured body is kept as JSON text; app and component come from the attributes."""
    request = logs_request(log_record("hello"), log_record({"msg": "structured", "n": 1}))

    response = await client.post("/v1/logs", content=request.SerializeToString(), headers=PROTOBUF)

    assert response.status_code == 200
    assert not ExportLogsServiceResponse.FromString(response.content).HasField("partial_success")
    records = await store.logs(app="hello-world", component="backend", trace_id=TRACE_ID.hex())
    assert [r.body for r in records] == ["hello", '{"msg":"structured","n":1}']
    assert records[0].span_id == CHILD_ID.hex()
    assert records[0].severity == "INFO"


async def test_a_log_without_a_time_takes_its_observed_time(
    client: httpx.AsyncClient, store: SQLiteTelemetryStore
) -> None:
    """time_unix_nano 0 means unknown: the observed time stands in."""
    record = log_record(
        time_unix_nano=0, observed_time_unix_nano=START + 7, trace_id=b"", span_id=b""
    )

    response = await client.post(
        "/v1/logs", content=logs_request(record).SerializeToString(), headers=PROTOBUF
    )

    assert response.status_code == 200
    (stored,) = await store.logs()
    assert (stored.time_ns, stored.trace_id, stored.span_id) == (START + 7, "", "")


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
async def test_compressed_bodies_are_accepted(
    client: httpx.AsyncClient, store: SQLiteTelemetryStore, coding: str
) -> None:
    """gzip (what exporters send when asked to compress) and deflate both decode."""
    body = traces_request(root_span()).SerializeToString()
    packed = gzip.compress(body) if coding == "gzip" else zlib.compress(body)

    response = await client.post(
        "/v1/traces", content=packed, headers={**PROTOBUF, "content-encoding": coding}
    )

    assert response.status_code == 200
    assert (await store.trace(TRACE_ID.hex())).spans


async def test_bad_spans_are_left_out_as_a_partial_success(
    client: httpx.AsyncClient, store: SQLiteTelemetryStore
) -> None:
    """A span with a short trace id is rejected alone; the good ones are kept."""
    bad = root_span(trace_id=b"\x01\x02", span_id=b"\x00" * 8)
    body = traces_request(bad, child_span()).SerializeToString()

    response = await client.post("/v1/traces", content=body, headers=PROTOBUF)

    assert response.status_code == 200
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_spans == 1
    assert "trace id" in partial.error_message
    assert len((await store.trace(TRACE_ID.hex())).spans) == 1


async def test_bad_log_records_are_left_out_as_a_partial_success(
    client: httpx.AsyncClient, store: SQLiteTelemetryStore
) -> None:
    """A record with a 3-byte span id is rejected; JSON replies use OTLP's field names."""
    document = json_format.MessageToDict(logs_request(log_record("ok"), log_record("bad")))
    records = document["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    for record in records:
        record["traceId"], record["spanId"] = TRACE_ID.hex(), CHILD_ID.hex()
    records[1]["spanId"] = "abcdef"

    response = await client.post("/v1/logs", json=document)

    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedLogRecords"] == "1"
    assert "ids" in partial["errorMessage"]
    assert [r.body for r in await store.logs()] == ["ok"]


@pytest.mark.parametrize(
    ("content", "headers", "needle"),
    [
        (b"\xff\xff\xff\xff", PROTOBUF, "protobuf"),
        (b"{not json", JSON, "not JSON"),
        (b"[1, 2]", JSON, "JSON object"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}', JSON, "hex"),
        (b'{"resourceSpans": 7}', JSON, "OTLP/JSON"),
        (b"not gzip", {**PROTOBUF, "content-encoding": "gzip"}, "gzip"),
    ],
)
async def test_a_body_that_does_not_decode_is_a_400_saying_why(
    client: httpx.AsyncClient, content: bytes, headers: dict[str, str], needle: str
) -> None:
    """The error body is a google.rpc.Status whose message names the problem."""
    response = await client.post("/v1/traces", content=content, headers=headers)

    assert response.status_code == 400
    assert needle.encode() in response.content


async def test_a_json_error_is_a_status_document(client: httpx.AsyncClient) -> None:
    """JSON clients get {"code": 3, "message": ...}."""
    response = await client.post("/v1/logs", content=b"{", headers=JSON)

    assert response.status_code == 400
    assert response.json()["code"] == 3
    assert "not JSON" in response.json()["message"]


async def test_an_oversized_body_is_a_413(client: httpx.AsyncClient) -> None:
    """Over max_body_size, by declared length or by what arrives, the answer is 413."""
    declared = await client.post("/v1/traces", content=b"x" * (65 * 1024), headers=PROTOBUF)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(70):
            yield b"x" * 1024

    streamed = await client.post("/v1/traces", content=chunks(), headers=PROTOBUF)

    assert declared.status_code == 413
    assert streamed.status_code == 413


async def test_a_compression_bomb_is_a_413(client: httpx.AsyncClient) -> None:
    """A small gzip body that inflates past the limit is refused, not inflated."""
    bomb = gzip.compress(b"\x00" * (10 * 1024 * 1024))

    response = await client.post(
        "/v1/traces", content=bomb, headers={**PROTOBUF, "content-encoding": "gzip"}
    )

    assert len(bomb) < 64 * 1024
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("POST", "/v1/metrics", PROTOBUF, 404),
        ("GET", "/v1/traces", PROTOBUF, 405),
        ("POST", "/v1/traces", {"content-type": "text/plain"}, 415),
        ("POST", "/v1/traces", {}, 415),
        ("POST", "/v1/traces", {**PROTOBUF, "content-encoding": "br"}, 415),
    ],
)
async def test_other_requests_get_the_matching_4xx(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str], status: int
) -> None:
    """Unknown paths, methods, content types and encodings are refused clearly."""
    response = await client.request(method, path, content=b"", headers=headers)

    assert response.status_code == status
    assert response.content


async def test_a_closed_store_is_a_retryable_503(
    client: httpx.AsyncClient, store: SQLiteTelemetryStore
) -> None:
    """The exporter retries on 503; Retry-After tells it when."""
    await store.aclose()

    response = await client.post(
        "/v1/traces", content=traces_request(root_span()).SerializeToString(), headers=PROTOBUF
    )

    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.binary(max_size=512), as_json=st.booleans(), logs=st.booleans())
async def test_no_body_is_ever_a_500(
    client: httpx.AsyncClient, body: bytes, as_json: bool, logs: bool
) -> None:
    """Whatever bytes arrive, the receiver answers 200 or 400."""
    response = await client.post(
        "/v1/logs" if logs else "/v1/traces", content=body, headers=JSON if as_json else PROTOBUF
    )

    assert response.status_code in (200, 400)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    document=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "resourceSpans",
                        "scopeSpans",
                        "spans",
                        "traceId",
                        "name",
                        "attributes",
                        "key",
                        "value",
                        "stringValue",
                        "kvlistValue",
                        "values",
                    ]
                ),
                inner,
                max_size=3,
            )
        ),
        max_leaves=12,
    )
)
async def test_no_json_document_is_ever_a_500(client: httpx.AsyncClient, document: object) -> None:
    """Well-formed JSON of the wrong shape is a 400, never a crash."""
    response = await client.post("/v1/traces", content=json.dumps(document), headers=JSON)

    assert response.status_code in (200, 400)


# -- packed hop spans (kubefox components) ----------------------------------------------------


def _hop(n: int, *, parent: bytes = b"", trace: bytes = TRACE) -> HopSpan:
    return hop(n, parent=parent, trace=trace, attributes={"http.response.status_code": 200})


async def test_packed_hop_spans_are_stored_as_the_same_records(
    client: httpx.AsyncClient, store: SQLiteTelemetryStore
) -> None:
    """A component's msgpack batch lands in the store: ids, tree, resource, scope, events."""
    failed = _hop(2, parent=(1).to_bytes(8, "big"))
    failed.record_exception(ValueError("boom"))
    failed.set_status(int(StatusCode.ERROR), "boom")
    body = pack(
        {"service.name": "hello-world-backend-0123456"},
        "kubefox.component",
        [
            _hop(1),
            failed,
        ],
    )

    answer = await client.post(
        PACKED_PATH, content=body, headers={"content-type": PACKED_MEDIA_TYPE}
    )

    assert answer.status_code == 200
    trace = await store.trace_for_event("ev-2")
    root, child = trace.spans
    assert trace.trace_id == bytes(range(1, 17)).hex()
    assert (root.span_id, root.parent_span_id) == ((1).to_bytes(8, "big").hex(), "")
    assert child.parent_span_id == root.span_id
    assert child.status_code == StatusCode.ERROR
    assert child.status_message == "boom"
    assert [event.name for event in child.events] == ["exception"]
    assert child.service == "hello-world-backend-0123456"
    assert child.scope == "kubefox.component"
    assert child.attributes["http.response.status_code"] == 200


async def test_packed_spans_with_impossible_ids_are_left_out_not_failed(
    client: httpx.AsyncClient, store: SQLiteTelemetryStore
) -> None:
    """A zero trace id or a short span id is dropped; the rest of the batch is kept."""
    body = pack({}, "s", [_hop(1), _hop(2, trace=bytes(16)), _hop(3, trace=b"short")])

    answer = await client.post(
        PACKED_PATH, content=body, headers={"content-type": PACKED_MEDIA_TYPE}
    )

    assert answer.status_code == 200
    assert [s.name for s in (await store.trace(bytes(range(1, 17)).hex())).spans] == ["hop 1"]


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        (PACKED_MEDIA_TYPE, b"\x93not a batch", 400),
        (PACKED_MEDIA_TYPE, b"", 400),
        ("application/x-protobuf", b"", 415),
    ],
)
async def test_a_bad_packed_batch_is_refused_never_a_500(
    client: httpx.AsyncClient, content_type: str, body: bytes, status: int
) -> None:
    """Garbage is 400, another media type on the packed path 415."""
    answer = await client.post(PACKED_PATH, content=body, headers={"content-type": content_type})

    assert answer.status_code == status


async def test_a_component_s_unreadable_chunk_is_skipped_when_read(
    client: httpx.AsyncClient, store: SQLiteTelemetryStore
) -> None:
    """The receiver keeps a chunk as it came; one that does not decode spoils no query."""
    trace = bytes(range(1, 17))
    good = unpack(pack({}, "s", [_hop(1)]))
    bad = msgspec.structs.replace(good, data="[not json")
    for row in (bad, good):
        answer = await client.post(
            PACKED_PATH,
            content=msgspec.msgpack.encode(row),
            headers={"content-type": PACKED_MEDIA_TYPE},
        )
        assert answer.status_code == 200

    assert [s.name for s in (await store.trace(trace.hex())).spans] == ["hop 1"]
    assert (await store.trace_for_event("ev-1")).trace_id == trace.hex()


async def test_a_store_without_chunks_gets_the_component_s_spans_as_records() -> None:
    """A store that only takes records (PostgreSQL) gets the decoded, checked spans."""
    kept: list[SpanRecord] = []

    class Records:
        async def put_spans(self, spans: list[SpanRecord]) -> None:
            kept.extend(spans)

    body = pack({"service.name": "svc"}, "s", [_hop(1), _hop(2, trace=bytes(16))])
    receiver = OtlpReceiver(cast("TelemetryStore", Records()))  # only put_spans is used
    transport = httpx.ASGITransport(app=receiver)
    async with httpx.AsyncClient(transport=transport, base_url="http://otlp") as records:
        answer = await records.post(
            PACKED_PATH, content=body, headers={"content-type": PACKED_MEDIA_TYPE}
        )

    assert answer.status_code == 200
    assert [(s.name, s.service, s.event_id) for s in kept] == [("hop 1", "svc", "ev-1")]


async def test_a_component_s_compact_spans_are_stored_with_their_kind_s_name_and_attributes(
    client: httpx.AsyncClient, store: SQLiteTelemetryStore
) -> None:
    """Compact spans read back whole: kind name and attributes, ids, status, tree."""
    answer = await client.post(
        PACKED_PATH, content=pack_row(compact_chunk()), headers={"content-type": PACKED_MEDIA_TYPE}
    )

    assert answer.status_code == 200
    handler, call = (await store.trace_for_event("ev-2")).spans
    assert (handler.name, handler.kind) == ("Path(`/hello`)", SpanKind.SERVER)
    assert (call.name, call.kind) == ("Send REQUEST to backend", SpanKind.CLIENT)
    assert call.parent_span_id == handler.span_id
    assert call.status_code == StatusCode.ERROR
    assert call.attributes == COMPACT_CALL_ATTRIBUTES
    assert handler.service == "hello-world-frontend-0123456"
