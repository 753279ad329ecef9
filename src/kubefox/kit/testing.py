"""Test a component's handlers in-process: no NATS, no platform, milliseconds per test.

:class:`KitClient` sends a request to a :class:`~kubefox.kit.Kit` the way the
platform would, and returns what an HTTP client would get::

    from kubefox.kit.testing import KitClient, load_component

    frontend = load_component("components/frontend")

    async def test_hello() -> None:
        client = KitClient(frontend, env={"subPath": "qa"})
        client.reply("backend", text="World")

        response = await client.request("GET", "/qa/hello")

        assert response.text == "👋 Hello World!"
        assert len(client.calls("backend")) == 1

The request runs through the kit's own server code (the same decoding, route
ids, deadline and error conversion as a deployed component), so a handler that
raises gives the same 500 a user would see. Calls to dependencies go through an
in-memory transport that answers with what :meth:`KitClient.reply` scripted and
records every request for :meth:`KitClient.calls`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import re
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from kubefox.core.errors import InvalidError, KubeFoxError
from kubefox.core.events import (
    TYPE_HTTP,
    VAL_HEADER,
    VAL_HOST,
    VAL_METHOD,
    VAL_PATH,
    VAL_QUERY,
    VAL_URL,
    Category,
    Event,
    EventContext,
)
from kubefox.core.values import Value
from kubefox.kit._declarations import Dependency, Handler
from kubefox.kit._headers import HeaderInput, first, header_map, query_map
from kubefox.kit._inprocess import HTTPSRV, InProcessKit, Script, ScriptedTransport
from kubefox.kit._kit import Kit
from kubefox.kit._kontext import _MISSING, Kontext, _body
from kubefox.kit._messages import Response
from kubefox.kit._settings import KitSettings
from kubefox.kit._testing_results import Call, ClientResponse

__all__ = ["Call", "ClientResponse", "KitClient", "ReplyHandler", "load_component"]

#: A scripted dependency: gets the request as a :class:`~kubefox.kit.Kontext`, like a handler.
ReplyHandler = Callable[[Kontext], Response | Awaitable[Response]]

_NS = 1_000_000_000
_NOT_IDENTIFIER = re.compile(r"\W")


def _as_kit(handler: ReplyHandler) -> Kit:
    """A Kit whose default handler is ``handler``: a scripted dependency runs like a component."""
    kit = Kit()

    async def default(k: Kontext) -> Response:
        result = handler(k)
        return await result if inspect.isawaitable(result) else result

    kit.default(default)
    return kit


class KitClient:
    """Sends requests to a Kit in-process and scripts the dependencies it calls.

    Args:
        kit: The component under test.
        env: The virtual environment's variables; the component gets only those
            it declared (route variables included), and routes are resolved with them.
        component: The component's name.
        app: The App's name.
        platform: The platform's name.
        virtual_environment: The virtual environment of every request.
        app_deployment: The AppDeployment of every request.
        timeout: Default time to live of a request, in seconds.
    """

    def __init__(
        self,
        kit: Kit,
        *,
        env: Mapping[str, Value] | None = None,
        component: str = "component",
        app: str = "app",
        platform: str = "test",
        virtual_environment: str = "test",
        app_deployment: str = "test",
        timeout: float = 10.0,
    ) -> None:
        self._env: dict[str, Value] = dict(env or {})
        self._settings = self._settings_for(component, app=app, platform=platform)
        self._served = InProcessKit(kit, self._settings, self._env)
        self._context = EventContext(
            platform=platform,
            virtual_environment=virtual_environment,
            app_deployment=app_deployment,
        )
        self._timeout = timeout
        self._transport = ScriptedTransport()

    @property
    def context(self) -> EventContext:
        """The context (platform, virtual environment, AppDeployment) of every request."""
        return self._context

    def reply(
        self,
        dependency: Dependency | str,
        handler: Kit | ReplyHandler | None = None,
        /,
        *,
        text: str | None = None,
        json: Any = _MISSING,
        body: bytes | None = None,
        content_type: str | None = None,
        status: int = 200,
        headers: HeaderInput | None = None,
        error: KubeFoxError | None = None,
        delay: float = 0.0,
    ) -> None:
        """Script how ``dependency`` answers from now on (replacing any earlier script).

        Give one of: ``handler`` (a function of the request's
        :class:`~kubefox.kit.Kontext` returning a :class:`~kubefox.kit.Response`,
        exactly like a handler, or a whole :class:`~kubefox.kit.Kit` that
        answers with its routes and default handler), ``text``, ``json`` or
        ``body`` (answered with ``status`` and ``headers``), or ``error`` (the
        caller's ``k.request`` raises it). Nothing at all answers an empty 200.

        Args:
            dependency: A dependency the kit declared, or its name.
            handler: Answers each request; it may raise, as a handler may.
            text: A ``text/plain`` body.
            json: An object answered as a JSON body.
            body: A body of type ``content_type``.
            content_type: The media type of ``body``.
            status: The status code of the answer.
            headers: Headers of the answer.
            error: The error to answer with.
            delay: Seconds to wait before answering; ``math.inf`` never answers,
                so the caller gets :class:`~kubefox.kit.DeadlineExceededError`
                when its timeout runs out.

        Raises:
            InvalidError: ``dependency`` is not declared by the kit, or more
                than one answer was given.
        """
        name = dependency.name if isinstance(dependency, Dependency) else dependency
        if name not in self._served.kit._dependencies:
            declared = ", ".join(sorted(self._served.kit._dependencies)) or "none"
            raise InvalidError(
                f"{name!r} is not a declared dependency of this kit (declared: {declared})"
            )
        given = [
            what
            for what, value in (
                ("handler", handler),
                ("text", text),
                ("body", body),
                ("error", error),
            )
            if value is not None
        ] + (["json"] if json is not _MISSING else [])
        if len(given) > 1:
            raise InvalidError(f"give one answer, not {' and '.join(given)}")
        if isinstance(handler, Kit):
            kit = handler
        elif handler is not None:
            kit = _as_kit(handler)
        else:
            kit = _as_kit(
                _static(
                    text=text,
                    json=json,
                    body=body,
                    content_type=content_type,
                    status=status,
                    headers=headers,
                    error=error,
                )
            )
        settings = self._settings_for(
            name, app=self._settings.app, platform=self._settings.platform
        )
        self._transport.scripts[name] = Script(InProcessKit(kit, settings, self._env), delay)

    def calls(self, dependency: Dependency | str | None = None) -> list[Call]:
        """The requests sent to ``dependency`` so far (to any dependency if ``None``), in order."""
        if dependency is None:
            return list(self._transport.calls)
        name = dependency.name if isinstance(dependency, Dependency) else dependency
        return [call for call in self._transport.calls if call.dependency == name]

    async def request(
        self,
        method: str = "GET",
        path: str = "/",
        *,
        query: HeaderInput | None = None,
        headers: HeaderInput | None = None,
        body: bytes | str | None = None,
        json: Any = _MISSING,
        content_type: str | None = None,
        host: str = "localhost",
        route: int | Handler | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the request's TTL, as httpsrv sets it
    ) -> ClientResponse:
        """Send an HTTP request to the kit, as httpsrv would, and return the answer.

        Args:
            method: The HTTP method.
            path: The URL path; a ``?query`` part is parsed into the query.
            query: Query parameters.
            headers: Request headers.
            body: The body; ``str`` is sent as UTF-8 text.
            json: An object to send as a JSON body (instead of ``body``).
            content_type: The media type of the body (also sent as ``Content-Type``).
            host: The host the client addressed.
            route: The route to run, by id (``-1`` is the default handler) or by
                handler function; ``None`` matches the request against the
                kit's routes, resolved with the env, then falls back to the
                default handler, as for a request addressed to this component.
                Nothing matching is a 404, as on the platform.
            timeout: The request's time to live in seconds; the client's by default.

        Raises:
            InvalidError: both ``body`` and ``json`` were given, or ``route``
                names no handler of the kit.
        """
        path, _, raw_query = path.partition("?")
        merged_query: dict[str, list[str]] = {}
        for name, value in _parse_query(raw_query):
            merged_query.setdefault(name, []).append(value)
        for name, values in query_map(query).items():
            merged_query.setdefault(name, []).extend(values)
        header = {k: v for k, v in header_map(headers).items() if k != "Host"}
        content, media = _body(body, json, content_type, default=(b"", ""))
        if media:
            header.setdefault("Content-Type", [media])
        media = first(header.get("Content-Type", ())) or ""
        query_string = urlencode([(k, v) for k, vs in merged_query.items() for v in vs])
        ttl = self._timeout if timeout is None else timeout
        host = host.lower()  # as httpsrv reads it
        event = Event(
            type=TYPE_HTTP,
            category=Category.REQUEST,
            ttl=int(ttl * _NS),
            context=self._context,
            source=HTTPSRV,
            values={
                VAL_URL: f"http://{host}{path}" + (f"?{query_string}" if query_string else ""),
                VAL_HOST: host,
                VAL_PATH: path,
                VAL_QUERY: merged_query,
                VAL_METHOD: method.upper(),
                VAL_HEADER: header,
            },
            content=content,
            content_type=media,
        )
        received, reply = await self._served.dispatch(event, route, self._transport)
        return ClientResponse(received, reply)

    @staticmethod
    def _settings_for(name: str, *, app: str, platform: str) -> KitSettings:
        return KitSettings(
            platform=platform, app=app, name=name, hash="test", nats_url="memory://kit-testing"
        )


def _parse_query(raw: str) -> list[tuple[str, str]]:
    return parse_qsl(raw, keep_blank_values=True) if raw else []


def _static(
    *,
    text: str | None,
    json: Any,
    body: bytes | None,
    content_type: str | None,
    status: int,
    headers: HeaderInput | None,
    error: KubeFoxError | None,
) -> ReplyHandler:
    response_body: bytes | str | None = text if text is not None else body
    content, media = _body(response_body, json, content_type, default=(b"", ""))
    response = Response(
        status=status, headers=header_map(headers), content_type=media, content=content
    )

    def answer(k: Kontext) -> Response:
        if error is not None:
            raise error
        return response

    return answer


def load_component(path: str | os.PathLike[str]) -> Kit:
    """Import a component's ``main.py`` under a module name of its own and return its Kit.

    Every component has a ``main.py``, so importing two of them as ``main``
    would clash; this loads each by path. While it runs, the component's
    directory is first on ``sys.path``, as when the platform runs
    ``python main.py``, so the component can import its own modules.

    Args:
        path: The component's directory or its ``main.py``.

    Returns:
        The module's Kit: the one named ``kit``, else the only one it defines.

    Raises:
        InvalidError: there is no such file, or no single Kit in it.
    """
    file = Path(path)
    if file.is_dir():
        file = file / "main.py"
    if not file.is_file():
        raise InvalidError(f"no component at {path}: {file} is not a file")
    file = file.resolve()
    digest = hashlib.sha256(str(file).encode()).hexdigest()[:12]
    module_name = f"kubefox_component_{_NOT_IDENTIFIER.sub('_', file.parent.name)}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise InvalidError(f"cannot import {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    sys.path.insert(0, str(file.parent))
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    finally:
        sys.path.remove(str(file.parent))
    named = getattr(module, "kit", None)
    if isinstance(named, Kit):
        return named
    kits = [value for value in vars(module).values() if isinstance(value, Kit)]
    if len(kits) != 1:
        raise InvalidError(f"{file} defines {len(kits)} Kits; name the one to test 'kit'")
    return kits[0]
