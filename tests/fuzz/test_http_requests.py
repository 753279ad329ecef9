"""Hostile HTTP at a running httpsrv: every request ends in a clear 4xx (or 200), never a 500.

A real httpsrv (uvicorn, httptools) routes the hello-world resources on a real
nats-server; the frontend is played by a raw NATS subscription. Requests are
written byte for byte on raw sockets, so nothing a client library would tidy
up is tidied: random methods, targets with broken percent-escapes, header
names and values of any bytes, bodies with or without a length. Then the
slow and the large: a head sent a byte at a time (slowloris), a body that
never comes, a 16 MiB header, more connections than the server takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
import pytest_asyncio
from hypothesis import given
from hypothesis import strategies as st
from nats.aio.msg import Msg

from kubefox.adapters.http import HttpServer, HttpsrvSettings
from kubefox.core import codec, subjects
from kubefox.core.events import CONTENT_TYPE_TEXT
from kubefox.store.jetstream import JetStreamStore
from kubefox.store.typed import TypedStore
from tests.fuzz.budget import budget
from tests.unit.adapters.hello import (
    APP,
    DEPLOYMENT,
    FRONTEND,
    GREETING,
    NAMESPACE,
    platform_resource,
    write_hello_world,
)

# One httpsrv for the module: starting one per case would cost more than the cases.
pytestmark = [pytest.mark.fuzz, pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

MAX_SIZE = 4096  # the Platform's maximum event size, so oversized bodies are cheap to send
HEADER_TIMEOUT = 0.5
BODY_TIMEOUT = 1.0
CONTEXT = f"kf-dep={DEPLOYMENT}&kf-ve=qa"


class Server:
    """A running httpsrv: its address and how to talk to it over a raw socket."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port

    async def exchange(
        self,
        data: bytes = b"",
        *,
        chunks: list[bytes] | None = None,
        pause: float = 0.0,
        within: float = 10.0,
    ) -> tuple[int, bytes, float]:
        """Send ``data`` (or ``chunks``, ``pause`` s apart); status (0: none), reply, seconds.

        Reads until the server closes the connection: the tests send
        ``Connection: close``, and the server closes after every refusal.
        """
        started = time.monotonic()
        reader, writer = await asyncio.open_connection(self.host, self.port)
        received = b""
        try:
            async with asyncio.timeout(within):
                sending = asyncio.create_task(self._send(writer, data, chunks or [], pause))
                received = await reader.read()
                sending.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                    await sending
        except ConnectionError:
            pass  # closed while we were still sending: what was answered is in ``received``
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        return _status(received), received, time.monotonic() - started

    @staticmethod
    async def _send(
        writer: asyncio.StreamWriter, data: bytes, chunks: list[bytes], pause: float
    ) -> None:
        with contextlib.suppress(ConnectionError):
            if data:
                writer.write(data)
                await writer.drain()
            for chunk in chunks:
                writer.write(chunk)
                await writer.drain()
                await asyncio.sleep(pause)


def _status(response: bytes) -> int:
    if not response.startswith(b"HTTP/1.1 "):
        return 0
    return int(response[9:12])


