"""What :mod:`kubefox.kit.testing` hands back: the calls a handler made and the answer it gave.

Both are read-only views over events, so a test asserts on exactly what
crossed the component's boundary, in the shapes users already know from
:class:`~kubefox.kit.Kontext` and :class:`~kubefox.kit.Reply`.
"""

from __future__ import annotations

from typing import Any

from kubefox.core import codec
from kubefox.core.errors import KubeFoxError
from kubefox.core.events import (
    TYPE_ERROR,
    VAL_HEADER,
    VAL_METHOD,
    VAL_PATH,
    VAL_QUERY,
    VAL_STATUS_CODE,
    Event,
)
from kubefox.core.values import to_int
from kubefox.kit._headers import first, lookup, string_lists
from kubefox.kit._messages import parse_json

#: The content type httpsrv writes for an error, as Go's ``http.Error`` does.
ERROR_CONTENT_TYPE = "text/plain; charset=utf-8"


class Call:
    """One request a handler sent to a dependency, as it left the component.

    Attributes:
        dependency: The name of the dependency it was sent to.
        event: The REQUEST event as sent.
        timeout: Seconds the component was willing to wait for the reply.
    """

    __slots__ = ("dependency", "event", "timeout")

    def __init__(self, *, dependency: str, event: Event, timeout: float) -> None:
        self.dependency = dependency
        self.event = event
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"Call({self.dependency!r}, {self.method or '-'} {self.path or '-'})"

    @property
    def method(self) -> str:
        """The method set on the request, or ``""``."""
        raw = self.event.values.get(VAL_METHOD)
        return raw if isinstance(raw, str) else ""

    @property
    def path(self) -> str:
        """The path set on the request, or ``""``."""
        raw = self.event.values.get(VAL_PATH)
        return raw if isinstance(raw, str) else ""

    @property
    def headers(self) -> dict[str, list[str]]:
        """The headers set on the request: canonical names to lists of values."""
        return string_lists(self.event.values.get(VAL_HEADER))

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        return first(lookup(self.headers, name))

    @property
    def query(self) -> dict[str, list[str]]:
        """The query parameters set on the request."""
        return string_lists(self.event.values.get(VAL_QUERY))

    @property
    def content_type(self) -> str:
        """The media type of the body."""
        return self.event.content_type

    @property
    def body(self) -> bytes:
        """The body as bytes."""
        return self.event.content

    @property
    def text(self) -> str:
        """The body decoded as UTF-8; undecodable bytes become U+FFFD."""
        return self.event.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON.

        Raises:
            UnknownContentTypeError: the content type is not JSON or the body does not parse.
        """
        return parse_json(self.event.content_type, self.event.content)


class ClientResponse:
    """What an HTTP client would have received for a :meth:`KitClient.request`.

    A handler's :class:`~kubefox.kit.Response` becomes its status, headers
    (``Content-Type`` included) and body; an error becomes its HTTP status and
    its text as a ``text/plain`` body, as httpsrv writes it.

    Attributes:
        request: The REQUEST event the component received.
        event: The reply event it answered with (``io.kubefox.error`` for errors).
        error: The error the component answered with, or ``None``.
        status: The HTTP status code.
        headers: Canonical header names to lists of values.
        content: The body.
    """

    __slots__ = ("content", "error", "event", "headers", "request", "status")

    def __init__(self, request: Event, event: Event) -> None:
        self.request = request
        self.event = event
        self.error: KubeFoxError | None = None
        if event.type == TYPE_ERROR:
            self.error = codec.error_from_event(event)
            self.status = int(self.error.http_status)
            self.headers = {"Content-Type": [ERROR_CONTENT_TYPE]}
            self.content = str(self.error).encode()
            return
        raw = event.values.get(VAL_STATUS_CODE)
        self.status = 200 if raw is None else to_int(raw)
        self.headers = dict(string_lists(event.values.get(VAL_HEADER)))
        if event.content_type:
            self.headers["Content-Type"] = [event.content_type]
        self.content = event.content

    def __repr__(self) -> str:
        return f"<ClientResponse [{self.status}]>"

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        return first(lookup(self.headers, name))

    @property
    def content_type(self) -> str:
        """The media type of the body, or ``""``."""
        return self.header("Content-Type") or ""

    @property
    def text(self) -> str:
        """The body decoded as UTF-8; undecodable bytes become U+FFFD."""
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON.

        Raises:
            UnknownContentTypeError: the content type is not JSON or the body does not parse.
        """
        return parse_json(self.content_type, self.content)
