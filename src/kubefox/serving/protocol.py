"""uvicorn's httptools protocol with the guards a server facing the internet needs.

uvicorn bounds how long an idle keep-alive connection stays open, but not how
long a client may take to *send* a request: a client that opens a connection
and then sends its headers a byte at a time (slowloris), or announces a body
and never sends it, holds a connection and its task for ever. Nor does it
bound the size of a request head: httptools buffers a header value of any
length before handing it over. So this subclass adds, per connection:

* a **header deadline**: the request line and headers must arrive within
  ``header_timeout`` seconds of the connection opening (or of the first byte
  of the next request on a kept-alive connection), else ``408`` and close;
* a **body deadline**: once the headers are in, the body must arrive within
  ``body_timeout`` seconds, else ``408`` and close (the application sees the
  client as gone and answers nothing);
* a **head size limit**: a request line plus headers longer than
  ``max_head_size`` bytes is ``431`` and close. It is counted twice: from the
  parser's callbacks (a head that arrives in one read), and from the reads
  that leave a head incomplete (a head that never ends is refused once that
  much has arrived, not buffered whole by httptools first).

Each answer is written like uvicorn's own ``400`` for a request it cannot
parse: plain text, ``connection: close``. A request being processed (its body
read, its answer pending) is never timed here: its event's TTL bounds it.

It also writes a response's head and its first body part in one system call
(:class:`_HeadHolder`): uvicorn writes each as it is sent, so every answer
cost two writes and two TCP segments.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

log = structlog.get_logger(__name__)

_STATUS_LINES = {
    408: b"HTTP/1.1 408 Request Timeout\r\n",
    431: b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
}


class _HeadTooLargeError(Exception):
    """Raised in a parser callback to stop parsing a head over the limit."""


# Where the current request of a connection is.
_HEAD = 0  # its request line and headers are arriving (or none has started yet)
_BODY = 1  # its headers are in, its body is arriving
_BUSY = 2  # it has been read; the application is answering
_IDLE = 3  # it has been answered; uvicorn's keep-alive timeout applies


class _HeadHolder:
    """The transport a request's cycle writes to: holds the response head for the body.

    uvicorn writes the head when the application starts the response and the
    body when it sends it, a moment later in the same turn of the event loop
    for any answer that is not streamed. The head is held until then and both
    go out in one ``writelines`` (one system call, one TCP segment); if no
    body follows within the turn (a streamed answer), the head goes out alone
    at its end. Anything else asked of the transport sends what is held first.
    """

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            self._held = data
            self._loop.call_soon(self.flush)
            return
        self._held = None
        self._transport.writelines((held, data))

    def flush(self) -> None:
        """Send the held head, if any."""
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held)

    def __getattr__(self, name: str) -> Any:
        self.flush()
        return getattr(self._transport, name)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` with header and body deadlines and a head size limit.

    The limits are class attributes: :func:`guarded_protocol` makes a subclass
    holding the values of one server, because uvicorn builds one protocol
    object per connection from a class. A request that arrives in one read
    costs no timer at all: deadlines are armed only while a head or a body is
    incomplete after a read (and once per connection, for its first request).
    """

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_head_size: int = 64 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._phase = _HEAD
        self._head_bytes = 0  # received in reads that left the head incomplete
        self._head_parsed = 0  # handed over by the parser for the current head
        self._head_too_large = False
        self._holder: _HeadHolder | None = None  # the current request's (see on_headers_complete)

    # -- the connection -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.transport.is_closing():
            return  # refused by uvicorn (a malformed request) or gone
        phase = self._phase
        if phase in (_HEAD, _IDLE):
            # _IDLE: bytes that began no request (uvicorn's keep-alive timer is
            # cancelled by any byte, so this deadline takes over).
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_size:
                self._refuse(431, f"the request head exceeds {self.max_head_size} bytes")
            elif self._deadline is None:
                self._arm(self.header_timeout)
        elif phase == _BODY and self._deadline is None:
            self._arm(self.body_timeout)

    # -- parser and cycle callbacks -------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = _HEAD
        self._head_parsed = 0

    def on_url(self, url: bytes) -> None:
        self._count_parsed(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_parsed(len(name) + len(value) + 4)
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        # httptools reports an exception raised in a callback as a parse error.
        if self._head_too_large:
            self._refuse(431, f"the request head exceeds {self.max_head_size} bytes")
        else:
            super().send_400_response(msg)

    def on_headers_complete(self) -> None:
        self._disarm()
        self._head_bytes = 0
        self._phase = _BODY
        super().on_headers_complete()
        # Before the cycle's task first runs: everything it writes goes through the holder.
        holder = self._holder = _HeadHolder(self.transport, self.loop)
        self.cycle.transport = holder  # type: ignore[assignment]

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()
        # Answered already (without waiting for the body), or being answered.
        cycle: RequestResponseCycle | None = self.cycle
        self._phase = _IDLE if cycle is not None and cycle.response_complete else _BUSY

    def on_response_complete(self) -> None:
        if self._holder is not None:
            self._holder.flush()  # before uvicorn may close the connection
        super().on_response_complete()
        if self._phase == _BUSY:  # not if a pipelined request has begun meanwhile
            self._phase = _IDLE

    # -- the guard ------------------------------------------------------------------------

    def _count_parsed(self, size: int) -> None:
        self._head_parsed += size
        if self._head_parsed > self.max_head_size:
            self._head_too_large = True
            raise _HeadTooLargeError

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        transport = self.transport
        if transport.is_closing() or self._phase == _BUSY:
            return
        # uvicorn types it as always set; it is None until the first head is complete.
        cycle: RequestResponseCycle | None = self.cycle
        answering = cycle is not None and not cycle.response_complete
        if self.pipeline or (self._phase != _BODY and answering):
            # A pipelined request is late while an earlier one is being answered:
            # an answer written now would interleave with that one.
            transport.close()
            return
        if self._phase != _BODY or cycle is None:
            self._refuse(408, f"the request headers did not arrive within {self.header_timeout:g}s")
            return
        if cycle.response_started:
            transport.close()  # the application answered without reading the whole body
            return
        # The application waits for the body: it now sees the client as gone and
        # answers nothing, so this answer is the only one.
        cycle.disconnected = True
        cycle.message_event.set()
        self._refuse(408, f"the request body did not arrive within {self.body_timeout:g}s")

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` with ``message`` as plain text and close the connection."""
        self._disarm()
        log.info("request.refused", status=status, reason=message, client=self.client)
        body = message.encode()
        default: list[tuple[bytes, bytes]] = self.server_state.default_headers
        self.transport.write(
            b"".join(
                [
                    _STATUS_LINES[status],
                    *(name + b": " + value + b"\r\n" for name, value in default),
                    b"content-type: text/plain; charset=utf-8\r\n",
                    b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                    b"connection: close\r\n\r\n",
                    body,
                ]
            )
        )
        self.transport.close()


def guarded_protocol(
    *, header_timeout: float, body_timeout: float, max_head_size: int
) -> type[GuardedHttpToolsProtocol]:
    """A :class:`GuardedHttpToolsProtocol` subclass holding these limits, for uvicorn's ``http``."""
    return type(
        "GuardedHttpToolsProtocol",
        (GuardedHttpToolsProtocol,),
        {
            "header_timeout": header_timeout,
            "body_timeout": body_timeout,
            "max_head_size": max_head_size,
        },
    )
