"""httpsrv's request handling: a raw ASGI application turning HTTP requests into events.

One request is one genesis event: the body is read within the maximum event
size, the request is translated (:mod:`kubefox.adapters.http.translate`),
routed in-process by the :class:`~kubefox.router.Router` (no broker hop), sent
to the target's ``cmp`` subject as one NATS request with the remaining TTL as
its deadline, and the reply is written back. It is a bare ASGI callable rather
than a Starlette app: this is the hot path of every request the platform
serves, and a framework's request object, routing and middleware stack would
cost more than the translation itself.

Every answer carries ``Kubefox-Adapter`` and ``Kubefox-Event-Id``, and the
context headers as far as the context is known, errors included. Errors are
``msg: cause`` as plain text with the error's HTTP status; anything that is not
a :class:`KubeFoxError` is logged and answered ``500 unexpected error``, never
with a traceback.

``GET /_kf/health`` (any method, in fact) answers 200 while NATS is connected
and 503 otherwise; the path is reserved, no route can match it.
"""

from __future__ import annotations

import asyncio
import secrets
import string
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import msgspec
import structlog

from kubefox.adapters.http import builtin
from kubefox.adapters.http.translate import (
    HEADER_ADAPTER,
    HttpResponse,
    error_response,
    kubefox_headers,
    reply_response,
    request_event,
)
from kubefox.core import subjects
from kubefox.core.codec import decode, encode_matched
from kubefox.core.errors import (
    ContentTooLargeError,
    DeadlineExceededError,
    InvalidError,
    KubeFoxError,
    UnavailableError,
)
from kubefox.core.events import Component, ComponentType, Event, EventContext, SpanContext, new_id
from kubefox.recording.recorder import Recorder
from kubefox.resources import Platform
from kubefox.resources.platform import DEFAULT_EVENT_MAX_SIZE, DEFAULT_EVENT_TIMEOUT_SECONDS
from kubefox.router import Routed, Router
from kubefox.telemetry import attributes as attr
from kubefox.telemetry.logging import bind_request
from kubefox.telemetry.records import SpanKind
from kubefox.telemetry.spans import SharedSet, shared_attributes
from kubefox.telemetry.tracing import ended_span

if TYPE_CHECKING:  # the OpenTelemetry SDK loads only when telemetry is on
    from kubefox.telemetry.metrics import HopMetrics
    from kubefox.telemetry.tracing import HopSpan, HopTracer, LazySpan

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: Reserved path answering whether httpsrv can serve (NATS connected).
HEALTH_PATH = "/_kf/health"
#: Name of httpsrv's component identity (upstream's).
ADAPTER_NAME = "httpsrv"
#: httpsrv's version in its identity; builds that know their commit stamp a short hash.
BUILD_HASH = "dev"

_ID_ALPHABET = string.ascii_lowercase + string.digits
_ID_LENGTH = 10
_NS = 1_000_000_000
_HEALTHY_HEADERS = ((b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"2"))
_MAX_CACHED_SUBJECTS = 4096
_SERVER = int(SpanKind.SERVER)
_MAX_LENGTH_DIGITS = 18  # more digits than any body we would read; int() of huge text is slow
_TRACEPARENT = b"traceparent"
_SAMPLE_NAMES = (b"kf-sample", b"kubefox-telemetry-sample")
_SAMPLE_VALUES = (b"true", b"1")
_TRACE_NAMES = frozenset((_TRACEPARENT, *_SAMPLE_NAMES))

log = structlog.get_logger(__name__)


class _Trace(msgspec.Struct, frozen=True, gc=False):
    """What a sampled request carries of its server span: in its event and in the answer.

    A struct, not a NamedTuple: one is built per sampled request, and a struct is built in C.
    """

    context: SpanContext
    traceparent: bytes


def adapter_identity(*, hash: str = BUILD_HASH) -> Component:
    """The identity of httpsrv: type HTTPAdapter, name httpsrv, ``hash``, a random 10-char id."""
    instance = "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))
    return Component(type=ComponentType.HTTP_ADAPTER, name=ADAPTER_NAME, hash=hash, id=instance)


class Requester(Protocol):
    """Sends an encoded event to a subject and returns the encoded reply (the NATS port)."""

    @property
    def connected(self) -> bool:
        """Whether requests can be sent right now."""
        ...

    async def request(
        self,
        subject: str,
        data: bytes,
        *,
        timeout: float,  # noqa: ASYNC109 - the transport owns the wait
    ) -> bytes:
        """The reply's bytes; ``UnavailableError`` if nobody listens, ``DeadlineExceededError``."""
        ...