@contextlib.asynccontextmanager
async def _httpsrv(nats_url: str, **overrides: Any) -> AsyncIterator[Server]:
    """httpsrv over a fresh bucket of hello-world resources, with a frontend that greets."""
    client = await nats.connect(nats_url)
    platform = f"f{uuid.uuid4().hex[:12]}"
    bucket = f"fuzz-{uuid.uuid4().hex}"

    async def greet(msg: Msg) -> None:
        matched = codec.decode_matched(msg.data)
        reply = matched.event.reply(
            source=FRONTEND,
            content=GREETING.encode(),
            content_type=CONTENT_TYPE_TEXT,
            values={"statusCode": 200},
        )
        await msg.respond(codec.encode(reply))

    try:
        store = await JetStreamStore.open(client, bucket=bucket)
        typed = TypedStore(store, namespace=NAMESPACE)
        await write_hello_world(typed, platform=platform_resource(platform, maxSize=MAX_SIZE))
        queue = subjects.component_queue(platform, APP, FRONTEND.name, FRONTEND.hash)
        await client.subscribe(subjects.for_component(platform, FRONTEND), queue=queue, cb=greet)
        await client.flush()
        settings = HttpsrvSettings.model_validate(
            {
                "platform": platform,
                "nats_url": nats_url,
                "bucket": bucket,
                "timeout": 5.0,
                "shutdown_grace": 2.0,
                "header_timeout": HEADER_TIMEOUT,
                "body_timeout": BODY_TIMEOUT,
                **overrides,
            }
        )
        server = HttpServer(settings)
        running = asyncio.create_task(server.run())
        started = asyncio.create_task(server.started.wait())
        await asyncio.wait({running, started}, return_when=asyncio.FIRST_COMPLETED)
        if running.done():
            running.result()
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        try:
            yield Server(host, int(port))
        finally:
            server.stop()
            await asyncio.wait_for(running, timeout=10)
    finally:
        await client.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def httpsrv(nats_url: str) -> AsyncIterator[Server]:
    """A running httpsrv with short header and body deadlines, shared by the module."""
    async with _httpsrv(nats_url) as server:
        yield server


# -- random requests ----------------------------------------------------------------------

_TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
METHODS = (
    st.sampled_from(
        [b"GET", b"POST", b"PUT", b"DELETE", b"HEAD", b"OPTIONS", b"PATCH", b"TRACE", b"CONNECT"]
    )
    | st.text(_TCHAR, min_size=1, max_size=12).map(str.encode)
    | st.binary(min_size=1, max_size=8)
)
SEGMENTS = st.sampled_from(
    [b"qa", b"hello", b"%", b"%zz", b"%ff%fe", b"%2F", b"%00", b"..", b"\xff", b"\xc3\xa9", b"a b"]
) | st.binary(max_size=6)
TARGETS = st.builds(
    lambda segments, query: b"/" + b"/".join(segments) + (b"?" + query if query else b""),
    st.lists(SEGMENTS, max_size=4),
    st.sampled_from([b"", CONTEXT.encode(), b"a=%ff", b"=&&=", b"kf-dep=&kf-ve="])
    | st.binary(max_size=16),
) | st.sampled_from([b"*", b"http://example.com/qa/hello", b"example.com:443", b""])
HEADER_NAMES = (
    st.sampled_from(
        [b"Host", b"Content-Type", b"kf-dep", b"kf-ve", b"X-Forwarded-Host", b"Transfer-Encoding"]
    )
    | st.text(_TCHAR, min_size=1, max_size=10).map(str.encode)
    | st.binary(min_size=1, max_size=6)
)
HEADER_VALUES = st.sampled_from(
    [b"", DEPLOYMENT.encode(), b"qa", b"chunked", b"\xff\xfe", b"a\x00b", b"x" * 2000]
) | st.binary(max_size=24)
VERSIONS = st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/9", b"", b"http/1.1"])
REQUESTS = st.builds(
    lambda method, target, version, headers, body, sized: b"".join(
        [
            method + b" " + target + (b" " + version if version else b""),
            b"\r\n",
            *(name + b": " + value + b"\r\n" for name, value in headers),
            b"Connection: close\r\n",
            b"Content-Length: %d\r\n" % len(body) if sized else b"",
            b"\r\n",
            body,
        ]
    ),
    METHODS,
    TARGETS,
    VERSIONS,
    st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=6),
    st.binary(max_size=64) | st.just(b"x" * (MAX_SIZE + 1)),
    st.booleans(),
)


@budget(150)
@given(request=REQUESTS)
async def test_any_request_is_answered_200_or_4xx(httpsrv: Server, request: bytes) -> None:
    """Random methods, targets, headers, versions and bodies: 200 or 4xx, within the deadlines."""
    status, response, elapsed = await httpsrv.exchange(request)

    assert status == 200 or 400 <= status < 500, response[:300]
    assert elapsed < HEADER_TIMEOUT + BODY_TIMEOUT + 2


