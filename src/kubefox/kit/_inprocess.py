"""Serve a Kit inside the test process: the platform's routing in miniature, the kit's own server.

:class:`InProcessKit` does for one Kit what the router does on the platform
(resolve the routes with the env, match, fall back to the default handler,
hand over only declared vars) and then runs the event through the kit's
:class:`~kubefox.kit._server.Server` exactly as a deployed component does.
:class:`ScriptedTransport` stands in for NATS: each request a handler sends
is recorded and answered by the script of its target, itself an
:class:`InProcessKit`, so scripted dependencies get the same dispatch and
error conversion as real ones.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from typing import Any

import msgspec

from kubefox.core import codec
from kubefox.core.codec import encode_matched
from kubefox.core.errors import (
    ContentTooLargeError,
    DeadlineExceededError,
    InvalidError,
    RouteInvalidError,
    RouteNotFoundError,
    UnavailableError,
)
from kubefox.core.events import (
    VAL_PATH_SUFFIX,
    Component,
    ComponentType,
    Event,
    MatchedEvent,
)
from kubefox.core.matcher import RouteMatcher, compile_route
from kubefox.core.routes import resolve
from kubefox.core.values import Value
from kubefox.kit._declarations import Handler
from kubefox.kit._kit import Kit
from kubefox.kit._server import DEFAULT_ROUTE, Server
from kubefox.kit._settings import KitSettings
from kubefox.kit._testing_results import Call
from kubefox.kit._transport import Receiver

#: The sender of requests that come from outside the app, as httpsrv's would.
HTTPSRV = Component(type=ComponentType.HTTP_ADAPTER, name="httpsrv", hash="test", id="test")


class InProcessKit:
    """One Kit served in-process: its identity, the env it gets and its route matcher."""

    def __init__(self, kit: Kit, settings: KitSettings, env: Mapping[str, Value]) -> None:
        self.kit = kit
        self.settings = settings
        self.identity = Component(
            type=ComponentType.KUBEFOX, app=settings.app, name=settings.name, hash=settings.hash
        )
        # Only declared vars reach a component (route vars included), as the platform does.
        declared = set(kit._env_vars)
        for spec in kit._routes:
            declared.update(spec.env_vars)
        self.env = {name: value for name, value in env.items() if name in declared}
        compiled = []
        for spec in kit._routes:
            try:
                rule = resolve(spec.rule, env)
            except RouteInvalidError:
                continue  # the platform leaves out a route whose vars are missing, too
            compiled.append(compile_route(rule, target=spec.id, id=spec.id))
        self.matcher = RouteMatcher(compiled)
        self._server: Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def route_id(self, handler: Handler) -> int:
        if handler is self.kit._default:
            return DEFAULT_ROUTE
        for spec in self.kit._routes:
            if spec.handler is handler:
                return spec.id
        raise InvalidError(f"{getattr(handler, '__name__', handler)!r} is no handler of this kit")

    def matched(self, event: Event, route: int | Handler | None) -> MatchedEvent:
        """What the platform would deliver: routes first, then the default handler."""
        params: dict[str, Any] = dict(event.params)
        values = event.values
        if route is None:
            match = self.matcher.match(event)
            if match is not None:
                route_id = match.route.id
                params.update(match.params)
                if match.path_suffix is not None:
                    values = {**values, VAL_PATH_SUFFIX: match.path_suffix}
            elif self.kit._default is not None:
                route_id = DEFAULT_ROUTE
            else:
                raise RouteNotFoundError()
        else:
            route_id = route if isinstance(route, int) else self.route_id(route)
        routed = msgspec.structs.replace(event, target=self.identity, params=params, values=values)
        return MatchedEvent(event=routed, route_id=route_id, env=dict(self.env))

    async def dispatch(
        self, event: Event, route: int | Handler | None, transport: ScriptedTransport
    ) -> tuple[Event, Event]:
        """The event as the kit received it and the reply its own server code gave.

        Raises:
            InvalidError: ``route`` names no handler of the kit.
        """
        try:
            matched = self.matched(event, route)
            data = encode_matched(matched, max_size=self.settings.max_event_size)
        except (RouteNotFoundError, ContentTooLargeError) as exc:
            # What the platform answers without reaching the component.
            return event, codec.error_event(event, exc, source=HTTPSRV)
        # The server's own decode, dispatch, deadline and error conversion, minus the network.
        answer = await self._server_for(transport)._process(data)
        return matched.event, codec.decode(answer, max_size=self.settings.max_event_size)

    def _server_for(self, transport: ScriptedTransport) -> Server:
        loop = asyncio.get_running_loop()
        if self._server is None or self._loop is not loop:
            # Built as Kit.run builds it; one per event loop, since it keeps the loop's clock.
            self._server = Server(
                settings=self.settings,
                transport=transport,
                routes=self.kit._routes,
                default=self.kit._default,
                dependencies=self.kit._dependencies,
                definition=self.kit.definition(),
            )
            self._loop = loop
        return self._server


class Script:
    """How one dependency answers: a Kit to dispatch to, after an optional delay."""

    def __init__(self, served: InProcessKit, delay: float) -> None:
        self.served = served
        self.delay = delay


class ScriptedTransport:
    """The Transport of an in-process Kit: requests are answered by scripts and recorded."""

    def __init__(self) -> None:
        self.scripts: dict[str, Script] = {}
        self.calls: list[Call] = []

    async def request(
        self,
        subject: str,
        data: bytes,
        *,
        timeout: float,  # noqa: ASYNC109 - the Transport protocol's signature
    ) -> bytes:
        event = codec.decode(data)
        name = event.target.name if event.target is not None else ""
        self.calls.append(Call(dependency=name, event=event, timeout=timeout))
        script = self.scripts.get(name)
        if script is None:
            raise UnavailableError(
                f"no reply is scripted for {name!r}: script one with KitClient.reply({name!r}, ...)"
            )
        try:
            async with asyncio.timeout(timeout):
                if script.delay > 0:
                    await _pause(script.delay)
                _, reply = await script.served.dispatch(event, None, self)
        except TimeoutError as exc:
            raise DeadlineExceededError(f"no reply within {timeout:.3g}s") from exc
        return codec.encode(reply)

    # The rest of the Transport protocol: an in-process Kit never subscribes or registers.
    async def subscribe(self, subject: str, *, queue: str, receiver: Receiver) -> None:
        return None

    async def unsubscribe(self) -> None:
        return None

    async def respond(self, reply: str, data: bytes, *, alone: bool = False) -> None:
        return None

    async def register(self, key: str, record: bytes) -> None:
        return None

    async def deregister(self, key: str) -> None:
        return None

    async def wait_disconnected(self) -> None:
        await asyncio.Event().wait()

    async def wait_connected(self) -> None:
        return None

    async def close(self) -> None:
        return None


async def _pause(seconds: float) -> None:
    if math.isinf(seconds):
        await asyncio.Event().wait()  # never answers: only a deadline ends this
    else:
        await asyncio.sleep(seconds)
