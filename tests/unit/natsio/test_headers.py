"""Header blocks of HPUB and HMSG."""

from __future__ import annotations

import pytest

from kubefox.natsio.headers import decode_headers, encode_headers


def test_headers_round_trip() -> None:
    """What we encode decodes to the same map."""
    headers = {"Content-Type": "application/json", "X-Trace": "a:b c"}
    block = encode_headers(headers)
    assert block.startswith(b"NATS/1.0\r\n")
    assert block.endswith(b"\r\n\r\n")
    assert decode_headers(block) == headers


def test_a_status_line_becomes_status_and_description() -> None:
    """nats-py's names for the status line's parts."""
    block = b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 1\r\n\r\n"
    assert decode_headers(memoryview(block)) == {
        "Status": "408",
        "Description": "Request Timeout",
        "Nats-Pending-Messages": "1",
    }


def test_a_repeated_key_keeps_its_last_value() -> None:
    assert decode_headers(b"NATS/1.0\r\nA: 1\r\nA: 2\r\n\r\n") == {"A": "2"}


@pytest.mark.parametrize("headers", [{"": "x"}, {"a:b": "x"}, {"a": "x\r\ny"}, {"a\n": "x"}])
def test_a_header_that_would_break_the_block_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="invalid header"):
        encode_headers(headers)


def test_a_block_without_the_version_is_refused() -> None:
    with pytest.raises(ValueError, match="not a NATS header block"):
        decode_headers(b"HTTP/1.1 200\r\n\r\n")
