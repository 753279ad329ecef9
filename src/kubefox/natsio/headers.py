"""NATS message headers: the ``NATS/1.0`` block of HPUB and HMSG, both ways.

Headers are a plain ``dict[str, str]`` (a repeated key keeps its last value,
as nats-py does). A status line (``NATS/1.0 503``) becomes the ``Status`` and
``Description`` entries, nats-py's names, so a 503 with no body is how a
request learns that nobody listens.
"""

from __future__ import annotations

from typing import TypeAlias

#: A message's headers; ``None`` on the wire-level API when a message has none.
Headers: TypeAlias = dict[str, str]

STATUS = "Status"
DESCRIPTION = "Description"
NO_RESPONDERS = "503"

_VERSION = b"NATS/1.0"
_CRLF = b"\r\n"


def encode_headers(headers: Headers) -> bytes:
    """The header block of an HPUB: version line, ``Key: Value`` lines, blank line.

    Raises:
        ValueError: a key or value holds a line break, or a key a colon or is empty.
    """
    lines = [b"NATS/1.0"]
    for key, value in headers.items():
        if not key or ":" in key or _breaks(key) or _breaks(value):
            raise ValueError(f"invalid header {key!r}")
        lines.append(f"{key}: {value}".encode())
    lines.append(b"")
    lines.append(b"")
    return _CRLF.join(lines)


def decode_headers(block: bytes | memoryview) -> Headers:
    """The headers in an HMSG header block, with any status as ``Status``/``Description``.

    Raises:
        ValueError: the block does not start with ``NATS/1.0``.
    """
    text = bytes(block).decode("utf-8", errors="replace")
    first, _, rest = text.partition("\r\n")
    if not first.startswith("NATS/1.0"):
        raise ValueError(f"not a NATS header block: {first[:40]!r}")
    headers: Headers = {}
    status_line = first[len("NATS/1.0") :].strip()
    if status_line:
        status, _, description = status_line.partition(" ")
        headers[STATUS] = status
        if description:
            headers[DESCRIPTION] = description.strip()
    for line in rest.split("\r\n"):
        if not line:
            continue
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip()] = value.strip()
    return headers


def _breaks(text: str) -> bool:
    return "\r" in text or "\n" in text