# -- hand-picked hostile requests ---------------------------------------------------------


def _get(target: bytes, *headers: bytes, method: bytes = b"GET", body: bytes = b"") -> bytes:
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: x", *headers, b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


HELLO = b"/qa/hello?" + CONTEXT.encode()


@pytest.mark.parametrize(
    ("request_bytes", "expected"),
    [
        pytest.param(_get(HELLO), 200, id="the greeting"),
        pytest.param(_get(HELLO, method=b"FOO"), 400, id="a method HTTP does not define"),
        pytest.param(_get(HELLO, method=b"PURGE"), 200, id="a method HTTP extensions define"),
        pytest.param(_get(HELLO, method=b"get"), 400, id="a lower-case method"),
        pytest.param(b"GARBAGE\r\n\r\n", 400, id="no request line"),
        pytest.param(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, id="an HTTP/2 preface"),
        pytest.param(_get(b"/%zz%ff/%"), 404, id="broken percent-escapes in the path"),
        pytest.param(_get(b"/qa/hello?a=%ff&" + CONTEXT.encode()), 400, id="non-UTF-8 query"),
        pytest.param(_get(HELLO, b"X-A: \xff\xfe"), 400, id="a non-UTF-8 header value"),
        pytest.param(_get(HELLO, b"X-A: a\x00b"), 400, id="a NUL in a header"),
        pytest.param(_get(HELLO, b"Bad Header: 1"), 400, id="a space in a header name"),
        pytest.param(_get(HELLO, b"NoColon"), 400, id="a header without a colon"),
        pytest.param(_get(b"/" + b"a" * 100_000), 431, id="a 100 kB path"),
        pytest.param(_get(b"/?" + b"a=b&" * 20_000), 431, id="an 80 kB query"),
        pytest.param(
            _get(b"/", *(b"X-%d: 1" % i for i in range(10_000))), 431, id="10,000 headers"
        ),
        pytest.param(_get(HELLO, b"X-A: " + b"a" * 3000), 200, id="a 3 kB header"),
        pytest.param(_get(HELLO, b"X-A: " + b"a" * 60_000), 413, id="a 60 kB header"),
        pytest.param(_get(HELLO, b"X-A: " + b"a" * 70_000), 431, id="a 70 kB header"),
        pytest.param(
            _get(HELLO, b"Content-Length: 5000", method=b"POST", body=b"a" * 5000),
            413,
            id="a body over the limit",
        ),
        pytest.param(
            _get(
                HELLO,
                b"Transfer-Encoding: chunked",
                method=b"POST",
                body=(b"400\r\n" + b"a" * 1024 + b"\r\n") * 5 + b"0\r\n\r\n",
            ),
            413,
            id="a chunked body over the limit",
        ),
        pytest.param(
            _get(HELLO, b"Content-Length: 99999999999999999999999", method=b"POST"),
            400,
            id="a 23-digit length",
        ),
        pytest.param(_get(HELLO, b"Content-Length: -1", method=b"POST"), 400, id="length -1"),
        pytest.param(_get(HELLO, b"Content-Length: abc", method=b"POST"), 400, id="length abc"),
        pytest.param(
            _get(HELLO, b"Content-Length: 3", b"Transfer-Encoding: chunked", method=b"POST"),
            400,
            id="both a length and chunked",
        ),
        pytest.param(_get(b"http://evil.example/qa/hello"), 404, id="an absolute URL"),
        pytest.param(_get(b"*", method=b"OPTIONS"), 404, id="an asterisk target"),
        pytest.param(
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n", 400, id="CONNECT"
        ),
    ],
)
async def test_hostile_requests_get_the_expected_answer(
    httpsrv: Server, request_bytes: bytes, expected: int
) -> None:
    """Each hand-picked hostile request gets its clear status, and the server answers on."""
    status, response, _ = await httpsrv.exchange(request_bytes)
    after, _, _ = await httpsrv.exchange(_get(HELLO))

    assert status == expected, response[:300]
    assert after == 200


