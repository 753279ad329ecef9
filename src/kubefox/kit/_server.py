"""One running component instance: receive events, run handlers, answer, stay registered.

A transport hands a subscription's messages on one at a time, so a handler
that awaits anything (a call to another component) would serialise the whole
component (DESIGN.md §7). The server therefore runs each event in one task of
its own, at most ``max_in_flight`` at once, and waits for them all before it
returns. A transport that calls the server inside its socket read
(:class:`DirectSubscriber`, the natsio one) gets the task started right
there; while every slot is taken, events are held in arrival order until one
frees up. A transport that awaits the receiver instead waits for a slot, and
the back-pressure reaches NATS.

Shutdown follows STYLE §2.6: stop accepting (drain the subscription), let
in-flight handlers finish within the shutdown grace, cancel the rest,
deregister. A watchdog ends the run with :class:`BrokerUnavailableError` when
the NATS connection stays lost longer than the platform grace, so a component
cut off from its platform exits instead of hanging.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import Token
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec
import structlog

from kubefox.core import codec, subjects
from kubefox.core.codec import decode_matched
from kubefox.core.errors import (
    BrokerUnavailableError,
    DeadlineExceededError,
    KubeFoxError,
    NotFoundError,
)
from kubefox.core.events import (
    VAL_HEADER,
    VAL_STATUS,
    VAL_STATUS_CODE,
    Category,
    Component,
    ComponentType,
    Event,
    MatchedEvent,
    SpanContext,
)
from kubefox.kit._deadlines import Deadlines
from kubefox.kit._declarations import Dependency, Handler, RouteSpec
from kubefox.kit._kontext import Kontext, Session
from kubefox.kit._messages import Response, status_text
from kubefox.kit._settings import KitSettings
from kubefox.kit._transport import DirectSubscriber, Payload, Transport
from kubefox.telemetry.attributes import ROUTE_ID
from kubefox.telemetry.logging import bind_request

if TYPE_CHECKING:  # the OpenTelemetry SDK loads only when the component has telemetry on
    from opentelemetry.context import Context as OtelContext

    from kubefox.telemetry.metrics import HopMetrics
    from kubefox.telemetry.tracing import HopAttributes, HopTracer

_NS = 1_000_000_000
DEFAULT_ROUTE = -1
# Events held while every slot is taken; past it they are dropped (the callers'
# deadlines answer them), as nats-py's pending limit did.
_MAX_HELD = 65_536


#: The W3C ``sampled`` trace flag.
_SAMPLED = 0x01


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


def _sampled(event: Event) -> bool:
    parent = event.parent_span
    return parent is not None and bool(parent.flags & _SAMPLED)


class _SpanCode(NamedTuple):
    """What a sampled event needs from telemetry, looked up once."""

    attributes: type[HopAttributes]
    enter: Callable[[SpanContext], Token[OtelContext] | None]
    leave: Callable[[Token[OtelContext]], None]


def _span_code() -> _SpanCode:
    # Imported only with a tracer: with telemetry off a component never loads OpenTelemetry.
    from kubefox.telemetry import user_spans
    from kubefox.telemetry.tracing import HopAttributes

    return _SpanCode(HopAttributes, user_spans.enter, user_spans.leave)


def registration_key(settings: KitSettings) -> str:
    """``<platform>.<app>.<name>.<hash>.<instance>``: the instance's registry key."""
    return ".".join(
        (settings.platform, settings.app, settings.name, settings.hash, settings.instance_id)
    )


