"""An in-memory Transport for Kit unit tests: the network is a few dicts and events."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog

from kubefox.core import codec, subjects
from kubefox.core.codec import encode_matched
from kubefox.core.errors import UnavailableError
from kubefox.core.events import Category, Component, Event, EventContext, MatchedEvent
from kubefox.core.values import Value
from kubefox.kit import Dependency, Kit, KitSettings, Kontext, Receiver
from kubefox.kit._kontext import Session

MAX_SIZE = codec.DEFAULT_MAX_EVENT_SIZE
HTTPSRV = Component(type="HTTPAdapter", name="httpsrv", hash="f00d", id="srv1")
CONTEXT = EventContext(platform="demo", virtual_environment="qa", app_deployment="hello-world-main")

#: Answers an outbound request: (subject, request event) -> encoded reply.
Responder = Callable[[str, Event], Awaitable[bytes]]


def settings(**overrides: object) -> KitSettings:
    """Settings for a test Kit; short graces so failures show fast."""
    values: dict[str, object] = {
        "platform": "demo",
        "app": "hello-world",
        "name": "frontend",
        "hash": "0123456789abcdef0123456789abcdef",
        "nats_url": "nats://127.0.0.1:1",
        "instance_id": "inst1",
        "heartbeat_interval": 30.0,
        "platform_grace": 5.0,
        "shutdown_grace": 5.0,
    }
    values.update(overrides)
    return KitSettings(**values)  # type: ignore[arg-type]


def request_event(
    *,
    ttl: float = 5.0,
    values: dict[str, object] | None = None,
    params: dict[str, object] | None = None,
    content: bytes = b"",
    content_type: str = "",
) -> Event:
    """An HTTP REQUEST event as httpsrv would send it."""
    base: dict[str, object] = {
        "method": "GET",
        "path": "/qa/hello",
        "url": "http://localhost:8080/qa/hello",
        "host": "localhost:8080",
        "header": {},
        "queryParam": {},
    }
    base.update(values or {})
    return Event(
        type="io.kubefox.http",
        category=Category.REQUEST,
        ttl=int(ttl * 1e9),
        context=CONTEXT,
        source=HTTPSRV,
        target=Component(type="KubeFox", app="hello-world", name="frontend"),
        values=base,
        params=params or {},
        content=content,
        content_type=content_type,
    )


async def no_responder(subject: str, event: Event) -> bytes:
    """Nobody listens: what nats-server's "no responders" status becomes."""
    raise UnavailableError("nothing is running that could take the request")


class FakeTransport:
    """A Transport whose subscription, replies, requests and registry live in memory."""

    def __init__(self, responder: Responder = no_responder) -> None:
        self.responder = responder
        self.receiver: Receiver | None = None
        self.subject = ""
        self.queue = ""
        self.subscribed = asyncio.Event()
        self.unsubscribed = asyncio.Event()
        self.registered = asyncio.Event()
        self.deregistered = asyncio.Event()
        self.registry: dict[str, bytes] = {}
        self.requests: list[tuple[str, Event, float]] = []
        self.close_count = 0
        self._replies: dict[str, asyncio.Future[bytes]] = {}
        self._inbox = itertools.count()
        self._up = asyncio.Event()
        self._up.set()
        self._down = asyncio.Event()
        #: Set when someone waits for the connection to come back while it is down.
        self.awaiting_connection = asyncio.Event()

    # -- driving the Kit from a test ---------------------------------------------------

    async def deliver(self, data: bytes, reply: str = "") -> None:
        """Hand ``data`` to the Kit as a message on its subject; waits while the Kit is full."""
        assert self.receiver is not None, "the Kit has not subscribed"
        await self.receiver(data, reply)

    def inbox(self) -> tuple[str, asyncio.Future[bytes]]:
        """A fresh reply subject and the future its reply will complete."""
        subject = f"_INBOX.test.{next(self._inbox)}"
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._replies[subject] = future
        return subject, future

    async def call(self, matched: MatchedEvent) -> Event:
        """Send ``matched`` to the Kit like httpsrv does and return the decoded reply (2 s max)."""
        reply, future = self.inbox()
        await self.deliver(encode_matched(matched, max_size=MAX_SIZE), reply)
        async with asyncio.timeout(2.0):
            return codec.decode(await future)

    def disconnect(self) -> None:
        """Act as if the NATS connection dropped."""
        self._up.clear()
        self._down.set()

    def reconnect(self) -> None:
        """Act as if the NATS connection came back."""
        self._down.clear()
        self._up.set()

    # -- the Transport protocol ----------------------------------------------------------

    async def subscribe(self, subject: str, *, queue: str, receiver: Receiver) -> None:
        self.subject, self.queue, self.receiver = subject, queue, receiver
        self.subscribed.set()

    async def unsubscribe(self) -> None:
        self.unsubscribed.set()

    async def request(
        self,
        subject: str,
        data: bytes,
        *,
        timeout: float,  # noqa: ASYNC109 - the Transport protocol's signature
    ) -> bytes:
        event = codec.decode(data)
        self.requests.append((subject, event, timeout))
        return await self.responder(subject, event)

    async def respond(self, reply: str, data: bytes, *, alone: bool = False) -> None:
        future = self._replies.pop(reply, None)
        if future is not None and not future.done():
            future.set_result(data)

    async def register(self, key: str, record: bytes) -> None:
        self.registry[key] = record
        self.registered.set()

    async def deregister(self, key: str) -> None:
        self.registry.pop(key, None)
        self.deregistered.set()

    async def wait_disconnected(self) -> None:
        await self._down.wait()

    async def wait_connected(self) -> None:
        if not self._up.is_set():
            self.awaiting_connection.set()
        await self._up.wait()

    async def close(self) -> None:
        self.close_count += 1


@contextlib.asynccontextmanager
async def serving(
    kit: Kit, transport: FakeTransport, kit_settings: KitSettings | None = None
) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``kit`` on ``transport`` until the block ends, then stop it and wait for the end."""
    run = asyncio.create_task(kit.run(kit_settings or settings(), transport=transport))
    registered = asyncio.create_task(transport.registered.wait())
    try:
        await asyncio.wait({run, registered}, timeout=2.0, return_when=asyncio.FIRST_COMPLETED)
        if run.done():
            run.result()  # raises why it ended
        assert registered.done(), "the Kit did not register within 2s"
        yield run
    finally:
        registered.cancel()
        kit.stop()
        async with asyncio.timeout(5.0):
            await run


def kontext(
    event: Event,
    *,
    env: dict[str, Value] | None = None,
    remaining: float = 5.0,
    transport: FakeTransport | None = None,
    dependencies: tuple[Dependency, ...] = (),
) -> Kontext:
    """A Kontext for ``event`` outside a running Kit, with ``remaining`` seconds left."""
    s = settings()
    session = Session(
        identity=Component(type="KubeFox", app=s.app, name=s.name, hash=s.hash, id=s.instance_id),
        broker_subject=subjects.broker(s.platform, s.app, s.name, s.hash, s.instance_id),
        max_event_size=MAX_SIZE,
        transport=transport if transport is not None else FakeTransport(),
        dependencies={d.name: d for d in dependencies},
        logger=structlog.get_logger("test"),
        clock=time.monotonic,
    )
    return Kontext(event, env=env or {}, deadline=time.monotonic() + remaining, session=session)
