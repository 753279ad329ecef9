"""The per-request handle a handler receives: the request, the env, responses and calls out.

One :class:`Kontext` is built for every event a component handles. It is
cheap on purpose (slots, nothing parsed until asked for, the logger bound
lazily) because it is built on the hot path, once per request.
"""

from __future__ import annotations

import builtins
import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from kubefox.core import codec
from kubefox.core.errors import (
    ContentTooLargeError,
    DeadlineExceededError,
    InvalidError,
    KubeFoxError,
    UnauthorizedError,
)
from kubefox.core.events import (
    CONTENT_TYPE_HTML,
    CONTENT_TYPE_JSON,
    CONTENT_TYPE_TEXT,
    TYPE_ERROR,
    VAL_HEADER,
    VAL_HOST,
    VAL_METHOD,
    VAL_PATH,
    VAL_PATH_SUFFIX,
    VAL_QUERY,
    VAL_URL,
    Category,
    Component,
    ComponentType,
    Event,
    SpanContext,
)
from kubefox.core.values import Value, to_str
from kubefox.kit._declarations import Dependency, EnvVar
from kubefox.kit._headers import HeaderInput, first, header_map, lookup, query_map, string_lists
from kubefox.kit._messages import Reply, Response, parse_json
from kubefox.kit._transport import Transport
from kubefox.telemetry import attributes as attr
from kubefox.telemetry.logging import bound_span

if TYPE_CHECKING:  # the OpenTelemetry SDK loads only when the component has telemetry on
    from kubefox.telemetry.spans import HopSpan, SharedSet
    from kubefox.telemetry.tracing import HopTracer, LazySpan

    #: A dependency's call spans: their name, the attributes they share, their
    #: kind's index (-1: the process has no room for another kind) and the
    #: builder of their lazy form (for that case).
    CallSpans = tuple[str, SharedSet, int, Callable[[LazySpan], HopSpan]]

_NS = 1_000_000_000
_MISSING: Any = object()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """What every Kontext of one running Kit shares: identity, limits and the transport."""

    identity: Component
    broker_subject: str
    max_event_size: int
    transport: Transport
    dependencies: Mapping[str, Dependency]
    logger: structlog.typing.FilteringBoundLogger
    clock: Callable[[], float]
    #: Records the spans of calls to dependencies in sampled traces; ``None``: no tracing.
    tracer: HopTracer | None = None
    #: Per dependency: its call spans' name, shared attributes, kind and lazy builder.
    call_spans: dict[str, CallSpans] = dataclasses.field(default_factory=dict)


