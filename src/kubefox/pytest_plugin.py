"""pytest fixtures that run apps on a real embedded KubeFox platform, one per test session.

Installing kubefox registers this module with pytest (entry point ``pytest11``),
so the fixtures are there in every test of every project that has kubefox::

    async def test_hello(kubefox_publish, kubefox_apply, kubefox_http) -> None:
        published = await kubefox_publish("examples/hello-world")
        await kubefox_apply("examples/hello-world/hack/environments")

        response = await kubefox_http.with_context(published, "qa").get("/qa/hello")

        assert response.text == "👋 Hello World!"

============================  ========  ===============================================
fixture                       scope     what it gives
============================  ========  ===============================================
kubefox_platform_settings     session   the platform's settings; override it to change them
kubefox_platform              session   a started :class:`~kubefox.platform.EmbeddedPlatform`
kubefox_publish               session   :class:`~kubefox.testing.AppPublisher`
kubefox_apply                 session   :class:`~kubefox.testing.ResourceApplier`
kubefox_http                  function  :class:`~kubefox.testing.HttpClient` for httpsrv
kubefox_https                 function  the same over HTTPS, trusting the platform's CA
kubefox_send                  session   :class:`~kubefox.testing.EventSender`
============================  ========  ===============================================

**Event loops.** The platform's connections and tasks belong to the event loop
that started them, so they live in pytest-asyncio's session loop
(``loop_scope="session"``), and every async test that uses a ``kubefox_*``
fixture must run in that loop too. The plugin marks such tests
``@pytest.mark.asyncio(loop_scope="session")`` when it collects them; every
other test keeps its own loop. A test marked with another loop scope fails with
an explanation. An async fixture of your own that uses a ``kubefox_*``
fixture must run in that loop too: declare it
``@pytest_asyncio.fixture(loop_scope="session")`` (the helpers refuse, with
that advice, to be called from another loop).

**Cheap to load.** pytest imports this module in every session wherever kubefox
is installed, with or without the platform's extras or pytest-asyncio, so it
imports nothing but pytest: the platform loads when a fixture is first used,
and without pytest-asyncio the async fixtures fail saying what is missing.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Final, Literal, NoReturn, TypeVar, cast

import pytest

if TYPE_CHECKING:
    from kubefox.platform import EmbeddedPlatform, PlatformSettings
    from kubefox.testing import AppPublisher, EventSender, HttpClient, ResourceApplier

#: The fixture every other kubefox fixture builds on: tests using it run in the session loop.
PLATFORM_FIXTURE = "kubefox_platform"
#: The pytest-asyncio loop the platform lives in.
LOOP_SCOPE: Final = "session"

_F = TypeVar("_F", bound=Callable[..., Any])


def _in_platform_loop(*, scope: Literal["session", "function"]) -> Callable[[_F], _F]:
    """Declare an async fixture that runs in the platform's (session) event loop."""
    try:
        import pytest_asyncio
    except ImportError:
        return _needs_pytest_asyncio(scope)
    # pytest_asyncio.fixture returns the function it decorates, typed generically.
    return cast("Callable[[_F], _F]", pytest_asyncio.fixture(scope=scope, loop_scope=LOOP_SCOPE))


def _needs_pytest_asyncio(scope: Literal["session", "function"]) -> Callable[[_F], _F]:
    def decorate(func: _F) -> _F:
        @functools.wraps(func)
        def missing(*args: Any, **kwargs: Any) -> NoReturn:
            pytest.fail(
                f"the {func.__name__} fixture needs pytest-asyncio: pip install pytest-asyncio",
                pytrace=False,
            )

        return cast("_F", pytest.fixture(scope=scope)(missing))

    return decorate


def _loop_scope(item: pytest.Item) -> str | None:
    """The loop scope the closest ``asyncio`` marker asks for; None if unmarked or unscoped."""
    marker = item.get_closest_marker("asyncio")
    if marker is None:
        return None
    scope = marker.kwargs.get("loop_scope") or marker.kwargs.get("scope")
    return str(scope) if scope else None


def _default_test_loop_scope(config: pytest.Config) -> str:
    try:
        return str(config.getini("asyncio_default_test_loop_scope"))
    except ValueError:  # an asyncio marker without pytest-asyncio: its default
        return "function"


