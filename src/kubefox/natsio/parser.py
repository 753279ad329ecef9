"""The NATS wire protocol, server to client: bytes in, one callback per operation out.

Pure logic, no I/O: :meth:`Parser.feed` takes whatever the socket delivered
(any split of the stream) and calls ``on_msg`` for every complete ``MSG`` or
``HMSG``, ``on_ping``/``on_pong``, ``on_info`` with the decoded JSON and
``on_err`` with the text of ``-ERR``. Everything happens synchronously inside
``feed``, so a message costs one parse and one call, no queue and no task.

A message's payload is a ``memoryview`` slice of the (immutable) bytes the
socket delivered, never a copy: it stays valid as long as the receiver keeps
it, and keeps that chunk of input alive meanwhile. Only a message split
across reads is joined first, once, when its last byte has arrived.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeAlias

from kubefox.natsio.errors import ProtocolError
from kubefox.natsio.headers import Headers, decode_headers

#: A payload as the parser hands it on: a zero-copy view, or bytes.
Payload: TypeAlias = bytes | memoryview

#: ``(sid, subject, reply, payload, headers)``: ``reply`` is ``""`` when absent.
MsgCallback: TypeAlias = Callable[[int, str, str, Payload, Headers | None], None]

#: The longest control line we wait for before calling the stream broken.
MAX_CONTROL_LINE = 64 * 1024

_CRLF = b"\r\n"
_M = ord("M")
_H = ord("H")
_P = ord("P")
_I = ord("I")
_PLUS = ord("+")
_MINUS = ord("-")


class Parser:
    """Incremental parser of the server's side of the protocol; see the module docstring."""

    __slots__ = (
        "_max_line",
        "_need",
        "_on_err",
        "_on_info",
        "_on_msg",
        "_on_ping",
        "_on_pong",
        "_pending",
        "_pending_size",
    )

    def __init__(
        self,
        *,
        on_msg: MsgCallback,
        on_ping: Callable[[], None],
        on_pong: Callable[[], None],
        on_info: Callable[[dict[str, Any]], None],
        on_err: Callable[[str], None],
        max_control_line: int = MAX_CONTROL_LINE,
    ) -> None:
        self._on_msg = on_msg
        self._on_ping = on_ping
        self._on_pong = on_pong
        self._on_info = on_info
        self._on_err = on_err
        self._max_line = max_control_line
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._need = 0

    def reset(self) -> None:
        """Forget any partial operation (a new connection starts a new stream)."""
        self._pending = []
        self._pending_size = 0
        self._need = 0

    @property
    def buffered(self) -> int:
        """Bytes received but not parsed yet (part of an operation)."""
        return self._pending_size

    def feed(self, data: bytes) -> None:  # noqa: PLR0912, PLR0915 - one loop, no calls per op
        """Parse ``data``, the next bytes of the stream, calling back for each operation.

        Raises:
            ProtocolError: the stream holds something that is not the NATS protocol.
        """
        if self._pending:
            self._pending.append(data)
            self._pending_size += len(data)
            if self._pending_size < self._need:
                return
            data = b"".join(self._pending)
            self.reset()
        size = len(data)
        view: memoryview | None = None
        pos = 0
        find = data.find
        while pos < size:
            eol = find(_CRLF, pos)
            if eol < 0:
                if size - pos > self._max_line:
                    raise ProtocolError(f"control line longer than {self._max_line} bytes")
                self._keep(data, pos, size - pos + 1)
                return
            op = data[pos]
            if op == _M and data.startswith(b"MSG ", pos):
                args = data[pos + 4 : eol].split()
                if len(args) == 3:
                    subject, sid, length = args
                    reply = ""
                elif len(args) == 4:
                    subject, sid, reply_b, length = args
                    reply = reply_b.decode()
                else:
                    raise ProtocolError(f"malformed MSG: {_show(data, pos, eol)}")
                start = eol + 2
                end = start + int(length)
                if end + 2 > size:
                    self._keep(data, pos, end + 2 - pos)
                    return
                if view is None:
                    view = memoryview(data)
                self._on_msg(int(sid), subject.decode(), reply, view[start:end], None)
                pos = end + 2
            elif op == _H and data.startswith(b"HMSG ", pos):
                args = data[pos + 5 : eol].split()
                if len(args) == 4:
                    subject, sid, head_length, length = args
                    reply = ""
                elif len(args) == 5:
                    subject, sid, reply_b, head_length, length = args
                    reply = reply_b.decode()
                else:
                    raise ProtocolError(f"malformed HMSG: {_show(data, pos, eol)}")
                start = eol + 2
                body = start + int(head_length)
                end = start + int(length)
                if end + 2 > size:
                    self._keep(data, pos, end + 2 - pos)
                    return
                if view is None:
                    view = memoryview(data)
                try:
                    headers = decode_headers(view[start:body])
                except ValueError as exc:
                    raise ProtocolError(str(exc)) from exc
                self._on_msg(int(sid), subject.decode(), reply, view[body:end], headers)
                pos = end + 2
            elif op == _P and data.startswith(b"PING", pos):
                pos = eol + 2
                self._on_ping()
            elif op == _P and data.startswith(b"PONG", pos):
                pos = eol + 2
                self._on_pong()
            elif op == _PLUS and data.startswith(b"+OK", pos):
                pos = eol + 2
            elif op == _MINUS and data.startswith(b"-ERR", pos):
                text = data[pos + 4 : eol].decode("utf-8", errors="replace").strip()
                pos = eol + 2
                self._on_err(text.strip("'"))
            elif op == _I and data.startswith(b"INFO ", pos):
                try:
                    info = json.loads(data[pos + 5 : eol])
                except ValueError as exc:
                    raise ProtocolError(f"malformed INFO: {_show(data, pos, eol)}") from exc
                pos = eol + 2
                self._on_info(info)
            else:
                raise ProtocolError(f"unknown operation: {_show(data, pos, eol)}")

    def _keep(self, data: bytes, pos: int, need: int) -> None:
        """Wait for ``need`` bytes from ``pos`` on before parsing again."""
        rest = data[pos:]
        self._pending = [rest]
        self._pending_size = len(rest)
        self._need = need


def _show(data: bytes, pos: int, eol: int) -> str:
    return repr(data[pos : min(eol, pos + 80)])