class Kontext:
    """Everything a handler needs for one request.

    Read the incoming request (:attr:`method`, :attr:`path`, :meth:`header`,
    :meth:`query`, :meth:`param`, :attr:`body`...) and the component's env vars
    (:meth:`env`); build the :class:`~kubefox.kit.Response` to return
    (:meth:`text`, :meth:`json`, :meth:`html`, :meth:`bytes`, :meth:`accepts`,
    :meth:`respond`); call dependencies (:meth:`request`, :meth:`forward`)
    within the request's deadline.

    Attributes:
        event: The incoming event, as received.
        deadline: When the request's time to live runs out, on the event loop's clock.
        span: The trace context of the handler's span when the request is traced
            (calls to dependencies become its children), else ``None``.
    """

    __slots__ = ("_env", "_log", "_session", "deadline", "event", "span")

    def __init__(
        self,
        event: Event,
        *,
        env: Mapping[str, Value],
        deadline: float,
        session: Session,
        span: SpanContext | None = None,
    ) -> None:
        self.event = event
        self.deadline = deadline
        self.span = span
        self._env = env
        self._session = session
        self._log: structlog.typing.FilteringBoundLogger | None = None

    # -- the incoming request ------------------------------------------------------------

    def _value(self, key: str) -> str:
        raw = self.event.values.get(key)
        return raw if isinstance(raw, str) else to_str(raw)

    @property
    def method(self) -> str:
        """The HTTP method (``GET``...), or ``""`` if the event has none."""
        return self._value(VAL_METHOD)

    @property
    def path(self) -> str:
        """The URL path, e.g. ``/qa/hello``."""
        return self._value(VAL_PATH)

    @property
    def url(self) -> str:
        """The full URL of the request, as the HTTP adapter saw it."""
        return self._value(VAL_URL)

    @property
    def host(self) -> str:
        """The lower-cased host, port included, e.g. ``localhost:8080``."""
        return self._value(VAL_HOST)

    @property
    def path_suffix(self) -> str:
        """What follows a ``PathPrefix`` match, without a leading ``/``."""
        return self._value(VAL_PATH_SUFFIX)

    @property
    def headers(self) -> dict[str, list[str]]:
        """Every request header: canonical names (``Content-Type``) to lists of values."""
        return string_lists(self.event.values.get(VAL_HEADER))

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        return first(lookup(self.headers, name))

    def header_all(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive); ``[]`` if absent."""
        return list(lookup(self.headers, name))

    @property
    def queries(self) -> dict[str, list[str]]:
        """Every query parameter: names to lists of values."""
        return string_lists(self.event.values.get(VAL_QUERY))

    def query(self, name: str) -> str | None:
        """The first value of query parameter ``name``, or ``None``."""
        return first(self.queries.get(name, ()))

    def query_all(self, name: str) -> list[str]:
        """Every value of query parameter ``name``; ``[]`` if absent."""
        return list(self.queries.get(name, ()))

    def param(self, name: str) -> str | None:
        """Route parameter ``name``, else query parameter ``name``, else header ``name``.

        This is upstream's lookup order, so ``{id}`` in a route, ``?id=`` and an
        ``Id`` header all answer ``k.param("id")``.
        """
        if name in self.event.params:
            return to_str(self.event.params[name])
        found = self.query(name)
        return found if found is not None else self.header(name)

    @property
    def content_type(self) -> str:
        """The media type of the request body."""
        return self.event.content_type

    @property
    def body(self) -> builtins.bytes:
        """The request body as bytes."""
        return self.event.content

    @property
    def body_text(self) -> str:
        """The request body decoded as UTF-8; undecodable bytes become U+FFFD."""
        return self.event.content.decode("utf-8", errors="replace")

    def body_json(self) -> Any:
        """The request body parsed as JSON.

        Raises:
            UnknownContentTypeError: the content type is not JSON or the body does not parse.
        """
        return parse_json(self.event.content_type, self.event.content)

    # -- env, logging and time ----------------------------------------------------------

    def env(self, var: EnvVar | str) -> Value:
        """The value of an env var the platform passed with this request, or ``None``.

        Only declared variables are ever passed (see :meth:`Kit.env_var
        <kubefox.kit.Kit.env_var>`).
        """
        return self._env.get(var.name if isinstance(var, EnvVar) else var)

    def env_str(self, var: EnvVar | str) -> str:
        """The value of an env var as text; ``""`` when it is missing."""
        return to_str(self.env(var))

    @property
    def log(self) -> structlog.typing.FilteringBoundLogger:
        """A logger bound to this request: event id, trace and span ids, app, component, context."""
        if self._log is None:
            context = self.event.context
            span = self.span
            logger = self._session.logger.bind(
                event_id=self.event.id,
                virtual_environment=context.virtual_environment,
                app_deployment=context.app_deployment,
            )
            # The server binds a traced request's ids for every logger (bind_request),
            # added in hex only to lines logged; bound here only for a Kontext made elsewhere.
            if span is not None and span.trace_id and bound_span() is not span:
                logger = logger.bind(trace_id=span.trace_id.hex(), span_id=span.span_id.hex())
            self._log = logger
        return self._log

    def remaining(self) -> float:
        """Seconds left before :attr:`deadline`; never negative."""
        return max(0.0, self.deadline - self._session.clock())

    # -- responses ----------------------------------------------------------------------

    def text(self, text: str, *, status: int = 200, headers: HeaderInput | None = None) -> Response:
        """A ``text/plain; charset=UTF-8`` response."""
        return Response(
            status=status,
            headers=header_map(headers),
            content_type=CONTENT_TYPE_TEXT,
            content=text.encode(),
        )

    def html(self, html: str, *, status: int = 200, headers: HeaderInput | None = None) -> Response:
        """A ``text/html; charset=UTF-8`` response."""
        return Response(
            status=status,
            headers=header_map(headers),
            content_type=CONTENT_TYPE_HTML,
            content=html.encode(),
        )

    def json(self, obj: Any, *, status: int = 200, headers: HeaderInput | None = None) -> Response:
        """An ``application/json; charset=UTF-8`` response holding ``obj`` as JSON.

        Raises:
            TypeError: ``obj`` holds something JSON cannot represent.
        """
        return Response(
            status=status,
            headers=header_map(headers),
            content_type=CONTENT_TYPE_JSON,
            content=msgspec.json.encode(obj),
        )

    def accepts(
        self,
        *,
        json: Any,
        html: str,
        text: str,
        status: int = 200,
        headers: HeaderInput | None = None,
    ) -> Response:
        """The JSON, HTML or text response, picked by the request's ``Accept`` header.

        ``Accept`` containing ``application/json`` gets JSON, else containing
        ``text/html`` gets HTML, else text (upstream's ``SendAccepts``). The
        response carries ``Vary: Accept`` so caches keep the variants apart.
        """
        accept = ",".join(lookup(self.headers, "Accept")).lower()
        merged = header_map(headers)
        merged.setdefault("Vary", []).append("Accept")
        if "application/json" in accept:
            return self.json(json, status=status, headers=merged)
        if "text/html" in accept:
            return self.html(html, status=status, headers=merged)
        return self.text(text, status=status, headers=merged)

    def respond(self, reply: Reply) -> Response:
        """A response forwarding ``reply`` (a dependency's answer) as it is."""
        return Response(
            status=reply.status_code,
            headers=reply.headers,
            content_type=reply.content_type,
            content=reply.content,
        )

    # Last, so the method named ``bytes`` shadows the builtin in no annotation above.
    def bytes(
        self,
        content: builtins.bytes,
        content_type: str,
        *,
        status: int = 200,
        headers: HeaderInput | None = None,
    ) -> Response:
        """A response with ``content`` of media type ``content_type``."""
        return Response(
            status=status,
            headers=header_map(headers),
            content_type=content_type,
            content=content,
        )

    # -- calls to dependencies ----------------------------------------------------------

    async def request(
        self,
        dependency: Dependency,
        *,
        method: str | None = None,
        path: str | None = None,
        query: HeaderInput | None = None,
        headers: HeaderInput | None = None,
        body: builtins.bytes | str | None = None,
        json: Any = _MISSING,
        content_type: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - it also caps the TTL sent on
    ) -> Reply:
        """Send a request to ``dependency`` and wait for its reply.

        The request carries this request's context and trace, and at most the
        time left (:meth:`remaining`, or ``timeout`` if shorter).

        Args:
            dependency: A dependency declared on this component's Kit.
            method: HTTP method to set.
            path: URL path to set.
            query: Query parameters to set.
            headers: Headers to set.
            body: Body to send; ``str`` is sent as UTF-8 text.
            json: An object to send as a JSON body (instead of ``body``).
            content_type: Media type of ``body``; defaults to text for ``str``
                and ``application/octet-stream`` for ``bytes``.
            timeout: Seconds to wait at most, within the request's deadline.

        Returns:
            The dependency's reply.

        Raises:
            UnauthorizedError: ``dependency`` was not declared on this Kit.
            InvalidError: both ``body`` and ``json`` were given.
            DeadlineExceededError: no reply came in time (or no time was left).
            UnavailableError: nothing is running that could take the request.
            KubeFoxError: the error the dependency (or the platform) answered with.
        """
        values: dict[str, Any] = {}
        return await self._send(
            dependency,
            values,
            method=method,
            path=path,
            query=query,
            headers=headers,
            body=body,
            json=json,
            content_type=content_type,
            content=(b"", ""),
            limit=timeout,
        )

    async def forward(
        self,
        dependency: Dependency,
        *,
        method: str | None = None,
        path: str | None = None,
        query: HeaderInput | None = None,
        headers: HeaderInput | None = None,
        body: builtins.bytes | str | None = None,
        json: Any = _MISSING,
        content_type: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - it also caps the TTL sent on
    ) -> Reply:
        """Send a copy of the incoming request to ``dependency`` and wait for its reply.

        Method, URL, path, query, headers and body are copied from the incoming
        event; any argument given replaces the copied part. Arguments and errors
        are those of :meth:`request`.
        """
        return await self._send(
            dependency,
            dict(self.event.values),
            method=method,
            path=path,
            query=query,
            headers=headers,
            body=body,
            json=json,
            content_type=content_type,
            content=(self.event.content, self.event.content_type),
            limit=timeout,
        )

    async def _send(
        self,
        dependency: Dependency,
        values: dict[str, Any],
        *,
        method: str | None,
        path: str | None,
        query: HeaderInput | None,
        headers: HeaderInput | None,
        body: builtins.bytes | str | None,
        json: Any,
        content_type: str | None,
        content: tuple[builtins.bytes, str],
        limit: float | None,
    ) -> Reply:
        session = self._session
        declared = session.dependencies.get(dependency.name)
        # Handlers pass the declared object itself: identity spares the field comparison.
        if declared is not dependency and declared != dependency:
            declare = (
                "kit.http_adapter"
                if dependency.type == ComponentType.HTTP_ADAPTER
                else "kit.component"
            )
            raise UnauthorizedError(
                f"{dependency.type} {dependency.name!r} is not a declared dependency of this "
                f"component; declare it with {declare}({dependency.name!r}) before start",
                dependency=dependency.name,
            )
        if method is not None:
            values[VAL_METHOD] = method.upper()
        if path is not None:
            values[VAL_PATH] = path
        if query is not None:
            values[VAL_QUERY] = query_map(query)
        if headers is not None:
            values[VAL_HEADER] = header_map(headers)
        data, media = _body(body, json, content_type, default=content)

        budget = self.remaining() if limit is None else min(self.remaining(), limit)
        if budget <= 0:
            raise DeadlineExceededError(
                f"no time left to call {dependency.name!r}", dependency=dependency.name
            )
        target = Component(type=dependency.type, name=dependency.name)
        tracer = session.tracer
        caller = self.span
        parent = caller
        start_ns = 0
        if tracer is not None and caller is not None and len(caller.trace_id) == 16:
            start_ns = time.time_ns()
            # The call's client span, which the request carries as its parent span.
            # Built when exported (below).
            parent, _ = tracer.child(caller)
        request = self.event.child(
            category=Category.REQUEST,
            source=session.identity,
            target=target,
            type=dependency.event_type,
            ttl=int(budget * _NS),
            parent_span=parent,
            values=values,
            content=data,
            content_type=media,
        )
        if not start_ns or tracer is None or caller is None or parent is None:
            return await self._call(dependency, request, budget)
        kind = session.call_spans.get(dependency.name) or _call_span(session, dependency)
        # What the call's span is made of, but its end and status (see CompactSpan).
        made = (request.id, self.event.id, parent.trace_id, parent.span_id, caller.span_id)
        try:
            reply = await self._call(dependency, request, budget)
        except Exception as exc:
            _end_call(tracer, kind, made, start_ns, 0, exc)
            raise
        _end_call(tracer, kind, made, start_ns, reply.status_code, None)
        return reply

    async def _call(self, dependency: Dependency, request: Event, budget: float) -> Reply:
        """Send ``request`` through the broker and wait for the reply, at most ``budget``."""
        session = self._session
        payload = codec.encode(request, max_size=session.max_event_size)
        answer = await session.transport.request(session.broker_subject, payload, timeout=budget)
        try:
            reply = codec.decode(answer, max_size=session.max_event_size)
        except (InvalidError, ContentTooLargeError) as exc:
            # The dependency's fault, not our caller's: neither a 400 nor a 413.
            raise KubeFoxError(
                f"the reply of {dependency.name!r} is not a valid event: {exc.cause}",
                dependency=dependency.name,
            ) from exc
        if reply.type == TYPE_ERROR:
            raise codec.error_from_event(reply)
        return Reply(reply)


def _call_span(session: Session, dependency: Dependency) -> CallSpans:
    """The name, shared attributes and kind of the spans of calls to ``dependency``, once."""
    # Loaded only with a tracer: with telemetry off a component never loads OpenTelemetry.
    from kubefox.telemetry.records import SpanKind
    from kubefox.telemetry.spans import shared_attributes, span_kinds
    from kubefox.telemetry.tracing import dependency_span

    name = f"Send REQUEST to {dependency.name}"
    common = shared_attributes.share(
        {attr.COMPONENT: dependency.name, attr.APP: session.identity.app}
    )
    index = span_kinds.index(name, int(SpanKind.CLIENT), common.index)
    known = (name, common, index, dependency_span)
    session.call_spans[dependency.name] = known
    return known


def _end_call(  # noqa: PLR0917 - a call's span's parts, in order
    tracer: HopTracer,
    kind: CallSpans,
    made: tuple[str, str, bytes, bytes, bytes],
    start_ns: int,
    status: int,
    error: BaseException | None,
) -> None:
    """End a call's span: compact (its kind by index), or lazy when the kind has none."""
    name, common, index, build = kind
    tracer.hand_on(index, build, name, common, (*made, start_ns, time.time_ns(), status), error)


def _body(
    body: builtins.bytes | str | None,
    json: Any,
    content_type: str | None,
    *,
    default: tuple[builtins.bytes, str],
) -> tuple[builtins.bytes, str]:
    """The content and content type to send, from what the caller passed."""
    if json is not _MISSING:
        if body is not None:
            raise InvalidError("pass either body or json, not both")
        return msgspec.json.encode(json), content_type or CONTENT_TYPE_JSON
    if isinstance(body, str):
        return body.encode(), content_type or CONTENT_TYPE_TEXT
    if body is not None:
        return body, content_type or "application/octet-stream"
    if content_type is not None:
        return default[0], content_type
    return default
