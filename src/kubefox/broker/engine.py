"""The broker: checks and routes every request a component sends to another (DESIGN §3 step 2).

Brokers are stateless and share the load: each subscribes to every
instance's outbox, ``kf.<platform>.brk.>``, in one queue group, so NATS hands
each event to exactly one of them. For every event the broker decodes it,
takes the sender's identity from the subject it arrived on (which, with
authentication on, only that instance may publish to), lets the
:class:`~kubefox.router.Router` run the zero-trust checks and pick the target,
takes its own processing time off the TTL and publishes the
:class:`~kubefox.core.events.MatchedEvent` to the target's ``cmp`` subject.

Replies skip the broker: the event is published with the requester's own
reply inbox, so the target answers the requester directly, one NATS delivery
fewer per request (DESIGN §7). The price is that nats-server reports "no
responders" only to the publisher of a request, and only when the publisher
itself subscribes to the reply subject: a republished request with nobody
listening would leave the requester waiting for its whole TTL. So a target
subject the broker has not seen answer during the last
:data:`ANSWERED_FOR` seconds gets the request through the broker's own inbox
instead: nobody listening is then known at once and the requester gets an
``Unavailable`` (code 15) error event; otherwise the broker passes the reply
on and sends the next requests for that subject straight through.

Every refused event is answered, if it has a reply subject, with an
``io.kubefox.error`` event from the broker's own identity, except a spent TTL:
the requester's own deadline reports that one.
"""

from __future__ import annotations

import asyncio
import collections
import secrets
import time
from collections.abc import Awaitable, Coroutine
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from kubefox.broker.http_adapter import HttpAdapterCaller
from kubefox.broker.natsio_transport import NatsClient, NatsioTransport
from kubefox.broker.settings import BrokerSettings
from kubefox.core import codec, subjects
from kubefox.core.errors import (
    DeadlineExceededError,
    KubeFoxError,
    UnauthorizedError,
    UnavailableError,
)
from kubefox.core.events import Category, Component, ComponentType, Event, SpanContext
from kubefox.natsio import Payload
from kubefox.router import ResourceView, Router
from kubefox.store.secrets import ResourceSecrets
from kubefox.telemetry.tracing import HopAttributes, KindKey

if TYPE_CHECKING:  # the OpenTelemetry SDK loads only when telemetry is on
    from kubefox.telemetry.metrics import HopMetrics
    from kubefox.telemetry.tracing import HopTracer

_HTTP_ADAPTER = ComponentType.HTTP_ADAPTER.value

#: Seconds a target subject counts as having someone listening after it last answered.
ANSWERED_FOR = 2.0

# Bound on each per-subject cache; clearing one only costs a re-parse or a detour.
_MAX_CACHED = 10_000
# Messages held while every task slot is taken; past it they are dropped (as nats-py's
# pending limit did), and the requesters' deadlines answer them.
_MAX_HELD = 65_536

log = structlog.get_logger(__name__)


#: How a sampled event's routing started: the broker's span context, its parent's id, its start.
_Started = tuple[SpanContext, bytes, int]


def _span_name(kind: KindKey) -> str:
    """``Route <category> from <sender's group key>``: the name of the broker's spans."""
    category, _, _, _, source = kind
    return f"Route {category.name} from {source.group_key if source is not None else ''}"


class _Relay(msgspec.Struct, frozen=True, gc=False):
    """A checked and routed request: where it goes, what is sent, the TTL left, the target.

    A struct, not a NamedTuple: one is built per relayed event, and a struct
    is built in C (gc=False: it refers to no container that could cycle back).
    """

    destination: str
    payload: bytes
    ttl: int
    target: Component