class Server:
    """Serves one Kit's handlers on a transport until stopped or cut off."""

    def __init__(
        self,
        *,
        settings: KitSettings,
        transport: Transport,
        routes: Sequence[RouteSpec],
        default: Handler | None,
        dependencies: Mapping[str, Dependency],
        definition: Mapping[str, Any],
        tracer: HopTracer | None = None,
        metrics: HopMetrics | None = None,
    ) -> None:
        self._settings = settings
        self._tracer = tracer
        self._metrics = metrics
        self._span_code = code = _span_code() if tracer is not None else None
        # Per route: its spans' name and the attributes its events' spans share.
        self._span_routes: dict[int, HopAttributes] = {}
        if code is not None:
            named = [
                *((i, route.rule) for i, route in enumerate(routes)),
                (DEFAULT_ROUTE, "Default route"),
            ]
            self._span_routes = {
                i: code.attributes(kind="server", extra={ROUTE_ID: i}, name=name)
                for i, name in named
            }
        self._transport = transport
        self._handlers = [route.handler for route in routes]
        self._default = default
        self._definition = definition
        self._identity = Component(
            type=ComponentType.KUBEFOX,
            app=settings.app,
            name=settings.name,
            hash=settings.hash,
            id=settings.instance_id,
        )
        self._log: structlog.typing.FilteringBoundLogger = structlog.get_logger("kubefox.kit").bind(
            app=settings.app, component=settings.name
        )
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._clock = loop.time
        self._deadlines = Deadlines(loop)
        self._session = Session(
            identity=self._identity,
            broker_subject=subjects.broker(
                settings.platform, settings.app, settings.name, settings.hash, settings.instance_id
            ),
            max_event_size=settings.max_event_size,
            transport=transport,
            dependencies=dict(dependencies),
            logger=self._log,
            clock=self._clock,
            tracer=tracer,
        )
        self._key = registration_key(settings)
        self._started_at = _now()
        self._free = settings.max_in_flight  # task slots left
        self._room = asyncio.Event()  # set while a slot is free
        self._room.set()
        self._held: collections.deque[tuple[Payload, str]] = collections.deque()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._accepting = False

    @property
    def in_flight(self) -> int:
        """Events being handled right now."""
        return len(self._in_flight)

    async def serve(self, stopping: asyncio.Event) -> None:
        """Serve until ``stopping`` is set, then shut down gracefully.

        Raises:
            BrokerUnavailableError: the connection was lost for longer than the
                platform grace, or the subscription could not be made.
        """
        s = self._settings
        subject = subjects.component(s.platform, s.app, s.name, s.hash)
        queue = subjects.component_queue(s.platform, s.app, s.name, s.hash)
        try:
            failure = await self._serve(stopping, subject, queue)
        finally:
            # Handler tasks are the loop's, not the TaskGroup's (see _start): wait for them too.
            await self._ended()
            self._deadlines.close()
        if failure is not None:
            self._log.error("kit.failed", error=str(failure))
            raise failure
        await self._deregister()
        self._log.info("kit.stopped")

    async def _serve(
        self, stopping: asyncio.Event, subject: str, queue: str
    ) -> KubeFoxError | None:
        """Accept events until stopped or cut off; the failure that ended it, if any."""
        failure: KubeFoxError | None = None
        async with asyncio.TaskGroup() as tasks:
            watchdog = tasks.create_task(self._watch(stopping))
            heartbeat: asyncio.Task[None] | None = None
            try:
                try:
                    self._accepting = True
                    await self._subscribe(subject, queue)
                    await self._register()
                    heartbeat = tasks.create_task(self._heartbeat())
                    self._log.info(
                        "kit.started", subject=subject, instance=self._settings.instance_id
                    )
                    await stopping.wait()
                except KubeFoxError as exc:
                    failure = exc
                if watchdog.done():
                    failure = watchdog.result()
                self._log.info("kit.stopping", in_flight=self.in_flight)
                if heartbeat is not None:
                    heartbeat.cancel()
                if failure is None:
                    await self._drain()
            finally:
                # Also when cancelled from outside: nothing new starts, nothing is left behind.
                self._accepting = False
                self._held.clear()
                for task in (*self._in_flight, watchdog, heartbeat):
                    if task is not None:
                        task.cancel()
        return failure

    async def _ended(self) -> None:
        """Wait until every handler task (cancelled by now, or done) has ended."""
        running = [task for task in self._in_flight if not task.done()]
        if running:
            await asyncio.wait(running)

    # -- receiving ----------------------------------------------------------------------

    async def _subscribe(self, subject: str, queue: str) -> None:
        transport = self._transport
        if isinstance(transport, DirectSubscriber):
            await transport.subscribe_direct(subject, queue=queue, deliver=self._deliver)
        else:
            await transport.subscribe(subject, queue=queue, receiver=self._receive)

    async def _receive(self, data: bytes, reply: str) -> None:
        """The port's receiver: wait for a free slot (the transport waits on us), then start."""
        while self._free <= 0:
            self._room.clear()
            await self._room.wait()
        self._deliver(data, reply)

    def _deliver(self, data: Payload, reply: str) -> None:
        """Start the event's task now, or hold the event while every slot is taken."""
        if not self._accepting:
            self._log.warning("event.dropped", reason="stopping")
            return
        if self._free > 0 and not self._held:
            self._start(data, reply)
        elif len(self._held) < _MAX_HELD:
            self._held.append((data, reply))
            self._idle.clear()
        else:
            self._log.warning("event.dropped", reason="overloaded", held=len(self._held))

    def _start(self, data: Payload, reply: str) -> None:
        # A task of the loop's, not of serve's TaskGroup: _handle never raises, so the
        # group's bookkeeping (a Python wrapper and a second done callback per event)
        # would buy nothing; serve cancels and waits for these itself.
        task = self._loop.create_task(self._handle(data, reply))
        self._free -= 1
        self._in_flight.add(task)
        self._idle.clear()
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._free += 1
        held = self._held
        while held and self._free > 0 and self._accepting:
            self._start(*held.popleft())
        if self._free > 0:
            self._room.set()
        if not self._in_flight and not held:
            self._idle.set()

    async def _handle(self, data: Payload, reply: str) -> None:
        try:
            answer = await self._process(data)
            if reply:
                # The only event in flight: its reply has nothing to be gathered with.
                alone = len(self._in_flight) == 1
                await self._transport.respond(reply, answer, alone=alone)
        except KubeFoxError as exc:
            self._log.warning("event.reply_failed", error=str(exc))
        except Exception:  # noqa: BLE001 - a task boundary: log it, nobody else would
            self._log.exception("event.failed")

    async def _process(self, data: Payload) -> bytes:
        try:
            matched = decode_matched(bytes(data), max_size=self._settings.max_event_size)
        except KubeFoxError as exc:
            self._log.warning("event.rejected", error=str(exc))
            return self._error(Event(), exc)
        event = matched.event
        deadline = self._clock() + event.ttl / _NS
        # Unsampled and unmeasured (the usual case): no span, no clock, one coroutine less.
        sampled = self._tracer is not None and _sampled(event)
        if sampled or self._metrics is not None:
            return await self._observed(matched, deadline, sampled=sampled)
        try:
            response = await self._dispatch(matched, deadline)
        except KubeFoxError as exc:
            return self._error(event, exc)
        return self._response(event, response, deadline)

    async def _observed(self, matched: MatchedEvent, deadline: float, *, sampled: bool) -> bytes:
        """:meth:`_process` inside a server span (when the trace is sampled), measured.

        In a sampled trace the handler's own OpenTelemetry spans are children
        of its span (:mod:`kubefox.telemetry.user_spans`).
        """
        started = time.perf_counter()
        event = matched.event
        ids: SpanContext | None = None
        start_ns = 0
        parent_id = b""
        joined: Token[OtelContext] | None = None
        parent = event.parent_span
        tracer = self._tracer
        code = self._span_code
        if sampled and tracer is not None and code is not None and parent is not None:
            start_ns = time.time_ns()
            ids, parent_id = tracer.child(parent)
            # The handler's log lines (any logger's) carry the ids, and its own spans join.
            # Bound for the rest of the event's task, which is its own: nothing to undo.
            bind_request(event.id, ids)
            joined = code.enter(ids)
        failure: KubeFoxError | None = None
        try:
            response = await self._dispatch(matched, deadline, ids)
        except KubeFoxError as exc:
            failure = exc
            status = int(exc.http_status)
            answer = self._error(event, exc)
        else:
            status = response.status
            answer = self._response(event, response, deadline)
        finally:
            if joined is not None and code is not None:
                code.leave(joined)
        if ids is not None and tracer is not None:
            # Handed on compact: the span is built when read (HopAttributes.end).
            kind = self._span_route(matched.route_id)
            kind.end(
                tracer,
                kind.key(event),
                event.id,
                event.parent_id,
                ids,
                parent_id,
                start_ns,
                status,
                failure,
            )
        metrics = self._metrics
        if metrics is not None:
            context = event.context
            key = metrics.key(
                "component",
                self._identity.app,
                self._identity.name,
                context.app_deployment,
                context.virtual_environment,
                status,
            )
            metrics.observe(time.perf_counter() - started, key)
            if failure is not None:
                metrics.failed_key(key, failure.code)
        return answer

    def _span_route(self, route_id: int) -> HopAttributes:
        """The name and attributes of the spans of ``route_id``'s events."""
        route = self._span_routes.get(route_id)
        if route is None:  # pragma: no cover - the matcher only yields routes it was given
            code = self._span_code
            if code is None:
                raise RuntimeError("spans of a server without a tracer")
            route = code.attributes(kind="server", extra={ROUTE_ID: route_id}, name="unknown")
        return route

    async def _dispatch(
        self, matched: MatchedEvent, deadline: float, span: SpanContext | None = None
    ) -> Response:
        """Run the handler ``matched`` selects; every failure is raised as a KubeFoxError."""
        event = matched.event
        if event.ttl <= 0:
            raise DeadlineExceededError("event arrived with no time left")
        # Typed handlers return a Response; untyped code may not, and is checked below.
        handler: Callable[[Kontext], Awaitable[object]] = self._handler(matched.route_id)
        kontext = Kontext(
            event, env=matched.env, deadline=deadline, session=self._session, span=span
        )
        # The deadline cancels this task (asyncio.timeout's way, without its per-event cost).
        task = asyncio.current_task(self._loop)
        if task is None:  # pragma: no cover - handlers always run in the event's task
            raise KubeFoxError("handler called outside its task")
        cancelling = task.cancelling()
        self._deadlines.watch(task, deadline)
        expired = False
        try:
            try:
                response = await handler(kontext)
            finally:
                expired = self._deadlines.forget(task)
        except KubeFoxError as exc:
            self._log.info("handler.error", event_id=event.id, error=str(exc), code=exc.code)
            raise
        except asyncio.CancelledError:
            # Only the deadline's own cancel becomes an answer; any other (shutdown) goes on.
            if not expired or task.cancelling() > cancelling:
                raise
            self._log.info("handler.timed_out", event_id=event.id)
            raise DeadlineExceededError(
                "the handler did not answer within the event's TTL"
            ) from None
        except Exception:  # noqa: BLE001 - a handler bug: log it here, never leak it to the caller
            raise self._unexpected(event) from None
        if not isinstance(response, Response):
            what = "no response" if response is None else f"a {type(response).__name__}"
            self._log.error("handler.failed", event_id=event.id, returned=what)
            raise KubeFoxError(f"handler returned {what}")
        return response

    def _handler(self, route_id: int) -> Handler:
        if route_id == DEFAULT_ROUTE:
            if self._default is None:
                raise NotFoundError("default handler not found")
            return self._default
        if 0 <= route_id < len(self._handlers):
            return self._handlers[route_id]
        raise NotFoundError("invalid route id", route_id=route_id)

    def _response(self, request: Event, response: Response, deadline: float) -> bytes:
        values: dict[str, Any] = {
            VAL_STATUS_CODE: response.status,
            VAL_STATUS: status_text(response.status),
        }
        if response.headers:
            values[VAL_HEADER] = response.headers
        event = request.child(
            category=Category.RESPONSE,
            source=self._identity,
            target=request.source,
            ttl=max(0, int((deadline - self._clock()) * _NS)),
            values=values,
            content=response.content,
            content_type=response.content_type,
        )
        try:
            # The values are the Kit's own (a checked status, canonical header lists).
            return codec.encode(event, max_size=self._settings.max_event_size, trusted=True)
        except KubeFoxError as exc:
            self._log.warning("response.rejected", event_id=request.id, error=str(exc))
            return self._error(request, exc)

    def _unexpected(self, request: Event) -> KubeFoxError:
        """Log the exception being handled, with its traceback; the error to answer with."""
        self._log.exception("handler.failed", event_id=request.id)
        return KubeFoxError(f"handler failed (event {request.id})")

    def _error(self, request: Event, error: KubeFoxError) -> bytes:
        event = codec.error_event(request, error, source=self._identity)
        return codec.encode(event, max_size=self._settings.max_event_size)

    # -- lifecycle ----------------------------------------------------------------------

    async def _drain(self) -> None:
        try:
            async with asyncio.timeout(self._settings.shutdown_grace):
                await self._transport.unsubscribe()
                await self._idle.wait()
        except TimeoutError:
            self._log.warning("kit.drain_timed_out", cancelled=self.in_flight)

    async def _watch(self, stopping: asyncio.Event) -> BrokerUnavailableError | None:
        grace = self._settings.platform_grace
        while True:
            await self._transport.wait_disconnected()
            self._log.warning("connection.lost", grace=grace)
            try:
                async with asyncio.timeout(grace):
                    await self._transport.wait_connected()
            except TimeoutError:
                stopping.set()
                return BrokerUnavailableError(
                    f"the connection to NATS was lost for more than {grace:g}s"
                )
            self._log.info("connection.restored")

    def _record(self) -> bytes:
        s = self._settings
        return msgspec.json.encode(
            {
                "platform": s.platform,
                "app": s.app,
                "name": s.name,
                "hash": s.hash,
                "id": s.instance_id,
                "pid": os.getpid(),
                "startedAt": self._started_at,
                "heartbeatAt": _now(),
                "definition": self._definition,
            }
        )

    async def _register(self) -> None:
        try:
            async with asyncio.timeout(self._settings.heartbeat_interval):
                await self._transport.register(self._key, self._record())
        except (KubeFoxError, TimeoutError) as exc:
            self._log.warning("registration.failed", key=self._key, error=str(exc))

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self._settings.heartbeat_interval)
            await self._register()

    async def _deregister(self) -> None:
        try:
            async with asyncio.timeout(self._settings.heartbeat_interval):
                await self._transport.deregister(self._key)
        except (KubeFoxError, TimeoutError) as exc:
            self._log.warning("deregistration.failed", key=self._key, error=str(exc))
