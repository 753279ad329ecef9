"""Send one raw event straight to a component of a deployment and get its reply event.

This is what httpsrv does after routing, minus the routing: the caller says
which component and which handler (a route id, ``-1`` for the default), and
the event goes over NATS to that component's subject at the deployment's hash.
With a virtual environment named, the component gets the env vars it declared
from that environment's data, as it would on the platform.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import msgspec

from kubefox.adapters.http.nats import NatsClient, NatsRequester, close, connect
from kubefox.core import codec, subjects
from kubefox.core.errors import NotFoundError
from kubefox.core.events import (
    TYPE_KUBEFOX,
    Category,
    Component,
    ComponentType,
    Event,
    EventContext,
    MatchedEvent,
)
from kubefox.core.values import Value
from kubefox.platform import EmbeddedPlatform
from kubefox.publish import PublishResult
from kubefox.resources import AppDeployment
from kubefox.router import Router
from kubefox.testing._apps import check_loop

_NS = 1_000_000_000
#: Who sent an event a test sent, unless the event says otherwise.
TEST_SOURCE = Component(type=ComponentType.PLATFORM, name="pytest")


class EventSender:
    """Sends raw events to components over NATS; the ``kubefox_send`` fixture.

    Build one with :meth:`connect` in the platform's event loop, call it
    there, and :meth:`aclose` it when done.
    """

    def __init__(self, platform: EmbeddedPlatform, client: NatsClient) -> None:
        self._loop = asyncio.get_running_loop()
        self._platform = platform
        self._client = client
        self._requester = NatsRequester(client)
        self._router = Router(platform.view, platform=platform.settings.name)

    @classmethod
    async def connect(cls, platform: EmbeddedPlatform) -> EventSender:
        """A sender with its own connection to ``platform``'s NATS server.

        Raises:
            UnavailableError: NATS cannot be reached.
        """
        return cls(platform, await connect(await platform.nats_options(name="kubefox-pytest")))

    async def aclose(self) -> None:
        """Close the NATS connection; idempotent."""
        await close(self._client)

    async def __call__(
        self,
        deployment: str | PublishResult,
        component: str,
        event: Event | MatchedEvent | None = None,
        *,
        virtual_environment: str | None = None,
        route_id: int | None = None,
        env: Mapping[str, Value] | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 - the event's TTL and the wait for its reply
    ) -> Event:
        """Send ``event`` to ``component`` of ``deployment`` and return the reply event.

        Empty fields of the event are filled in: type ``io.kubefox.kubefox``,
        category REQUEST, a TTL of ``timeout``, the context (platform,
        deployment, virtual environment), a ``pytest`` source; the target is
        always the component at the deployment's hash.

        Args:
            deployment: The AppDeployment's name, or the result of publishing it.
            component: The component's name in the deployment.
            event: The event, or a ``MatchedEvent`` carrying the route id and
                env too; an empty request if ``None``.
            virtual_environment: Resolve the context and the component's env
                vars from this VirtualEnvironment (needed when the component
                calls other components).
            route_id: The handler to run: a route id, ``-1`` for the default
                handler (the default, unless ``event`` is a ``MatchedEvent``).
            env: The env vars the component gets, instead of the resolved ones.
            timeout: Seconds to wait for the reply.

        Returns:
            The reply: a RESPONSE event, or an ``io.kubefox.error`` event
            (``kubefox.core.codec.error_from_event`` turns it into the error).

        Raises:
            NotFoundError: no such deployment, component or virtual environment.
            UnavailableError: no instance of the component is running.
            DeadlineExceededError: no reply within ``timeout``.
            RuntimeError: called from another event loop than the platform's.
        """
        check_loop(self._loop, "kubefox_send")
        name = deployment.name if isinstance(deployment, PublishResult) else deployment
        if isinstance(event, MatchedEvent):
            matched = event
        else:
            matched = MatchedEvent(event=Event() if event is None else event)
        context = EventContext(
            platform=self._platform.settings.name,
            app_deployment=name,
            virtual_environment=virtual_environment or "",
        )
        resolved_env: dict[str, Value] = dict(matched.env)
        if virtual_environment is not None:
            resolved = self._router.context(name, virtual_environment)
            target = resolved.component(component)
            if not matched.env:
                resolved_env = resolved.env_for(component)
        else:
            target = self._target(name, component)
        if target is None:
            raise NotFoundError(f'component "{component}" is not part of AppDeployment "{name}"')
        sent = _filled(matched.event, context=context, target=target, timeout=timeout)
        data = codec.encode_matched(
            MatchedEvent(
                event=sent,
                route_id=matched.route_id if route_id is None else route_id,
                env=dict(env) if env is not None else resolved_env,
            )
        )
        subject = subjects.component(context.platform, target.app, target.name, target.hash)
        return codec.decode(await self._requester.request(subject, data, timeout=timeout))

    def _target(self, deployment: str, component: str) -> Component | None:
        found = self._platform.view.get(AppDeployment, deployment)
        if found is None:
            raise NotFoundError(f'AppDeployment "{deployment}" not found')
        definition = found.spec.components.get(component)
        if definition is None:
            return None
        return Component(
            type=str(definition.type),
            app=found.spec.app_name,
            name=component,
            hash=definition.hash,
        )


def _filled(event: Event, *, context: EventContext, target: Component, timeout: float) -> Event:
    """``event`` with its empty fields set as the platform would have set them."""
    given = event.context
    return msgspec.structs.replace(
        event,
        type=event.type or TYPE_KUBEFOX,
        category=event.category or Category.REQUEST,
        ttl=event.ttl or int(timeout * _NS),
        context=EventContext(
            platform=given.platform or context.platform,
            virtual_environment=given.virtual_environment or context.virtual_environment,
            app_deployment=given.app_deployment or context.app_deployment,
            release_manifest=given.release_manifest,
        ),
        source=event.source if event.source != Component() else TEST_SOURCE,
        target=target,
    )
