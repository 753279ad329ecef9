"""Parsing registration records, which come from processes and are not trusted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kubefox.core.errors import InvalidError
from kubefox.store.instance_records import parse_record, record_key

KEY = record_key("demo", "hello-world", "backend", "b" * 32, "abc123")


def test_a_kit_record_is_read_whole() -> None:
    """Every field the Kit writes lands in the record; the key gives the identity."""
    data = (
        b'{"platform":"demo","app":"hello-world","name":"backend","hash":"' + b"b" * 32 + b'",'
        b'"id":"abc123","pid":77,"startedAt":"2024-02-01T16:24:21Z",'
        b'"heartbeatAt":"2024-02-01T16:24:24.5Z","definition":{"type":"KubeFox"}}'
    )

    record = parse_record(KEY, data)

    assert (record.platform, record.app, record.name, record.hash, record.id) == (
        "demo",
        "hello-world",
        "backend",
        "b" * 32,
        "abc123",
    )
    assert record.pid == 77
    assert record.started_at == datetime(2024, 2, 1, 16, 24, 21, tzinfo=UTC)
    assert record.heartbeat_at == datetime(2024, 2, 1, 16, 24, 24, 500000, tzinfo=UTC)
    assert record.definition == {"type": "KubeFox"}


def test_odd_fields_are_dropped_not_fatal() -> None:
    """A record with fields of the wrong type still identifies its instance."""
    record = parse_record(KEY, b'{"pid":true,"startedAt":"yesterday","definition":[]}')

    assert (record.pid, record.started_at, record.definition) == (None, None, {})


@pytest.mark.parametrize(
    ("key", "data"),
    [
        ("demo.hello-world.backend", b"{}"),
        ("demo..backend.hash.inst", b"{}"),
        (KEY, b"not json"),
        (KEY, b"[1, 2]"),
    ],
)
def test_malformed_records_are_invalid(key: str, data: bytes) -> None:
    """A key without five parts or a value that is no JSON object is refused."""
    with pytest.raises(InvalidError):
        parse_record(key, data)