class Broker:
    """Routes the requests components send each other; run one or many per platform.

    Args:
        settings: the broker's settings.
        router: the router to check and route with; by default the broker builds
            one over a :class:`~kubefox.router.ResourceView` of the JetStream
            bucket ``settings.bucket`` on its own connection, and keeps it current.
        client: a connected :mod:`kubefox.natsio` client to use (the caller keeps owning it);
            by default the broker connects to ``settings.nats_url`` itself.
        tracer: records a span per routed event whose trace is sampled; the
            relayed event's ``parent_span`` is then the broker's span.
        metrics: records every routed event's time in the broker and every refusal.
        resource_secrets: where the secret values an HTTPAdapter's templates name are read
            (:mod:`kubefox.broker.http_adapter`); without it such adapters fail.

    ``routed`` counts events handed to a target; ``rejected`` counts refused
    events by error code.
    """

    def __init__(
        self,
        settings: BrokerSettings,
        *,
        router: Router | None = None,
        client: NatsClient | None = None,
        tracer: HopTracer | None = None,
        metrics: HopMetrics | None = None,
        resource_secrets: ResourceSecrets | None = None,
    ) -> None:
        self.settings = settings
        self._max_size = settings.max_event_size  # read per event: one attribute, not two
        self._tracer = tracer
        self._metrics = metrics
        self._adapters = HttpAdapterCaller(resource_secrets)
        self.identity = Component(
            type=ComponentType.BROKER.value, name="broker", id=secrets.token_hex(5)
        )
        self.routed = 0
        self.rejected: collections.Counter[int] = collections.Counter()
        self._router = router
        self._client = client
        self._transport: NatsioTransport | None = None
        self._started = False
        self._stopping = asyncio.Event()
        self._ready = asyncio.Event()
        self._accepting = False
        self._group: asyncio.TaskGroup | None = None
        self._free = settings.max_in_flight  # task slots left
        self._tasks: set[asyncio.Task[None]] = set()
        # Messages held while every slot is taken: (subject, reply, data, received).
        self._held: collections.deque[tuple[str, str, Payload, int]] = collections.deque()
        self.dropped = 0
        self._idle = asyncio.Event()
        self._idle.set()
        # Subjects are checked token by token when built or parsed; there are few
        # distinct ones (one per instance, one per component version), so each is
        # built or parsed once.
        self._senders: dict[str, Component] = {}
        self._destinations: dict[Component, str] = {}
        self._answered: dict[str, float] = {}
        self._attributes = HopAttributes(source=True, name=_span_name)

    @property
    def in_flight(self) -> int:
        """Events being handled right now."""
        return len(self._tasks)

    async def wait_ready(self) -> None:
        """Return once the broker subscribes and routes (its view of the resources is loaded).

        Never returns if :meth:`run` fails or is stopped before that; wait on both.
        """
        await self._ready.wait()

    def stop(self) -> None:
        """Ask :meth:`run` to stop: no new events, in-flight ones get ``shutdown_grace``.

        Idempotent, and safe to call from a signal handler (it only sets a flag).
        """
        self._stopping.set()

    async def run(self) -> None:
        """Serve until :meth:`stop`; a broker runs once.

        Raises:
            BrokerUnavailableError: NATS cannot be reached.
            KubeFoxError: the resource store failed.
        """
        if self._started:
            raise RuntimeError("a Broker runs only once")
        self._started = True
        if self._stopping.is_set():
            return
        if self._client is not None:
            transport = NatsioTransport.using(self._client)
        else:
            transport = await NatsioTransport.connect(
                self.settings.nats_options(name=f"kubefox-broker {self.identity.id}")
            )
        self._transport = transport
        try:
            await self._serve(transport)
        except BaseExceptionGroup as group:
            # Only the view task can fail (event tasks catch everything): surface
            # its error rather than a group of one.
            if len(group.exceptions) == 1 and isinstance(group.exceptions[0], Exception):
                raise group.exceptions[0] from None
            raise
        finally:
            self._accepting = False
            await transport.close()
            await self._adapters.aclose()
            log.info("broker.stopped", routed=self.routed, rejected=dict(self.rejected))

    async def _serve(self, transport: NatsioTransport) -> None:
        settings = self.settings
        store = None
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                router = self._router
                view_task = None
                if router is None:
                    store = await transport.open_store(bucket=settings.bucket)
                    view = ResourceView(store, namespace=settings.namespace)
                    view_task = group.create_task(view.run(), name="broker-resource-view")
                    if not await self._unless_stopping(view.wait_ready()):
                        view_task.cancel()
                        return
                    router = Router(view, platform=settings.platform)
                self._router = router
                subject = subjects.broker_wildcard(settings.platform)
                await transport.subscribe(
                    subject, queue=subjects.BROKER_QUEUE, deliver=self._deliver
                )
                self._accepting = True
                self._ready.set()
                log.info("broker.started", subject=subject, broker_id=self.identity.id)
                await self._stopping.wait()
                log.info("broker.stopping", in_flight=self.in_flight)
                await self._drain(transport)
                if view_task is not None:
                    view_task.cancel()
        finally:
            self._group = None
            if store is not None:
                await store.aclose()

    async def _unless_stopping(self, awaitable: Awaitable[None]) -> bool:
        """Await ``awaitable`` unless :meth:`stop` comes first; True if it finished."""
        work = asyncio.ensure_future(awaitable)
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            finished = work.done() and not work.cancelled()
            work.cancel()
            stopping.cancel()
            await asyncio.gather(work, stopping, return_exceptions=True)
        return finished

    async def _drain(self, transport: NatsioTransport) -> None:
        """Stop taking events, give in-flight ones the grace period, cancel the rest."""
        try:
            async with asyncio.timeout(self.settings.shutdown_grace):
                await transport.drain()
                await self._idle.wait()
        except TimeoutError:
            log.warning("broker.drain_timed_out", cancelled=self.in_flight)
        self._accepting = False
        self._held.clear()
        for task in list(self._tasks):
            task.cancel()

    # -- the hot path ------------------------------------------------------------------

    def _deliver(
        self, subject: str, reply: str, data: Payload, headers: dict[str, str] | None
    ) -> None:
        """Take one message, inside the socket read; see :meth:`_take`.

        While every task slot is taken the message is held, and so is every
        later one, in order, until a slot frees up: the bound and the order
        nats-py's awaited callback gave, with no task per message.
        """
        received = time.monotonic_ns()
        if not self._accepting:
            return  # only after a shutdown deadline passed: the requester's deadline answers it
        if self._free <= 0 or self._held:
            self._hold(subject, reply, data, received)
            return
        self._take(subject, reply, data, received)

    def _hold(self, subject: str, reply: str, data: Payload, received: int) -> None:
        if len(self._held) >= _MAX_HELD:
            # What nats-py did with a slow consumer: the requester's deadline answers it.
            self.dropped += 1
            if self.dropped == 1 or self.dropped % _MAX_HELD == 0:
                log.warning("broker.overloaded", dropped=self.dropped, held=len(self._held))
            return
        self._held.append((subject, reply, data, received))
        self._idle.clear()

    def _take(self, subject: str, reply: str, data: Payload, received: int) -> None:
        """Relay one message synchronously, or spawn the one task it needs.

        A request to a target that answered recently is relayed right here:
        decoding, checking and republishing never wait, so a task of its own
        would only cost a task and a turn of the event loop per event. What
        may wait (carrying a request through our inbox, an adapter call) or
        fails (answered with an error event, logged) runs in a task. At most
        one task per message, and a free slot is there for it (see
        :meth:`_deliver`).
        """
        transport = self._transport
        if transport is None:  # pragma: no cover - set before the subscription exists
            return
        started: _Started | None = None
        event: Event | None = None
        try:
            event = codec.decode(bytes(data), max_size=self._max_size)
            tracer = self._tracer
            if tracer is not None:
                parent = event.parent_span
                if parent is not None and parent.flags & 1:
                    event, started = self._traced(tracer, event)
            target = event.target
            if target is not None and target.type == _HTTP_ADAPTER:
                self._spawn(self._call_adapter(event, subject, reply, started))
                return
            relay = self._relay(event, subject, received)
        except Exception as exc:  # noqa: BLE001 - the task redoes it, answers and logs the failure
            if started is not None and event is not None:
                self._end_span(started, event, None, exc)
            self._spawn(self._handle(subject, reply, bytes(data), received))
            return
        destination = relay.destination
        if reply and self._answered.get(destination, 0.0) <= time.monotonic():
            if started is not None:
                self._end_span(started, event, relay, None)
            self._spawn(self._carry_event(event, subject, reply, relay))
            return
        try:
            transport.send(destination, relay.payload, reply=reply)
        except KubeFoxError as exc:
            if started is not None:
                self._end_span(started, event, relay, exc)
            self._spawn(self._reject(event, exc, reply, subject))
            return
        self.routed += 1
        if started is not None:
            self._end_span(started, event, relay, None)
        if self._metrics is not None:
            self._record(event, relay, received)

    # -- telemetry (only when the broker was given a tracer or metrics) -----------------

    def _traced(self, tracer: HopTracer, event: Event) -> tuple[Event, _Started]:
        """Start the span of routing ``event`` (sampled); the event now carries it as its parent.

        Only the span's context and start are made here; :meth:`_end_span`
        hands it on compact (``HopAttributes.end``).
        """
        start_ns = time.time_ns()
        context, parent_id = tracer.child(event.parent_span)
        return msgspec.structs.replace(event, parent_span=context), (context, parent_id, start_ns)

    def _end_span(
        self, started: _Started, event: Event, relay: _Relay | None, error: Exception | None
    ) -> None:
        """End the span of routing ``event``: named and attributed by its kind and target.

        The target is where the event was routed (``relay``'s), else the one it named.
        """
        tracer = self._tracer
        if tracer is None:  # pragma: no cover - spans are started only with a tracer
            return
        context, parent_id, start_ns = started
        attributes = self._attributes
        target = None if relay is None else relay.target
        attributes.end(
            tracer,
            attributes.key(event, target),
            event.id,
            event.parent_id,
            context,
            parent_id,
            start_ns,
            0,
            error,
        )

    def _record(self, event: Event, relay: _Relay, received: int) -> None:
        metrics = self._metrics
        if metrics is None:  # pragma: no cover - checked by the caller
            return
        context = event.context
        target = relay.target
        metrics.observe(
            (time.monotonic_ns() - received) / 1e9,
            metrics.key(
                "broker",
                target.app,
                target.name,
                context.app_deployment,
                context.virtual_environment,
                0,
            ),
        )

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` as a task of the broker in a free slot (:meth:`_deliver` saw one)."""
        group = self._group
        if not self._accepting or group is None:
            # Only after a shutdown deadline passed: the requester's deadline answers it.
            work.close()
            return
        try:
            task = group.create_task(work)
        except RuntimeError:  # the group is shutting down because the view failed
            work.close()
            return
        self._free -= 1
        self._tasks.add(task)
        self._idle.clear()
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._free += 1
        held = self._held
        while held and self._free > 0 and self._accepting:
            self._take(*held.popleft())
        if not self._tasks and not held:
            self._idle.set()

    async def _handle(self, subject: str, reply: str, data: bytes, received: int) -> None:
        try:
            event = codec.decode(data, max_size=self.settings.max_event_size)
        except KubeFoxError as exc:
            event = self._stand_in(subject)
            await self._reject(event, exc, reply, subject)
            return
        try:
            await self._route(event, subject, reply, received)
        except KubeFoxError as exc:
            await self._reject(event, exc, reply, subject)
        except Exception as exc:  # a task boundary: one bad event must not stop the rest
            log.exception("event.failed", event_id=event.id, source=event.source.key)
            error = KubeFoxError(f"{type(exc).__name__}: {exc}")
            await self._reject(event, error, reply, subject, logged=True)

    async def _carry_event(self, event: Event, subject: str, reply: str, relay: _Relay) -> None:
        """The task of a request :meth:`_receive` checked and routed, to carry to its target."""
        transport = self._transport
        if transport is None:  # pragma: no cover - set before the subscription exists
            return
        received = time.monotonic_ns()
        try:
            await self._carry(transport, relay, reply=reply)
        except KubeFoxError as exc:
            await self._reject(event, exc, reply, subject)
            return
        except Exception as exc:  # a task boundary: one bad event must not stop the rest
            log.exception("event.failed", event_id=event.id, source=event.source.key)
            error = KubeFoxError(f"{type(exc).__name__}: {exc}")
            await self._reject(event, error, reply, subject, logged=True)
            return
        if self._metrics is not None:
            self._record(event, relay, received)  # carrying included: the reply came through us

    async def _call_adapter(
        self, event: Event, subject: str, reply: str, started: _Started | None
    ) -> None:
        """The task of a request to an HTTPAdapter: check it, make the call, answer."""
        router, transport = self._router, self._transport
        if router is None or transport is None:  # pragma: no cover - set before subscribing
            return
        try:
            routed = router.route_adapter(event, sender=self._sender(subject))
            answer = await self._adapters.call(event, routed, source=self.identity)
            data = codec.encode(answer, max_size=self.settings.max_event_size)
            self.routed += 1
        except KubeFoxError as exc:
            if started is not None:
                self._end_span(started, event, None, exc)
            await self._reject(event, exc, reply, subject)
            return
        if started is not None:
            self._end_span(started, event, None, None)
        if reply:
            await transport.publish(reply, data)

    def _relay(self, event: Event, subject: str, received: int) -> _Relay:
        """Check and route ``event``: the subject and payload to send it on with."""
        router = self._router
        if router is None:  # pragma: no cover - set before the subscription exists
            raise UnavailableError("the broker is not ready")
        sender = self._senders.get(subject) or self._sender(subject)
        routed = router.route_component(event, sender=sender)
        ttl = event.ttl - (time.monotonic_ns() - received)
        if ttl <= 0:
            raise DeadlineExceededError("event ttl was spent in the broker")
        # The event was checked when decoded, params and env come from validated resources.
        payload = codec.encode_matched(
            routed.matched(event, ttl=ttl), max_size=self._max_size, trusted=True
        )
        target = routed.target
        return _Relay(self._destination(target), payload, ttl, target)

    async def _route(self, event: Event, subject: str, reply: str, received: int) -> None:
        relay = self._relay(event, subject, received)
        transport = self._transport
        if transport is None:  # pragma: no cover - set before the subscription exists
            raise UnavailableError("the broker is not ready")
        if not reply or self._answered.get(relay.destination, 0.0) > time.monotonic():
            await transport.publish(relay.destination, relay.payload, reply=reply)
            self.routed += 1
            return
        await self._carry(transport, relay, reply=reply)

    async def _carry(self, transport: NatsioTransport, relay: _Relay, *, reply: str) -> None:
        """Send a request with the broker's own inbox and pass the answer on (see above)."""
        destination, target = relay.destination, relay.target
        try:
            answer = await transport.request(destination, relay.payload, timeout=relay.ttl / 1e9)
        except UnavailableError as exc:
            raise UnavailableError(
                f'no instance of component "{target.name}" ({target.short_hash}) is running',
                component=target.key,
            ) from exc
        except DeadlineExceededError:
            # Delivered but unanswered: the requester's deadline fires at the same time.
            self.routed += 1
            return
        self.routed += 1
        answered = self._answered
        if len(answered) >= _MAX_CACHED:
            answered.clear()
        answered[destination] = time.monotonic() + ANSWERED_FOR
        await transport.publish(reply, answer.data, headers=answer.headers)

    def _sender(self, subject: str) -> Component:
        """The identity a broker subject names; parsed once per subject."""
        sender = self._senders.get(subject)
        if sender is None:
            sender = subjects.parse_broker_subject(subject, platform=self.settings.platform)
            if len(self._senders) >= _MAX_CACHED:
                self._senders.clear()
            self._senders[subject] = sender
        return sender

    def _destination(self, target: Component) -> str:
        """The ``cmp`` subject of ``target``'s version; built once per version."""
        subject = self._destinations.get(target)
        if subject is None:
            subject = subjects.component(
                self.settings.platform, target.app, target.name, target.hash
            )
            if len(self._destinations) >= _MAX_CACHED:
                self._destinations.clear()
            self._destinations[target] = subject
        return subject

    def _stand_in(self, subject: str) -> Event:
        """What an undecodable event is answered as: a request from the subject's sender."""
        try:
            source = self._sender(subject)
        except KubeFoxError:
            source = Component()
        return Event(id="", category=Category.REQUEST, source=source)

    async def _reject(
        self,
        event: Event,
        error: KubeFoxError,
        reply: str,
        subject: str,
        *,
        logged: bool = False,
    ) -> None:
        """Count, log and (unless the TTL is spent) answer a refused event."""
        self.rejected[error.code] += 1
        if self._metrics is not None:
            from kubefox.telemetry.metrics import hop_labels

            context = event.context
            self._metrics.failed(
                hop_labels(
                    "broker",
                    app=event.source.app,
                    deployment=context.app_deployment,
                    virtual_environment=context.virtual_environment,
                ),
                error.code,
            )
        if not logged:
            level = log.warning if isinstance(error, UnauthorizedError) else log.info
            level(
                "event.rejected",
                reason=str(error),
                code=error.code,
                event_id=event.id,
                source=event.source.key,
                subject=subject,
            )
        transport = self._transport
        if not reply or transport is None or isinstance(error, DeadlineExceededError):
            return
        try:
            answer = codec.error_event(event, error, source=self.identity)
            data = codec.encode(answer, max_size=self.settings.max_event_size)
            await transport.publish(reply, data)
        except KubeFoxError as exc:
            log.info("event.error_reply_failed", event_id=event.id, error=str(exc))
