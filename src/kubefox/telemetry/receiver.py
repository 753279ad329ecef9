"""The OTLP/HTTP receiver: an ASGI app that keeps exported spans and logs in a store.

``POST /v1/traces`` and ``POST /v1/logs`` accept OTLP protobuf
(``application/x-protobuf``) or OTLP/JSON (``application/json``), plain or
gzip/deflate compressed. Answers follow the OTLP/HTTP specification:

* 200 with an export response (carrying *partial success* when some records
  could not be kept);
* 400 for a body that does not decode, 413 for one over ``max_body_size``
  (before or after decompression), 415 for an unknown content type or
  encoding, 404/405 for other paths and methods;
* 503 when the store cannot take the records (exporters retry it).

``POST /v1/kubefox/spans`` takes the chunks kubefox components send their
hop spans in (:mod:`kubefox.telemetry._chunks`: built by the component, kept
as they come, no protobuf), with the same answers; its error bodies are text.

A bad request never becomes a 500. Error bodies are a ``google.rpc.Status``
in the request's encoding, so an exporter's log shows the message.

It is a raw ASGI app rather than Starlette: two routes do not need a router,
and the telemetry layer stays free of web frameworks. Serve it with
:class:`kubefox.telemetry.server.TelemetryServer`, or mount it in any ASGI app.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeVar

import structlog

from kubefox.core.errors import InvalidError, KubeFoxError
from kubefox.telemetry import otlp
from kubefox.telemetry._chunks import unpack
from kubefox.telemetry.export import store_chunk
from kubefox.telemetry.protocol import TelemetryStore
from kubefox.telemetry.spans import PACKED_MEDIA_TYPE, PACKED_PATH

log = structlog.get_logger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
_R = TypeVar("_R")

#: Paths the receiver answers.
TRACES_PATH = "/v1/traces"
LOGS_PATH = "/v1/logs"
#: Largest body accepted by default, before and after decompression.
DEFAULT_MAX_BODY_SIZE = 8 * 1024 * 1024

_ENCODINGS = {
    "application/x-protobuf": otlp.Encoding.PROTOBUF,
    "application/protobuf": otlp.Encoding.PROTOBUF,
    "application/json": otlp.Encoding.JSON,
}
# google.rpc.Code values used in error bodies
_INVALID_ARGUMENT = 3
_NOT_FOUND = 5
_RESOURCE_EXHAUSTED = 8
_UNIMPLEMENTED = 12
_UNAVAILABLE = 14


class _RefusedError(Exception):
    """Ends a request early with an HTTP status and a message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def status_body(code: int, message: str, encoding: otlp.Encoding | None) -> tuple[bytes, bytes]:
    """A ``google.rpc.Status`` body and its content type (plain text without an encoding)."""
    if encoding is otlp.Encoding.PROTOBUF:
        text = message.encode()
        # field 1 (code, varint) and field 2 (message, length-delimited), by hand:
        # two fields do not justify a dependency on googleapis-common-protos
        return b"\x08" + _varint(code) + b"\x12" + _varint(
            len(text)
        ) + text, b"application/x-protobuf"
    if encoding is otlp.Encoding.JSON:
        return json.dumps({"code": code, "message": message}).encode(), b"application/json"
    return message.encode(), b"text/plain; charset=utf-8"


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""


def _decompress(body: bytes, coding: str, limit: int) -> bytes:
    if coding in ("", "identity"):
        return body
    attempts = [16 + zlib.MAX_WBITS] if coding == "gzip" else [zlib.MAX_WBITS, -zlib.MAX_WBITS]
    for wbits in attempts:
        inflater = zlib.decompressobj(wbits)
        try:
            out = inflater.decompress(body, limit + 1)
        except zlib.error:
            continue
        if len(out) > limit or inflater.unconsumed_tail:
            raise _RefusedError(
                413, _RESOURCE_EXHAUSTED, f"the body is over {limit} bytes uncompressed"
            )
        if not inflater.eof:
            raise _RefusedError(400, _INVALID_ARGUMENT, f"the {coding} body is truncated")
        return out
    raise _RefusedError(400, _INVALID_ARGUMENT, f"the body is not valid {coding}")