def _uses_platform(item: pytest.Item) -> bool:
    return PLATFORM_FIXTURE in getattr(item, "fixturenames", ())


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run async tests that use the platform in its event loop, unless they chose one."""
    for item in items:
        if (
            _uses_platform(item)
            and item.get_closest_marker("asyncio") is not None
            and _loop_scope(item) is None
        ):
            # First, so it is the closest marker: pytest-asyncio reads that one.
            item.add_marker(pytest.mark.asyncio(loop_scope=LOOP_SCOPE), append=False)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail, with the fix, a test that uses the platform from another event loop."""
    if not _uses_platform(item) or item.get_closest_marker("asyncio") is None:
        return
    scope = _loop_scope(item) or _default_test_loop_scope(item.config)
    if scope != LOOP_SCOPE:
        pytest.fail(
            f"{item.nodeid} uses the kubefox platform fixtures, which live in pytest-asyncio's "
            f"session event loop, but runs in its {scope!r} loop: remove its loop_scope or "
            f'mark it @pytest.mark.asyncio(loop_scope="{LOOP_SCOPE}")',
            pytrace=False,
        )


@pytest.fixture(scope="session")
def kubefox_platform_settings(tmp_path_factory: pytest.TempPathFactory) -> PlatformSettings:
    """Settings of the session's platform: a temporary state directory, free ports.

    ``KUBEFOX_PLATFORM_*`` variables set the other fields (``..._LOG_LEVEL=debug``
    shows the platform's debug log). Override this fixture to change them.
    """
    from kubefox.platform import PlatformSettings

    return PlatformSettings(
        state_dir=tmp_path_factory.mktemp("kubefox-platform"),
        http_port=0,
        nats_port=0,
        shutdown_grace=3.0,
    )


@_in_platform_loop(scope="session")
async def kubefox_platform(
    kubefox_platform_settings: PlatformSettings,
) -> AsyncIterator[EmbeddedPlatform]:
    """The session's embedded platform: a real nats-server and every role, started once.

    A platform that cannot start (no nats-server binary, for one) fails the
    tests that use it; it never skips them. Everything stops at the end of the session.
    """
    from kubefox.core.errors import KubeFoxError
    from kubefox.platform import EmbeddedPlatform

    platform = EmbeddedPlatform(kubefox_platform_settings)
    try:
        await platform.start()
    except KubeFoxError as exc:
        pytest.fail(f"cannot start the embedded KubeFox platform: {exc}", pytrace=False)
    try:
        yield platform
    finally:
        await platform.stop()


@_in_platform_loop(scope="session")
async def kubefox_publish(
    kubefox_platform: EmbeddedPlatform, tmp_path_factory: pytest.TempPathFactory
) -> AppPublisher:
    """Publish an app and wait until it serves.

    ``result = await kubefox_publish(path, version=None)``: an app in a clean
    git work tree is published in place, otherwise a committed copy of what is
    on disk is. ``result.name`` is the AppDeployment.
    """
    from kubefox.testing import AppPublisher

    return AppPublisher(kubefox_platform, work_dir=tmp_path_factory.mktemp("kubefox-apps"))


@_in_platform_loop(scope="session")
async def kubefox_apply(kubefox_platform: EmbeddedPlatform) -> ResourceApplier:
    """Apply resource YAML files or directories, in order.

    ``await kubefox_apply(path, ...)`` returns once httpsrv routes with them.
    """
    from kubefox.testing import ResourceApplier

    return ResourceApplier(kubefox_platform)


@_in_platform_loop(scope="function")
async def kubefox_http(kubefox_platform: EmbeddedPlatform) -> AsyncIterator[HttpClient]:
    """An httpx client for httpsrv; ``.with_context(dep, ve).get(path)`` names the context."""
    from kubefox.testing import HttpClient

    async with HttpClient(base_url=kubefox_platform.http_url, timeout=30.0) as client:
        yield client


@_in_platform_loop(scope="function")
async def kubefox_https(kubefox_platform: EmbeddedPlatform) -> AsyncIterator[HttpClient]:
    """An httpx client for httpsrv's HTTPS listener that trusts the platform's CA only.

    Needs the platform's security on (``PlatformSettings.security``, the default).
    """
    from kubefox.testing import HttpClient

    url = kubefox_platform.https_url
    if url is None:
        pytest.fail(
            "kubefox_https needs the platform's security on: kubefox_platform_settings "
            "sets security=False",
            pytrace=False,
        )
    ca_file = kubefox_platform.security.ca_file
    async with HttpClient.trusting(ca_file, base_url=url, timeout=30.0) as client:
        yield client


@_in_platform_loop(scope="session")
async def kubefox_send(kubefox_platform: EmbeddedPlatform) -> AsyncIterator[EventSender]:
    """Send a raw event to a component over NATS and get its reply event.

    ``reply = await kubefox_send(deployment, component, event, route_id=-1)``.
    """
    from kubefox.testing import EventSender

    sender = await EventSender.connect(kubefox_platform)
    try:
        yield sender
    finally:
        await sender.aclose()
