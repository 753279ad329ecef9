"""The receiver's client: POSTs on the event loop over one kept-alive connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from kubefox.telemetry._chunks import ChunkRow, hop_chunk, unpack
from kubefox.telemetry._post import Poster
from kubefox.telemetry.export import PackedDestination
from kubefox.telemetry.spans import PACKED_PATH
from tests.unit.telemetry.hops import hop


class Server:
    """A tiny HTTP/1.1 server: answers each POST as told, counts connections, keeps bodies."""

    def __init__(self) -> None:
        self.connections = 0
        self.bodies: list[bytes] = []
        self.paths: list[bytes] = []
        self.answers: list[bytes] = []  # used in turn; a plain 200 when none is left
        self.close_after_answer = False
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                line = await reader.readuntil(b"\r\n")
                length = 0
                while (header := await reader.readuntil(b"\r\n")) != b"\r\n":
                    name, _, value = header.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                self.paths.append(line.split()[1])
                self.bodies.append(await reader.readexactly(length))
                answer = self.answers.pop(0) if self.answers else b"HTTP/1.1 200 OK\r\n"
                writer.write(answer + b"content-length: 2\r\n\r\n{}")
                await writer.drain()
                if self.close_after_answer:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    served = Server()
    listener = await asyncio.start_server(served.handle, "127.0.0.1", 0)
    served.port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield served


async def test_posts_share_one_kept_alive_connection(server: Server) -> None:
    """Every POST goes over the same connection; each answer's status is returned."""
    server.answers = [b"HTTP/1.1 200 OK\r\n", b"HTTP/1.1 503 Service Unavailable\r\n"]
    poster = Poster(f"http://127.0.0.1:{server.port}/v1/x", content_type="application/x")

    statuses = [await poster.post(b"one"), await poster.post(b"two"), await poster.post(b"3")]
    poster.close()

    assert statuses == [200, 503, 200]
    assert server.bodies == [b"one", b"two", b"3"]
    assert server.paths == [b"/v1/x"] * 3
    assert server.connections == 1


async def test_a_connection_the_server_closed_is_opened_again(server: Server) -> None:
    """After an answer the server closed the connection on, the next POST still goes out."""
    server.close_after_answer = True
    destination = PackedDestination(f"http://127.0.0.1:{server.port}", timeout=5.0)
    row = _row()

    await destination.send_chunk(row)
    await asyncio.sleep(0.05)  # the server has closed its end by now
    await destination.send_chunk(row)
    destination.shutdown()

    assert server.connections == 2
    assert [unpack(body) for body in server.bodies] == [row, row]
    assert server.paths == [PACKED_PATH.encode()] * 2


async def test_a_refused_chunk_and_a_non_http_answer_raise(server: Server) -> None:
    """A status other than 200 is a RuntimeError; an answer that is not HTTP a ValueError."""
    server.answers = [b"HTTP/1.1 400 Bad Request\r\n", b"SSH-2.0-nope\r\n"]
    destination = PackedDestination(f"http://127.0.0.1:{server.port}", timeout=5.0)
    poster = Poster(f"http://127.0.0.1:{server.port}/", content_type="text/plain")

    with pytest.raises(RuntimeError, match="400"):
        await destination.send_chunk(_row())
    with pytest.raises(ValueError, match="not an HTTP answer"):
        await poster.post(b"x")
    destination.shutdown()
    poster.close()


async def test_nobody_listening_is_an_os_error_after_one_retry() -> None:
    """A receiver that is not there: the POST is tried twice, then OSError."""
    listener = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()
    destination = PackedDestination(f"http://127.0.0.1:{port}", timeout=5.0)

    with pytest.raises(ConnectionRefusedError):
        await destination.send_chunk(_row())


def test_only_http_urls_are_taken() -> None:
    """A receiver URL of another scheme is refused at once."""
    with pytest.raises(ValueError, match="not an http"):
        Poster("ftp://example.com/x", content_type="text/plain")


def _row() -> ChunkRow:
    return hop_chunk({"service.name": "test"}, "scope", [hop(1)])