def _check(scope: Scope) -> tuple[str, otlp.Encoding | None, str]:
    """The path, body encoding (``None``: packed) and content coding of an acceptable request."""
    path = str(scope.get("path", ""))
    if path not in (TRACES_PATH, LOGS_PATH, PACKED_PATH):
        raise _RefusedError(404, _NOT_FOUND, f"no OTLP endpoint at {path}")
    if scope.get("method") != "POST":
        raise _RefusedError(405, _UNIMPLEMENTED, f"{path} takes POST only")
    media = _header(scope, b"content-type").split(";", 1)[0].strip().lower()
    encoding = _ENCODINGS.get(media)
    if path == PACKED_PATH:
        if media != PACKED_MEDIA_TYPE:
            raise _RefusedError(
                415, _INVALID_ARGUMENT, f"the content type must be {PACKED_MEDIA_TYPE}"
            )
        encoding = None
    elif encoding is None:
        raise _RefusedError(
            415,
            _INVALID_ARGUMENT,
            "the content type must be application/x-protobuf or application/json",
        )
    coding = _header(scope, b"content-encoding").strip().lower()
    if coding not in ("", "identity", "gzip", "deflate"):
        raise _RefusedError(415, _INVALID_ARGUMENT, f"unsupported content encoding {coding!r}")
    return path, encoding, coding


class OtlpReceiver:
    """ASGI app receiving OTLP/HTTP traces and logs into ``store``.

    Args:
        store: where the records go; the receiver never closes it.
        max_body_size: largest body accepted, in bytes, compressed or not.
    """

    def __init__(
        self, store: TelemetryStore, *, max_body_size: int = DEFAULT_MAX_BODY_SIZE
    ) -> None:
        self.store = store
        self.max_body_size = max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        # the error body is in the request's encoding once it is known, plain text before
        encoding = _ENCODINGS.get(_header(scope, b"content-type").split(";", 1)[0].strip().lower())
        try:
            path, encoding, coding = _check(scope)
            body = _decompress(await self._read(scope, receive), coding, self.max_body_size)
            if encoding is None:
                await self._packed(body)
                await _respond(send, 200, b"", b"text/plain; charset=utf-8")
                return
            answer = await self._export(path, body, encoding)
        except _RefusedError as refused:
            if refused.status >= 500:
                log.warning("otlp.refused", status=refused.status, reason=refused.message)
            else:
                log.info("otlp.refused", status=refused.status, reason=refused.message)
            payload, content_type = status_body(refused.code, refused.message, encoding)
            await _respond(send, refused.status, payload, content_type)
            return
        await _respond(send, 200, answer, encoding.value.encode())

    async def _read(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.max_body_size
        declared = _header(scope, b"content-length")
        if declared.isdigit() and int(declared) > limit:
            raise _RefusedError(413, _RESOURCE_EXHAUSTED, f"the body is over {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _RefusedError(400, _INVALID_ARGUMENT, "the client went away mid-body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _RefusedError(413, _RESOURCE_EXHAUSTED, f"the body is over {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _packed(self, body: bytes) -> None:
        try:
            row = unpack(body)
        except InvalidError as exc:
            reason = exc.details.get("reason")
            message = f"{exc} ({reason})" if reason else str(exc)
            raise _RefusedError(400, _INVALID_ARGUMENT, message) from exc
        await _keep(store_chunk(self.store, row))

    async def _export(self, path: str, body: bytes, encoding: otlp.Encoding) -> bytes:
        if path == TRACES_PATH:
            spans = _decode(otlp.decode_traces, body, encoding)
            await _keep(self.store.put_spans(spans.records))
            return otlp.trace_response(spans, encoding)
        records = _decode(otlp.decode_logs, body, encoding)
        await _keep(self.store.put_logs(records.records))
        return otlp.logs_response(records, encoding)


def _decode(
    decoder: Callable[[bytes, otlp.Encoding], otlp.Decoded[_R]],
    body: bytes,
    encoding: otlp.Encoding,
) -> otlp.Decoded[_R]:
    try:
        return decoder(body, encoding)
    except InvalidError as exc:
        reason = exc.details.get("reason")
        message = f"{exc} ({reason})" if reason else str(exc)
        raise _RefusedError(400, _INVALID_ARGUMENT, message) from exc
    except Exception as exc:  # request boundary: a bad body is never a 500
        log.exception("otlp.undecodable")
        raise _RefusedError(400, _INVALID_ARGUMENT, f"the body cannot be decoded: {exc}") from exc


async def _keep(write: Awaitable[_R]) -> _R:
    try:
        return await write
    except InvalidError as exc:
        raise _RefusedError(400, _INVALID_ARGUMENT, str(exc)) from exc
    except KubeFoxError as exc:
        raise _RefusedError(
            503, _UNAVAILABLE, f"the telemetry store cannot take it: {exc}"
        ) from exc
    except Exception as exc:  # request boundary: retryable for the exporter
        log.exception("otlp.store_failed")
        raise _RefusedError(503, _UNAVAILABLE, "the telemetry store failed") from exc


async def _respond(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if status == 503:
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
