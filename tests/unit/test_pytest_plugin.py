"""The pytest plugin: registered by installing kubefox, event loops kept apart, failures loud.

Each test runs a small test session with ``pytester``. The loop tests stand a
fake ``kubefox_platform`` in for the real one (a conftest fixture overrides the
plugin's), since what they check is which event loop each test runs in; the
real fixtures are exercised in ``tests/e2e/test_testing_fixtures.py`` and by
the hello-world example's own tests.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest_plugins = ["pytester"]

INI = """
[pytest]
asyncio_mode = {mode}
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""

FAKE_PLATFORM = """
import asyncio

import pytest_asyncio


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def kubefox_platform():
    return asyncio.get_running_loop()
"""

LOOPS = """
import asyncio

seen = {}


async def test_platform_runs_in_the_platform_loop(kubefox_platform):
    seen["platform"] = asyncio.get_running_loop()
    assert seen["platform"] is kubefox_platform


async def test_platform_again_runs_in_the_same_loop(kubefox_platform):
    assert asyncio.get_running_loop() is kubefox_platform


async def test_plain_gets_its_own_loop():
    seen["plain"] = asyncio.get_running_loop()
    assert seen["plain"] is not seen["platform"]


async def test_plain_again_gets_another_loop():
    loop = asyncio.get_running_loop()
    assert loop is not seen["plain"]
    assert loop is not seen["platform"]
"""


def _session(
    pytester: pytest.Pytester, *, mode: str = "auto", conftest: str = FAKE_PLATFORM
) -> None:
    pytester.makeini(INI.format(mode=mode))
    pytester.makeconftest(conftest)


def test_plugin_offers_the_fixtures_once_kubefox_is_installed(pytester: pytest.Pytester) -> None:
    """The pytest11 entry point loads the plugin: every kubefox fixture is listed, documented."""
    pytester.makeini(INI.format(mode="auto"))

    result = pytester.runpytest("--fixtures", "-p", "no:randomly")

    result.stdout.fnmatch_lines(
        [
            "*kubefox_platform_settings [[]session scope[]]*",
            "*Settings of the session's platform*",
            "*kubefox_platform [[]session scope[]]*",
            "*kubefox_publish [[]session scope[]]*",
            "*kubefox_apply [[]session scope[]]*",
            "kubefox_http -- *",
            "*kubefox_send [[]session scope[]]*",
        ]
    )


def test_platform_tests_share_the_session_loop_and_others_keep_their_own(
    pytester: pytest.Pytester,
) -> None:
    """Async tests using the platform run in its session loop; every other test gets a new one."""
    _session(pytester)
    pytester.makepyfile(test_loops=LOOPS)

    result = pytester.runpytest("-p", "no:randomly")

    result.assert_outcomes(passed=4)


def test_platform_tests_marked_without_a_scope_join_the_session_loop_in_strict_mode(
    pytester: pytest.Pytester,
) -> None:
    """A bare ``@pytest.mark.asyncio`` (strict mode) is given the session loop too."""
    _session(pytester, mode="strict")
    pytester.makepyfile(
        test_strict="""
        import asyncio

        import pytest


        @pytest.mark.asyncio
        async def test_one(kubefox_platform):
            assert asyncio.get_running_loop() is kubefox_platform


        @pytest.mark.asyncio
        async def test_two(kubefox_platform):
            assert asyncio.get_running_loop() is kubefox_platform
        """
    )

    result = pytester.runpytest("-p", "no:randomly")

    result.assert_outcomes(passed=2)


def test_platform_test_in_another_loop_scope_fails_with_the_fix(
    pytester: pytest.Pytester,
) -> None:
    """A test that asks for another loop than the platform's fails, saying how to fix it."""
    _session(pytester)
    pytester.makepyfile(
        test_wrong_loop="""
        import pytest


        @pytest.mark.asyncio(loop_scope="function")
        async def test_wrong_loop(kubefox_platform):
            pass
        """
    )

    result = pytester.runpytest("-p", "no:randomly")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*test_wrong_loop* uses the kubefox platform fixtures*'function' loop*"]
    )
    result.stdout.fnmatch_lines(['*@pytest.mark.asyncio(loop_scope="session")*'])


def test_missing_nats_server_fails_platform_tests_instead_of_skipping(
    pytester: pytest.Pytester,
) -> None:
    """Without a nats-server binary every test using the platform errors; none is skipped."""
    _session(
        pytester,
        conftest="""
        import pytest

        from kubefox.core.errors import UnavailableError


        def _missing():
            raise UnavailableError("no nats-server binary (hidden by the test)")


        @pytest.fixture(scope="session", autouse=True)
        def _no_nats_server():
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr("kubefox.store.natsd.find_nats_server", _missing)
                yield
        """,
    )
    pytester.makepyfile(
        test_platform="""
        async def test_async(kubefox_platform):
            pass


        def test_sync(kubefox_platform):
            pass
        """
    )

    result = pytester.runpytest("-p", "no:randomly")

    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        ["*cannot start the embedded KubeFox platform: unavailable: no nats-server binary*"]
    )


def test_plugin_without_pytest_asyncio_loads_and_says_what_is_missing(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session without pytest-asyncio still runs; only the async fixtures fail, naming it."""
    hidden = pytester.mkpydir("hidden")
    (hidden / "pytest_asyncio").mkdir()
    (hidden / "pytest_asyncio" / "__init__.py").write_text(
        "raise ImportError('pytest-asyncio is hidden by the test')\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(hidden))
    pytester.makepyfile(
        test_plain="""
        def test_plain():
            pass


        def test_platform(kubefox_platform):
            pass
        """
    )

    # Only this plugin: a subprocess session otherwise spends a second loading the others.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")

    result = pytester.runpytest_subprocess("-p", "kubefox.pytest_plugin")

    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*kubefox_platform fixture needs pytest-asyncio*"])


def test_importing_the_plugin_loads_neither_the_platform_nor_its_clients() -> None:
    """pytest imports the plugin in every session, so it must stay cheap and never fail."""
    heavy = ("kubefox.platform", "kubefox.testing", "httpx", "nats", "starlette", "pydantic")
    code = (
        "import sys, kubefox.pytest_plugin\n"
        f"print([name for name in {heavy!r} if name in sys.modules])"
    )

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"