class Limits(NamedTuple):
    """The limits a request is held to: its time to live and its size."""

    timeout: float
    max_event_size: int


class _ClientGoneError(Exception):
    """The client disconnected before its request was read: nobody to answer."""


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The request body, refused with ``ContentTooLargeError`` as soon as it exceeds ``limit``."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            # The server has validated the header; a length over the limit is
            # refused before a single body byte is read.
            if value.isdigit() and (len(value) > _MAX_LENGTH_DIGITS or int(value) > limit):
                raise ContentTooLargeError(
                    f"the body is {value.decode()} bytes, the limit is {limit} bytes", limit=limit
                )
            break
    message = await receive()
    if message["type"] != "http.request":
        raise _ClientGoneError
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise ContentTooLargeError(f"the body exceeds the limit of {limit} bytes", limit=limit)
        return body
    chunks = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] != "http.request":
            raise _ClientGoneError
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ContentTooLargeError(f"the body exceeds the limit of {limit} bytes", limit=limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _wants_sample(value: bytes) -> bool:
    return value.lower() in _SAMPLE_VALUES


def trace_request(scope: Scope) -> tuple[SpanContext | None, bool]:
    """The W3C ``traceparent`` of a request and whether ``kf-sample=true`` forces sampling.

    ``kf-sample`` (or ``kubefox-telemetry-sample``) counts as a header or a
    query parameter, ``true`` in any case or ``1`` (upstream's rule).
    """
    parent: SpanContext | None = None
    force = False
    for name, value in scope["headers"]:
        # One set lookup per header: most requests carry none of the three names.
        if name in _TRACE_NAMES:
            if name == _TRACEPARENT:
                # Imported only when a request carries one: an import costs on every call.
                from kubefox.telemetry.tracing import parse_traceparent

                parent = parse_traceparent(value.decode("latin-1"))
            else:
                force = force or _wants_sample(value)
    query: bytes = scope.get("query_string", b"")
    if not force and b"sample=" in query:
        for item in query.split(b"&"):
            name, _, value = item.partition(b"=")
            if name in _SAMPLE_NAMES and _wants_sample(value):
                force = True
                break
    return parent, force


def _routed_attributes(routed: Routed) -> dict[str, Any]:
    target = routed.target
    context = routed.context.event_context
    return {
        attr.APP: target.app,
        attr.COMPONENT: target.name,
        attr.HASH: target.hash,
        attr.APP_DEPLOYMENT: context.app_deployment,
        attr.VIRTUAL_ENVIRONMENT: context.virtual_environment,
        attr.RELEASE_MANIFEST: context.release_manifest,
        attr.ROUTE_ID: routed.route_id,
    }


class HttpAdapter:
    """The ASGI application of httpsrv: HTTP request in, genesis event out, reply back.

    Args:
        router: routes genesis events; its view also holds the Platform resource.
        requester: sends the event to the target and waits for the reply.
        platform: the platform's name (subjects, context, Platform resource).
        source: httpsrv's identity; :func:`adapter_identity` if not given.
        timeout: seconds a request may take; ``None`` reads the Platform
            resource's ``spec.events.timeoutSeconds`` (30 if there is none).
        max_event_size: largest body and event in bytes; ``None`` reads the
            Platform resource's ``spec.events.maxSize`` (5 MiB if there is none).
        tracer: records a server span per sampled request; ``None``: no tracing.
        metrics: records every request's duration and outcome; ``None``: none.
        recorder: copies the answered requests of recorded virtual environments.
        live: the live component instances, for the built-in health event
            (:mod:`kubefox.adapters.http.builtin`); ``None``: not known.
    """

    def __init__(
        self,
        router: Router,
        requester: Requester,
        *,
        platform: str,
        source: Component | None = None,
        timeout: float | None = None,
        max_event_size: int | None = None,
        tracer: HopTracer | None = None,
        metrics: HopMetrics | None = None,
        recorder: Recorder | None = None,
        live: builtin.LiveInstances | None = None,
    ) -> None:
        self._recorder = recorder
        self._live = live
        self._tracer = tracer
        self._metrics = metrics
        #: Requests being answered right now (the in-flight gauge reads it).
        self.in_flight = 0
        self._router = router
        self._requester = requester
        self._platform = platform
        self._source = source if source is not None else adapter_identity()
        self._key = self._source.key  # on every answer; the identity never changes
        self._timeout = timeout
        self._max_event_size = max_event_size
        self._bare_context = EventContext(platform=platform)
        self._subjects: dict[Component, str] = {}
        self._routed_attributes: dict[tuple[int, Component, EventContext], SharedSet] = {}
        # Bound once: a lazy span holds its builder until exported, and a bound method
        # made per request is one more object the garbage collector tracks meanwhile.
        self._build_request_span = self._request_span

    @property
    def source(self) -> Component:
        """The identity of httpsrv: the source of every genesis event."""
        return self._source

    @property
    def key(self) -> str:
        """The component key of httpsrv, sent as ``Kubefox-Adapter``."""
        return self._key

    def limits(self) -> Limits:
        """The limits now: the settings', else the Platform resource's, else the defaults."""
        timeout, max_size = self._timeout, self._max_event_size
        if timeout is None or max_size is None:
            platform = self._router.view.get(Platform, self._platform)
            if platform is not None:
                events = platform.spec.events
                timeout = float(events.timeout_seconds) if timeout is None else timeout
                max_size = events.max_size if max_size is None else max_size
            else:
                timeout = float(DEFAULT_EVENT_TIMEOUT_SECONDS) if timeout is None else timeout
                max_size = DEFAULT_EVENT_MAX_SIZE if max_size is None else max_size
        return Limits(timeout, max_size)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope (HTTP only: lifespan and websockets are off)."""
        if scope["type"] != "http":
            return
        if scope["path"] == HEALTH_PATH:
            await self._health(send)
            return
        if self._tracer is not None or self._metrics is not None:
            await self._observed(scope, receive, send)
            return
        await self._serve(scope, receive, send, new_id())

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, event_id: str, trace: _Trace | None = None
    ) -> tuple[int, Routed | None, Exception | None]:
        """Answer one request; the status answered, where it was routed and what failed."""
        context = self._bare_context
        routed: Routed | None = None
        failure: Exception | None = None
        body = b""
        try:
            limits = self.limits()
            body = await _read_body(scope, receive, limits.max_event_size)
            deadline = asyncio.get_running_loop().time() + limits.timeout
            event = request_event(
                scope,
                body,
                platform=self._platform,
                source=self._source,
                ttl=int(limits.timeout * _NS),
                event_id=event_id,
                parent_span=trace.context if trace is not None else None,
            )
            context = event.context
            if event.type in builtin.BUILTIN_TYPES and builtin.wants_builtin(
                self._router, self._platform, event
            ):
                response = await builtin.answer(
                    self._router,
                    event,
                    scope,
                    body,
                    self._live,
                    app=self,
                    deadline=deadline,
                    budget=limits.timeout,
                )
            else:
                routed = self._router.route_genesis(event)
                context = routed.context.event_context
                reply = await self._forward(event, routed, limits, deadline)
                response = reply_response(reply)
        except _ClientGoneError:
            return 499, routed, None
        except KubeFoxError as exc:
            failure = exc
            response = error_response(exc)
            if response.status >= 500:
                log.warning("request.failed", event_id=event_id, error=str(exc), code=exc.code)
        except Exception as exc:
            # The process boundary of one request: log everything, tell the client nothing.
            failure = exc
            log.exception("request.crashed", event_id=event_id)
            response = error_response(KubeFoxError())
        headers = kubefox_headers(self.key, event_id, context)
        if trace is not None:
            headers.append((_TRACEPARENT, trace.traceparent))
        await self._respond(send, response, headers)
        recorder = self._recorder
        # After the answer is written; one dict lookup when nothing records this VE.
        if recorder is not None and context.virtual_environment in recorder.active:
            recorder.capture(
                scope=scope,
                body=body,
                status=response.status,
                headers=response.headers + headers,
                response_body=response.body,
                context=context,
                event_id=event_id,
            )
        return response.status, routed, failure

    async def _observed(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one request inside its span (when sampled) and record its metrics.

        Only the span's context and start are made before the request is
        answered; the span is built when its batch is exported
        (:meth:`_request_span`, through ``HopTracer.finish``), or at once when
        the request failed.
        """
        started = time.perf_counter()
        event_id = new_id()
        trace: _Trace | None = None
        tracer = self._tracer
        start_ns = 0
        parent_id = b""
        if tracer is not None:
            parent, force = trace_request(scope)
            if tracer.wants(parent, force=force, root=True):
                start_ns = time.time_ns()
                context, parent_id = tracer.child(parent)
                # The answer's traceparent (the span's own context is always sampled:
                # flags 01); the request's log lines get the ids in hex only when logged.
                traceparent = f"00-{context.trace_id.hex()}-{context.span_id.hex()}-01"
                trace = _Trace(context, traceparent.encode())
                bind_request(event_id, context)
        self.in_flight += 1
        try:
            status, routed, failure = await self._serve(scope, receive, send, event_id, trace)
        finally:
            self.in_flight -= 1
        if trace is not None and tracer is not None:
            context = trace.context
            lazy = (
                self._build_request_span,
                scope.get("method", ""),
                (scope.get("path", ""), routed),
                event_id,
                "",
                context.trace_id,
                context.span_id,
                parent_id,
                start_ns,
                time.time_ns(),
                status,
            )
            tracer.finish(lazy, failure)
        metrics = self._metrics
        if metrics is not None:
            if routed is not None:
                ctx = routed.context.event_context
                target = routed.target
                key = metrics.key(
                    "httpsrv",
                    target.app,
                    target.name,
                    ctx.app_deployment,
                    ctx.virtual_environment,
                    status,
                )
            else:
                key = metrics.key("httpsrv", "", "", "", "", status)
            metrics.observe(time.perf_counter() - started, key)
            if isinstance(failure, KubeFoxError):
                metrics.failed_key(key, failure.code)

    def _request_span(self, lazy: LazySpan) -> HopSpan:
        """The server span of a request (a lazy span: its kind is its path and where it went).

        Where it was routed is shared by every request of the route, built once per route.
        """
        _, method, (path, routed), event_id, *_ = lazy
        own = {attr.EVENT_ID: event_id, "http.request.method": method, "url.path": path}
        shared = -1
        if routed is not None:
            known_key = (routed.route_id, routed.target, routed.context.event_context)
            known = self._routed_attributes.get(known_key)
            if known is None:
                if len(self._routed_attributes) >= _MAX_CACHED_SUBJECTS:
                    self._routed_attributes.clear()
                known = shared_attributes.share(_routed_attributes(routed))
                self._routed_attributes[known_key] = known
            shared = known.onto(own)
        return ended_span(lazy, f"{method} {path}", _SERVER, own, shared)

    async def _forward(
        self, event: Event, routed: Routed, limits: Limits, deadline: float
    ) -> Event:
        """Send the routed event to its target; the reply, or the error in our terms."""
        target = routed.target
        # Every value was built here from checked HTTP input, or comes from validated
        # resources: checking them again would only cost time (the target checks anyway).
        data = encode_matched(routed.matched(event), max_size=limits.max_event_size, trusted=True)
        subject = self._subjects.get(target)
        if subject is None:
            # Building a subject checks every character of every token; the
            # targets of one platform are few, so each is checked once.
            if len(self._subjects) >= _MAX_CACHED_SUBJECTS:
                self._subjects.clear()
            subject = self._subjects[target] = subjects.for_component(self._platform, target)
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise DeadlineExceededError(f"the request's {limits.timeout:g}s were spent")
        try:
            reply = await self._requester.request(subject, data, timeout=remaining)
        except UnavailableError as exc:
            raise UnavailableError(
                f"no instance of {target.group_key} is running", target=target.group_key
            ) from exc
        except DeadlineExceededError as exc:
            raise DeadlineExceededError(
                f"{target.group_key} did not reply within {limits.timeout:g}s",
                target=target.group_key,
            ) from exc
        try:
            return decode(reply, max_size=limits.max_event_size)
        except ContentTooLargeError as exc:
            # Not the client's fault either, so not its 413.
            raise KubeFoxError(f"the reply is too large: {exc.cause}") from exc
        except InvalidError as exc:
            # Not the client's fault, so not its 400: the component answered garbage.
            raise KubeFoxError(f"the reply is not an event: {exc.cause}") from exc

    async def _health(self, send: Send) -> None:
        if self._requester.connected:
            response = HttpResponse(200, list(_HEALTHY_HEADERS), b"ok")
        else:
            response = error_response(UnavailableError("not connected to NATS"))
        await self._respond(send, response, [(HEADER_ADAPTER, self.key.encode())])

    @staticmethod
    async def _respond(
        send: Send, response: HttpResponse, extra: list[tuple[bytes, bytes]]
    ) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": response.headers + extra,
            }
        )
        await send({"type": "http.response.body", "body": response.body})
