"""The guarded protocol writes a response's head and body in one system call."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from kubefox.serving.protocol import guarded_protocol

Scope = dict[str, Any]


class RecordingTransport(asyncio.Transport):
    """A connection's transport that records each write call (one call: one system call)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[bytes] = []
        self.closed_after: int | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.calls.append(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        self.calls.append(b"".join(bytes(part) for part in list_of_data))

    def close(self) -> None:
        if self.closed_after is None:
            self.closed_after = len(self.calls)

    def is_closing(self) -> bool:
        return self.closed_after is not None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8080)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def answered(app: Any, request: bytes) -> RecordingTransport:
    """What the protocol wrote for ``request`` to ``app``, once the loop has settled."""
    config = Config(app, lifespan="off", log_level="error", access_log=False, http="httptools")
    protocol_class = guarded_protocol(header_timeout=5.0, body_timeout=5.0, max_head_size=65536)
    protocol = protocol_class(config, ServerState(), {}, asyncio.get_running_loop())
    transport = RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(request)
    for _ in range(20):  # a few turns of the loop: the app's task, the end-of-turn flush
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)  # a streamed answer's later parts
    protocol.connection_lost(None)
    return transport


async def hello(scope: Scope, receive: Any, send: Any) -> None:
    headers = [(b"x-a", b"1"), (b"content-length", b"5")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"hello"})


async def streamed(scope: Scope, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await asyncio.sleep(0.01)  # a later turn of the loop, as a stream's next part
    await send({"type": "http.response.body", "body": b"part", "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def test_an_answer_leaves_in_one_write() -> None:
    transport = await answered(hello, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")

    assert len(transport.calls) == 1
    head, _, body = transport.calls[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"x-a: 1" in head
    assert body == b"hello"


async def test_the_head_of_a_streamed_answer_is_not_kept_waiting() -> None:
    transport = await answered(streamed, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")

    assert transport.calls[0].startswith(b"HTTP/1.1 200 OK")
    assert transport.calls[0].endswith(b"\r\n\r\n")  # the head alone, before the part
    assert b"part" in b"".join(transport.calls[1:])


async def test_a_closing_answer_is_written_whole_before_the_close() -> None:
    transport = await answered(hello, b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")

    assert transport.closed_after == 1
    assert transport.calls[0].endswith(b"\r\n\r\nhello")


async def test_a_head_request_gets_its_head() -> None:
    transport = await answered(hello, b"HEAD / HTTP/1.1\r\nhost: x\r\n\r\n")

    written = b"".join(transport.calls)
    assert written.startswith(b"HTTP/1.1 200 OK")
    assert written.endswith(b"\r\n\r\n")
