"""The component builder: declare env vars, dependencies and routes, then start.

A component module builds one :class:`Kit` at import time, declares what it
needs and what it serves with decorators, and calls :meth:`Kit.start` under
``if __name__ == "__main__"``. Declarations are validated as they are made,
so a bad route rule fails the import (and ``--export``), not the first request.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from kubefox.core import collector
from kubefox.core.errors import BrokerUnavailableError, InvalidError
from kubefox.core.events import ComponentType
from kubefox.core.values import EnvVarType
from kubefox.kit._declarations import (
    Dependency,
    EnvVar,
    EventType,
    Handler,
    RouteSpec,
    check_component_name,
    check_env_var_name,
    check_event_type_name,
    check_rule,
)
from kubefox.kit._server import Server
from kubefox.kit._settings import KitSettings
from kubefox.kit._transport import Transport

if TYPE_CHECKING:  # the OpenTelemetry SDK loads only when the component has telemetry on
    from kubefox.telemetry.roles import RoleTelemetry

H = TypeVar("H", bound=Handler)
D = TypeVar("D", EnvVar, Dependency)

#: Exit codes of :meth:`Kit.start`.
EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_BAD_SETTINGS = 2
EXIT_PLATFORM_LOST = 3


class Kit:
    """A KubeFox component: what it needs, what it serves, and how it runs.

    Example::

        kit = Kit()
        backend = kit.component("backend")

        @kit.route("Path(`/{{.Vars.subPath}}/hello`)")
        async def hello(k: Kontext) -> Response:
            reply = await k.request(backend)
            return k.text(f"Hello {reply.text}!")

        if __name__ == "__main__":
            kit.start()

    The component's identity (platform, app, name, hash) is not given here:
    it comes from :class:`KitSettings` when the process starts.
    """

    def __init__(self) -> None:
        self._env_vars: dict[str, EnvVar] = {}
        self._dependencies: dict[str, Dependency] = {}
        self._routes: list[RouteSpec] = []
        self._default: Handler | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._telemetry: RoleTelemetry | None = None

    # -- declarations -------------------------------------------------------------------

    def env_var(
        self, name: str, *, type: EnvVarType | None = None, required: bool = False
    ) -> EnvVar:
        """Declare an env var the component reads; only declared vars are passed to it.

        Declaring the same variable again with the same options returns an equal
        :class:`EnvVar`.

        Args:
            name: The variable's name in the virtual environment's data.
            type: The type its value must have, or ``None`` for any.
            required: Refuse deployments whose environment lacks the variable.

        Raises:
            InvalidError: the name is not valid, or it was declared with other options.
        """
        var = EnvVar(name=check_env_var_name(name), type=type, required=required)
        return self._declare(self._env_vars, var, "env var")

    def component(self, name: str) -> Dependency:
        """Declare a KubeFox component this component sends requests to.

        Raises:
            InvalidError: the name is not valid, or it was declared as an adapter.
        """
        dep = Dependency(name=check_component_name(name), type=ComponentType.KUBEFOX)
        return self._declare(self._dependencies, dep, "dependency")

    def http_adapter(self, name: str) -> Dependency:
        """Declare an HTTP adapter this component sends requests to.

        Raises:
            InvalidError: the name is not valid, or it was declared as a component.
        """
        dep = Dependency(name=check_component_name(name), type=ComponentType.HTTP_ADAPTER)
        return self._declare(self._dependencies, dep, "dependency")

    def route(self, rule: str) -> Callable[[H], H]:
        """Register the decorated handler for events matching ``rule``.

        Routes get ids 0, 1, 2... in registration order. Variables the rule's
        templates use (``{{.Vars.subPath}}``) become the route's env var schema,
        all required. The handler is returned unchanged.

        Args:
            rule: A route rule, e.g. ``Path(`/{{.Vars.subPath}}/hello`)``.

        Raises:
            RouteInvalidError: the rule does not parse or names a secret.
        """
        env_vars = check_rule(rule)

        def register(handler: H) -> H:
            self._routes.append(
                RouteSpec(id=len(self._routes), rule=rule, env_vars=env_vars, handler=handler)
            )
            return handler

        return register

    def event_type(self, name: str) -> EventType:
        """Declare an event type of the app's own, e.g. ``com.example.ping``.

        Events of that type are sent through httpsrv with ``kf-type=<name>``
        (or ``fox test send``); :meth:`on` registers their handler.

        Raises:
            InvalidError: the name is not valid or lies under ``io.kubefox.``.
        """
        return EventType(check_event_type_name(name))

    def on(self, event_type: EventType) -> Callable[[H], H]:
        """Register the decorated handler for events of ``event_type``.

        It is a route with rule ``Type(`<name>`)``, declared in the component
        definition like any other route.

        Raises:
            InvalidError: ``event_type`` was not made by :meth:`event_type`.
        """
        if not isinstance(event_type, EventType):
            raise InvalidError(
                f"{event_type!r} is not an EventType: declare it with kit.event_type"
            )
        return self.route(event_type.rule)

    def default(self, handler: H) -> H:
        """Register the decorated handler for events no route matched (route id -1).

        Raises:
            InvalidError: a default handler is already registered.
        """
        if self._default is not None:
            raise InvalidError("a default handler is already registered")
        self._default = handler
        return handler

    @staticmethod
    def _declare(registry: dict[str, D], item: D, what: str) -> D:
        existing = registry.setdefault(item.name, item)
        if existing != item:
            raise InvalidError(
                f"{what} {item.name!r} is already declared differently: {existing!r}",
                name=item.name,
            )
        return existing

    # -- the definition -----------------------------------------------------------------

    def definition(self) -> dict[str, Any]:
        """The ``ComponentDefinition`` in upstream's JSON shape, as ``--export`` prints it.

        ``{"type": "KubeFox", "routes": [...], "defaultHandler": bool,
        "envVarSchema": {...}, "dependencies": {...}}``; ``routes``,
        ``envVarSchema`` and ``dependencies`` are left out when empty.
        """
        definition: dict[str, Any] = {"type": str(ComponentType.KUBEFOX)}
        if self._routes:
            definition["routes"] = [route.spec() for route in self._routes]
        definition["defaultHandler"] = self._default is not None
        if self._env_vars:
            definition["envVarSchema"] = {n: v.schema() for n, v in self._env_vars.items()}
        if self._dependencies:
            definition["dependencies"] = {
                n: {"type": str(d.type)} for n, d in self._dependencies.items()
            }
        return definition

    # -- running ------------------------------------------------------------------------

    def start(self, argv: Sequence[str] | None = None) -> NoReturn:
        """Run the component process until stopped; never returns.

        With ``--export`` among the arguments, print :meth:`definition` as JSON
        and exit 0. Otherwise read :class:`KitSettings` from the environment,
        configure logging, and serve on uvloop (when installed) until SIGTERM or
        SIGINT.

        Exit codes: 0 stopped cleanly; 1 unexpected failure; 2 invalid or
        missing settings (the problems are printed on stderr); 3 NATS could not
        be reached, or the connection was lost for longer than the platform grace.

        Args:
            argv: Command-line arguments; ``sys.argv[1:]`` by default.
        """
        args = sys.argv[1:] if argv is None else argv
        if "--export" in args:
            sys.stdout.write(json.dumps(self.definition()) + "\n")
            sys.stdout.flush()
            sys.exit(EXIT_OK)
        try:
            # The one place a component reads its environment: the process entry point.
            settings = KitSettings.from_environ(os.environ)  # noqa: TID251
        except InvalidError as exc:
            sys.stderr.write(f"kubefox kit: {exc}\n")
            sys.exit(EXIT_BAD_SETTINGS)
        from kubefox.telemetry.logging import configure_logging

        forward = []
        if settings.telemetry.exporting:
            from kubefox.telemetry import user_spans

            self._telemetry = _telemetry(settings)
            forward.append(self._telemetry.log_forwarder("kubefox.kit"))
            # the handler's own OpenTelemetry spans go where the component's go
            user_spans.install(self._telemetry.providers.tracer_provider)
        configure_logging(log_format=settings.log_format, level=settings.log_level, forward=forward)
        # The process has loaded all it serves with (the handlers' modules, the SDKs).
        collector.settle()
        sys.exit(_run_blocking(self._main(settings)))

    async def _main(self, settings: KitSettings) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)
        try:
            await self.run(settings)
        except BrokerUnavailableError:
            return EXIT_PLATFORM_LOST  # run() has logged why
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
            if self._telemetry is not None:
                await self._telemetry.aclose()  # the last spans and log lines go out
        return EXIT_OK

    async def run(self, settings: KitSettings, *, transport: Transport | None = None) -> None:
        """Serve until :meth:`stop` is called; the awaitable form of :meth:`start`.

        Connects to NATS (unless ``transport`` is given), subscribes to the
        component's subject, registers the instance and refreshes the record
        every heartbeat interval. On stop it stops receiving, lets in-flight
        handlers finish within the shutdown grace, cancels the rest,
        deregisters, and closes the transport (a given one too).

        Args:
            settings: Identity, platform address and limits of this instance.
            transport: How to reach the platform; NATS at ``settings.nats_url`` by default.

        Raises:
            BrokerUnavailableError: NATS could not be reached within the platform
                grace, or the connection was lost for longer than that.
            RuntimeError: this Kit is already running.
        """
        if self._stopping is not None:
            raise RuntimeError("this Kit is already running")
        self._loop = asyncio.get_running_loop()
        stopping = self._stopping = asyncio.Event()
        telemetry = self._telemetry
        owned = telemetry is None and settings.telemetry.exporting
        if owned:
            telemetry = _telemetry(settings)
        try:
            if transport is None:
                from kubefox.kit._natsio import connect

                transport = await connect(settings)
            try:
                server = Server(
                    settings=settings,
                    transport=transport,
                    routes=self._routes,
                    default=self._default,
                    dependencies=self._dependencies,
                    definition=self.definition(),
                    tracer=None if telemetry is None else telemetry.tracer,
                    metrics=None if telemetry is None else telemetry.metrics,
                )
                await server.serve(stopping)
            finally:
                await transport.close()
        finally:
            self._stopping = None
            self._loop = None
            if owned and telemetry is not None:
                await telemetry.aclose()

    def stop(self) -> None:
        """Ask a running Kit to shut down gracefully; idempotent and safe from signal handlers.

        Does nothing if the Kit is not running. May be called from any thread.
        """
        loop, stopping = self._loop, self._stopping
        if loop is None or stopping is None:
            return
        try:
            loop.call_soon_threadsafe(stopping.set)
        except RuntimeError:  # the loop closed meanwhile: nothing left to stop
            return


def _telemetry(settings: KitSettings) -> RoleTelemetry:
    """The component's telemetry; imports the OpenTelemetry SDK, so only when it is on."""
    from kubefox.telemetry.roles import component_telemetry

    return component_telemetry(
        settings.telemetry,
        platform=settings.platform,
        app=settings.app,
        name=settings.name,
        hash=settings.hash,
        instance_id=settings.instance_id,
    )


def _run_blocking(main: Coroutine[Any, Any, int]) -> int:
    """Run coroutine ``main`` to completion on uvloop if installed, else asyncio."""
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # uvloop is an optional extra (kubefox[kit])
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        result: int = runner.run(main)
    return result
