"""The port through which a running Kit reaches the platform.

A Kit only ever needs a handful of things from the network: to receive the
events addressed to its component, to send requests to its broker subject and
wait for the reply, to answer whoever asked, to keep its registration record
fresh, and to know whether the connection is up. Keeping that behind a
``Protocol`` means the NATS adapter (``kubefox.kit._natsio``, the only kit module
that speaks NATS) can be swapped for an in-memory one in tests and in
``kubefox.kit.testing``. Every method raises kubefox errors only: adapters wrap
their library's exceptions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeAlias, runtime_checkable

#: Called once per message received on a subscription: its data and its reply subject
#: (``""`` when the sender expects no reply). The transport awaits it before passing on
#: the next message, which is how a full Kit applies back-pressure.
Receiver = Callable[[bytes, str], Awaitable[None]]

#: A message's data as a transport may hand it on: bytes, or a view of the bytes it read.
Payload: TypeAlias = bytes | memoryview

#: Called synchronously, inside the transport's read, once per message: its data and
#: its reply subject. It must not block: it starts a task for whatever waits.
Deliver = Callable[[Payload, str], None]


class Transport(Protocol):
    """How a Kit talks to the platform; every method raises kubefox errors only."""

    async def subscribe(self, subject: str, *, queue: str, receiver: Receiver) -> None:
        """Start passing every message on ``subject`` (in queue group ``queue``) to ``receiver``.

        Raises:
            BrokerUnavailableError: if the subscription cannot be made.
        """
        ...

    async def unsubscribe(self) -> None:
        """Stop receiving: no new messages arrive, those already received are still passed on.

        Never raises; a transport that is already closed has nothing to stop.
        """
        ...

    async def request(
        self,
        subject: str,
        data: bytes,
        *,
        timeout: float,  # noqa: ASYNC109 - the transport's request owns the wait and its reply inbox
    ) -> bytes:
        """Send ``data`` to ``subject`` and return the reply's data.

        Raises:
            UnavailableError: nobody is listening on ``subject`` (answered at once).
            DeadlineExceededError: no reply came within ``timeout`` seconds.
            BrokerUnavailableError: the connection is closed or broken.
        """
        ...

    async def respond(self, reply: str, data: bytes, *, alone: bool = False) -> None:
        """Send ``data`` to the ``reply`` subject of a received message.

        ``alone``: no other event is being handled, so nothing else is about
        to be sent with it; a transport that gathers writes may send it at once.

        Raises:
            BrokerUnavailableError: the connection is closed or broken.
        """
        ...

    async def register(self, key: str, record: bytes) -> None:
        """Put (or refresh) this instance's registration ``record`` under ``key``.

        Raises:
            BrokerUnavailableError: the registry cannot be reached.
        """
        ...

    async def deregister(self, key: str) -> None:
        """Remove the registration record under ``key``; a missing record is fine.

        Raises:
            BrokerUnavailableError: the registry cannot be reached.
        """
        ...

    async def wait_disconnected(self) -> None:
        """Return once the connection is down (at once if it is down now)."""
        ...

    async def wait_connected(self) -> None:
        """Return once the connection is up (at once if it is up now)."""
        ...

    async def close(self) -> None:
        """Close the connection; idempotent, never raises."""
        ...


@runtime_checkable
class DirectSubscriber(Protocol):
    """A transport that can hand messages on synchronously, inside its read (no task each)."""

    async def subscribe_direct(self, subject: str, *, queue: str, deliver: Deliver) -> None:
        """Start calling ``deliver`` for every message on ``subject`` (queue group ``queue``).

        Raises:
            BrokerUnavailableError: if the subscription cannot be made.
        """
        ...
