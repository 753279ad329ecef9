"""The errors :mod:`kubefox.natsio` raises; callers translate them into kubefox errors.

The tree::

    NatsIOError                       every error of this package
    ├── ConnectError                  no server could be reached (also ConnectionError)
    ├── ConnectionClosedError         the client is closed, or the connection dropped
    │                                 under a flush (also ConnectionError)
    ├── OutboundBufferFullError       disconnected, and the reconnect buffer is full
    │                                 (also ConnectionError)
    ├── MaxPayloadError               the message exceeds the server's max_payload
    │                                 (also ValueError)
    ├── RequestTimeoutError           no reply, or no PONG, in time (also TimeoutError)
    ├── NoRespondersError             nobody subscribes to the request's subject
    │                                 (the server's "503" status)
    ├── ProtocolError                 the server sent something we cannot parse
    └── ServerError                   the server's ``-ERR`` text, in ``text``
        ├── AuthorizationError        authentication refused ("Authorization Violation", ...)
        └── PermissionsViolationError a publish or subscribe the user may not make
"""

from __future__ import annotations


class NatsIOError(Exception):
    """Base class of every error this package raises on purpose."""


class ConnectError(NatsIOError, ConnectionError):
    """No server of the list accepted a connection; ``__cause__`` is the last failure."""


class ConnectionClosedError(NatsIOError, ConnectionError):
    """The client is closed, or the connection was lost while an answer was awaited."""


class OutboundBufferFullError(NatsIOError, ConnectionError):
    """Disconnected, and the data waiting for the reconnect already fills its buffer."""


class MaxPayloadError(NatsIOError, ValueError):
    """A message larger than the server's ``max_payload``; ``size`` and ``max_payload`` say."""

    def __init__(self, size: int, max_payload: int) -> None:
        self.size = size
        self.max_payload = max_payload
        super().__init__(f"message of {size} bytes exceeds the server's max_payload {max_payload}")


class RequestTimeoutError(NatsIOError, TimeoutError):
    """No reply (or no PONG for a flush) within the timeout."""


class NoRespondersError(NatsIOError):
    """The server answered a request with status 503: nobody subscribes to ``subject``."""

    def __init__(self, subject: str) -> None:
        self.subject = subject
        super().__init__(f"no responders on {subject}")


class ProtocolError(NatsIOError):
    """The server sent a line we do not understand; the connection is dropped."""


class ServerError(NatsIOError):
    """An ``-ERR`` from the server; ``text`` is its message without the quotes."""

    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__(f"nats-server: {text}")


class AuthorizationError(ServerError):
    """The server refused the credentials (or their absence)."""


class PermissionsViolationError(ServerError):
    """The user may not publish to or subscribe to a subject; ``text`` names it."""


def server_error(text: str) -> ServerError:
    """The most specific :class:`ServerError` for the ``-ERR`` text ``text``."""
    lowered = text.lower()
    if "permissions violation" in lowered:
        return PermissionsViolationError(text)
    if "authorization" in lowered or "authentication" in lowered:
        return AuthorizationError(text)
    return ServerError(text)
