"""What a subscriber and a requester get: the handler type, subscriptions, replies."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, TypeAlias

from kubefox.natsio.headers import Headers
from kubefox.natsio.parser import Payload

if TYPE_CHECKING:
    from kubefox.natsio.client import Client

#: Called for each message: ``(subject, reply, data, headers)``; ``reply`` is ``""``
#: when absent, ``headers`` ``None`` when the message has none. ``data`` may be a
#: view into the connection's read buffer: copy it (``bytes(data)``) to keep it long.
Handler: TypeAlias = Callable[[str, str, Payload, Headers | None], None]
#: Called with each error that is not raised to a caller (``-ERR``, a failed
#: reconnect attempt, an exception a handler raised).
ErrorCallback: TypeAlias = Callable[[Exception], None]
#: Called on a state change (disconnected, reconnected).
StateCallback: TypeAlias = Callable[[], None]


class Msg(NamedTuple):
    """A reply to :meth:`Client.request`."""

    subject: str
    reply: str
    data: Payload
    headers: Headers | None


class Subscription:
    """Interest in a subject; :meth:`unsubscribe` ends it (also across reconnects)."""

    __slots__ = ("_client", "callback", "queue", "sid", "subject")

    def __init__(
        self, client: Client, sid: int, subject: str, queue: str, callback: Handler
    ) -> None:
        self._client = client
        self.sid = sid
        self.subject = subject
        self.queue = queue
        self.callback = callback

    @property
    def active(self) -> bool:
        """Whether messages are still delivered to the callback."""
        return self._client._subs.get(self.sid) is self

    def unsubscribe(self) -> None:
        """Stop the deliveries; messages the server already sent are dropped. Idempotent."""
        self._client._unsubscribe(self)

    async def drain(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - a flush's bound
        """Unsubscribe; what the server sent before it saw that is still delivered.

        See :meth:`Client.drain_subscriptions`. Never raises for a dead connection.
        """
        await self._client.drain_subscriptions([self], timeout)

    def line(self) -> bytes:
        """The SUB operation that makes this subscription on a connection."""
        queue = f" {self.queue}" if self.queue else ""
        return f"SUB {self.subject}{queue} {self.sid}\r\n".encode()

    def __repr__(self) -> str:
        return f"Subscription(sid={self.sid}, subject={self.subject!r}, queue={self.queue!r})"
