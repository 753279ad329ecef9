"""The protocol parser as pure logic: any split of the stream gives the same operations."""

from __future__ import annotations

from typing import Any

import pytest

from kubefox.natsio.errors import ProtocolError
from kubefox.natsio.headers import Headers
from kubefox.natsio.parser import Parser, Payload


class Recorder:
    """A parser whose callbacks append what they got to ``ops``."""

    def __init__(self) -> None:
        self.ops: list[tuple[Any, ...]] = []
        self.parser = Parser(
            on_msg=self.msg,
            on_ping=lambda: self.ops.append(("PING",)),
            on_pong=lambda: self.ops.append(("PONG",)),
            on_info=lambda info: self.ops.append(("INFO", info)),
            on_err=lambda text: self.ops.append(("ERR", text)),
            max_control_line=256,
        )

    def msg(
        self, sid: int, subject: str, reply: str, data: Payload, headers: Headers | None
    ) -> None:
        self.ops.append(("MSG", sid, subject, reply, bytes(data), headers))

    def feed(self, *chunks: bytes) -> list[tuple[Any, ...]]:
        for chunk in chunks:
            self.parser.feed(chunk)
        return self.ops


STREAM = (
    b'INFO {"server_id":"x","max_payload":1048576}\r\n'
    b"MSG foo.bar 1 5\r\nhello\r\n"
    b"MSG foo.baz 22 _INBOX.a.1 3\r\nabc\r\n"
    b"PING\r\n"
    b"HMSG h 3 _INBOX.a.2 22 26\r\nNATS/1.0\r\nKey: v:w\r\n\r\ndata\r\n"
    b"HMSG _INBOX.a.3 4 16 16\r\nNATS/1.0 503\r\n\r\n\r\n"
    b"+OK\r\n"
    b"PONG\r\n"
    b"MSG empty 5 0\r\n\r\n"
    b"-ERR 'Permissions Violation for Publish to \"secret\"'\r\n"
)

EXPECTED: list[tuple[Any, ...]] = [
    ("INFO", {"server_id": "x", "max_payload": 1048576}),
    ("MSG", 1, "foo.bar", "", b"hello", None),
    ("MSG", 22, "foo.baz", "_INBOX.a.1", b"abc", None),
    ("PING",),
    ("MSG", 3, "h", "_INBOX.a.2", b"data", {"Key": "v:w"}),
    ("MSG", 4, "_INBOX.a.3", "", b"", {"Status": "503"}),
    ("PONG",),
    ("MSG", 5, "empty", "", b"", None),
    ("ERR", 'Permissions Violation for Publish to "secret"'),
]


def test_a_whole_stream_yields_every_operation_in_order() -> None:
    """One read holding many operations calls back once per operation, +OK ignored."""
    assert Recorder().feed(STREAM) == EXPECTED


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_any_split_into_two_reads_yields_the_same(cut: int) -> None:
    """Wherever the socket splits the stream, the operations are the same."""
    assert Recorder().feed(STREAM[:cut], STREAM[cut:]) == EXPECTED


def test_byte_by_byte_reads_yield_the_same() -> None:
    """Even one byte per read."""
    recorder = Recorder()
    assert recorder.feed(*(STREAM[i : i + 1] for i in range(len(STREAM)))) == EXPECTED
    assert recorder.parser.buffered == 0


def test_a_payload_is_a_view_of_the_read_not_a_copy() -> None:
    """Zero copy: the payload handed on is a memoryview into the bytes received."""
    views: list[Payload] = []
    parser = Parser(
        on_msg=lambda sid, subject, reply, data, headers: views.append(data),
        on_ping=lambda: None,
        on_pong=lambda: None,
        on_info=lambda info: None,
        on_err=lambda text: None,
    )
    chunk = b"MSG a 1 3\r\nxyz\r\n"
    parser.feed(chunk)
    assert isinstance(views[0], memoryview)
    assert views[0].obj is chunk


def test_a_big_payload_over_many_reads_is_joined_once_complete() -> None:
    """A 1 MiB message in 64 KiB reads arrives whole, once, after its last byte."""
    payload = bytes(range(256)) * 4096
    stream = f"MSG big 9 {len(payload)}\r\n".encode() + payload + b"\r\nPING\r\n"
    recorder = Recorder()
    for start in range(0, len(stream), 65536):
        recorder.parser.feed(stream[start : start + 65536])
        if start + 65536 < len(stream) - 8:
            assert recorder.ops == []
    assert recorder.ops == [("MSG", 9, "big", "", payload, None), ("PING",)]


def test_reset_forgets_a_partial_operation() -> None:
    """A new connection starts a new stream."""
    recorder = Recorder()
    recorder.feed(b"MSG a 1 10\r\nabc")
    recorder.parser.reset()
    assert recorder.feed(b"PING\r\n") == [("PING",)]


@pytest.mark.parametrize(
    "line",
    [b"BOGUS\r\n", b"MSG a\r\n", b"HMSG a 1\r\n", b"INFO {not json\r\n", b"msg a 1 1\r\nx\r\n"],
)
def test_something_else_is_a_protocol_error(line: bytes) -> None:
    """Unknown operations and malformed lines raise, so the client drops the connection."""
    with pytest.raises(ProtocolError):
        Recorder().feed(line)


def test_a_bad_header_block_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        Recorder().feed(b"HMSG a 1 6 6\r\nHTTP/1\r\n")


def test_an_endless_control_line_is_a_protocol_error() -> None:
    """No line break within the limit: not NATS, or a broken stream."""
    recorder = Recorder()
    recorder.feed(b"MSG " + b"a" * 100)
    with pytest.raises(ProtocolError, match="control line"):
        recorder.feed(b"a" * 200)