# -- slow and large -----------------------------------------------------------------------


async def test_a_head_sent_a_byte_at_a_time_is_408_at_the_deadline(httpsrv: Server) -> None:
    """Slowloris: one byte every 0.1 s gets 408 after the header deadline; others are served."""
    request = _get(HELLO)
    slow = asyncio.create_task(
        httpsrv.exchange(chunks=[request[i : i + 1] for i in range(len(request))], pause=0.1)
    )
    meanwhile = await httpsrv.exchange(request)
    status, response, elapsed = await slow

    assert meanwhile[0] == 200
    assert status == 408, response
    assert response.endswith(b"the request headers did not arrive within 0.5s")
    assert HEADER_TIMEOUT - 0.1 < elapsed < HEADER_TIMEOUT + 1


async def test_a_connection_that_sends_nothing_is_closed_with_408(httpsrv: Server) -> None:
    """Connecting and staying silent holds nothing past the header deadline."""
    status, _, elapsed = await httpsrv.exchange()

    assert status == 408
    assert elapsed < HEADER_TIMEOUT + 1


async def test_a_body_that_never_comes_is_408_at_the_body_deadline(httpsrv: Server) -> None:
    """Headers announce 100 bytes, 3 arrive: 408 after the body deadline, nothing routed."""
    request = _get(HELLO, b"Content-Length: 100", method=b"POST", body=b"abc")

    status, response, elapsed = await httpsrv.exchange(request)

    assert status == 408, response
    assert response.endswith(b"the request body did not arrive within 1s")
    assert BODY_TIMEOUT - 0.1 < elapsed < BODY_TIMEOUT + 1


async def test_a_body_sent_slowly_within_the_deadline_is_served(httpsrv: Server) -> None:
    """A body trickling in, but complete before the body deadline, is routed as usual."""
    head = _get(HELLO, b"Content-Length: 8", method=b"POST")

    status, response, _ = await httpsrv.exchange(head, chunks=[b"ab"] * 4, pause=0.1)

    assert status == 200, response


async def test_bytes_trickling_between_requests_do_not_keep_a_connection_open(
    httpsrv: Server,
) -> None:
    """After an answer, a byte every 0.1 s that starts no request: closed at the header deadline."""
    first = _get(HELLO).replace(b"Connection: close\r\n", b"")

    status, response, elapsed = await httpsrv.exchange(first, chunks=[b"\r\n"] * 40, pause=0.1)

    assert status == 200, response[:200]
    assert elapsed < HEADER_TIMEOUT + 1.5


async def test_a_16_mib_header_is_431_in_bounded_memory(httpsrv: Server) -> None:
    """A header that never ends is refused after 64 KiB; the server holds at most ~one read.

    The pause lets the refusal reach us before we send more: a peer that closes
    with unread data resets the connection, which may discard its last answer.
    """
    start = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: "
    chunk = b"a" * (64 * 1024)
    tracemalloc.start()
    try:
        status, response, _ = await httpsrv.exchange(start, chunks=[chunk] * 256, pause=0.02)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert status == 431, response[:200]
    assert peak < 4 * 1024 * 1024


async def test_connections_beyond_the_limit_get_503_until_idle_ones_time_out(
    nats_url: str,
) -> None:
    """max_connections idle sockets: the next request is 503; once they time out, 200 again."""
    async with _httpsrv(nats_url, max_connections=8) as server:
        idle = [await asyncio.open_connection(server.host, server.port) for _ in range(8)]
        refused, refused_response, _ = await server.exchange(_get(HELLO))
        for reader, _ in idle:  # each is answered 408 and closed at the header deadline
            await reader.read()
        served, _, _ = await server.exchange(_get(HELLO))
        for _, writer in idle:
            writer.close()

    assert refused == 503, refused_response
    assert served == 200
