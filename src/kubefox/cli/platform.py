"""``fox up``, ``fox down``, ``fox status``: start, stop and look at the embedded platform.

``fox up`` starts the platform in the background by default (upstream users
expect a platform that keeps running while they work in the same terminal):
it starts ``fox up --foreground`` detached, with its log in the state
directory, waits until everything serves and prints where each part listens.
``--foreground`` runs it in this terminal until Ctrl-C. ``fox up`` is the only
command that starts the platform itself; ``status`` asks the API.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from kubefox.cli import daemon
from kubefox.cli.client import ApiClient, path
from kubefox.cli.errors import fail, reports_errors, stderr
from kubefox.cli.options import (
    DEFAULT_STATE_DIR,
    ApiOption,
    OutputFormat,
    OutputOption,
    StateDirOption,
    duration_option,
)
from kubefox.cli.output import emit, render_table
from kubefox.core import collector

if TYPE_CHECKING:
    from kubefox.api import ApiSettings
    from kubefox.platform import PlatformSettings

_PARTS = (
    ("api", "API (fox talks to it)"),
    ("http", "httpsrv (your apps)"),
    ("https", "httpsrv, HTTPS"),
    ("nats", "nats-server (JetStream)"),
    ("caFile", "CA (verifies HTTPS)"),
)
#: Parts a platform may not have (security off): not printed when absent.
_OPTIONAL_PARTS = frozenset({"https", "caFile"})


def _print_up(info: dict[str, Any], *, background: bool) -> None:
    endpoints = info.get("endpoints", {})
    where = "in the background" if background else "in this terminal"
    stderr.print(
        f"[green]✓[/] platform [bold]{escape(str(endpoints.get('platform')))}[/] is up "
        f"(pid {info.get('pid')}, {where})"
    )
    for key, label in _PARTS:
        if endpoints.get(key) is None and key in _OPTIONAL_PARTS:
            continue
        stderr.print(f"  {label:<26} {endpoints.get(key)}")
    stderr.print(f"  {'state directory':<26} {info.get('stateDir')}")
    if background:
        stderr.print(f"  {'log':<26} {info.get('log')}")
    urls = info.get("demoUrls") or []
    if urls:
        stderr.print("[green]✓[/] the demo app is published and running. Try:")
        for url in urls:
            stderr.print(f"  curl '{escape(url)}'")
        secure = _over_https(str(urls[-1]), endpoints)
        if secure is not None:
            stderr.print("  ...and over HTTPS, trusting the platform's CA:")
            stderr.print(f"  curl --cacert {escape(secure[1])} '{escape(secure[0])}'")


def _over_https(url: str, endpoints: dict[str, Any]) -> tuple[str, str] | None:
    """``url`` on httpsrv's HTTPS listener, and the CA file; ``None`` without HTTPS."""
    http, https, ca_file = (endpoints.get(k) for k in ("http", "https", "caFile"))
    if not (http and https and ca_file) or not url.startswith(str(http)):
        return None
    return str(https) + url.removeprefix(str(http)), str(ca_file)


@reports_errors
def up(
    *,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    foreground: Annotated[
        bool,
        typer.Option(
            "--foreground/--background",
            help="Run in this terminal until Ctrl-C, or (default) in the background.",
        ),
    ] = False,
    demo: Annotated[
        Path | None,
        typer.Option(
            help="Also publish the app in this directory and apply its hack/environments.",
            exists=True,
            file_okay=False,
            resolve_path=True,
        ),
    ] = None,
    timeout: Annotated[
        str,
        typer.Option(help="How long to wait for the platform to be up (background)."),
    ] = "2m",
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Start the embedded platform on this machine (nats-server, operator, broker, httpsrv, API).

    Examples:
        fox up                      # in the background; stop it with `fox down`

        fox up --foreground         # in this terminal, until Ctrl-C

        fox up --demo examples/hello-world
    """
    seconds = duration_option(timeout) or 120.0
    if not foreground:
        info = daemon.start_background(state_dir, demo=demo, timeout=seconds)
        if output is OutputFormat.TABLE:
            _print_up(info, background=True)
            stderr.print("Stop it with: fox down")
        else:
            emit(info, output)
        return
    # Imported here: every other command starts faster without the platform's modules.
    from kubefox.api import ApiSettings
    from kubefox.platform import PlatformSettings
    from kubefox.telemetry.logging import configure_logging

    # The only place the platform's and the API's environment is read.
    settings = PlatformSettings(state_dir=state_dir)
    api = ApiSettings()
    configure_logging(log_format=settings.log_format, level=settings.log_level)
    with daemon.platform_lock(state_dir):
        # uvloop where installed: the hot path (broker, httpsrv) costs a fifth less on it
        run = _event_loop_runner()
        run(_serve(settings, api, demo))


async def _serve(settings: PlatformSettings, api: ApiSettings, demo: Path | None) -> None:
    from kubefox.platform import EmbeddedPlatform
    from kubefox.platform.demo import deploy_demo

    platform = EmbeddedPlatform(settings, api=api)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    with stderr.status("starting the embedded platform"):
        await platform.start()
    try:
        urls: list[str] = []
        if demo is not None:
            with stderr.status(f"publishing {demo.name}") as status:
                urls = await deploy_demo(platform, demo, progress=status.update)
        info = {
            "pid": os.getpid(),
            "endpoints": platform.endpoints(),
            "stateDir": str(platform.state_dir),
            "log": str(platform.state_dir / daemon.LOG_FILE),
            "demoUrls": urls,
        }
        # Everything allocated while starting lives as long as the process: keep it out
        # of the collector's passes, and let requests in flight not start them.
        collector.settle()
        _print_up(info, background=False)
        daemon.write_run_file(platform.state_dir, info)
        stderr.print("Ctrl-C stops everything.")
        await stop.wait()
    finally:
        daemon.remove_run_file(platform.state_dir)
        with stderr.status("stopping"):
            await platform.stop()
        stderr.print("[green]✓[/] stopped")


@reports_errors
def down(
    *,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    timeout: Annotated[str, typer.Option(help="How long the platform may take to stop.")] = "60s",
) -> None:
    """Stop the platform running in the state directory (a no-op if none runs).

    Example:
        fox down
    """
    pid = daemon.stop(state_dir, timeout=duration_option(timeout) or 60.0)
    if pid is None:
        stderr.print(f"no platform is running in {state_dir}; nothing to stop")
    else:
        stderr.print(f"[green]✓[/] stopped the platform (pid {pid})")


@reports_errors
def status(
    *,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    api: ApiOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Show what runs: the platform's parts and every component instance with its hash and health.

    Examples:
        fox status

        fox status -o json
    """
    with ApiClient.connect(api=api, state_dir=state_dir) as client:
        report = client.get(path("status"))
        ca_file = client.ca_file
    emit(report, output, table=lambda: _status_table(report, ca_file))
    if not report.get("healthy", False):
        raise fail("something is not healthy (see above)")


def _status_table(report: dict[str, Any], ca_file: Path | None = None) -> str:
    parts = render_table(
        ["PART", "URL", "HEALTHY"],
        [[p["name"], p.get("url") or "", _yes(p["healthy"])] for p in report["parts"]],
    )
    components = render_table(
        ["APP", "COMPONENT", "HASH", "STATUS", "INSTANCES", "RESTARTS", "HEALTHY", "USED BY"],
        [
            [
                c["app"],
                c["component"],
                c["hash"],
                c["status"],
                len(c["instances"]),
                c["restarts"],
                _yes(c["healthy"]),
                ",".join(c["appDeployments"]),
            ]
            for c in report["components"]
        ],
    )
    head = f"platform {report['platform']} (namespace {report['namespace']})"
    if ca_file is not None:
        head += f"\nCA {ca_file} (HTTPS certificates; curl --cacert {ca_file} https://...)"
    if not report["components"]:
        return f"{head}\n\n{parts}\n\nno component instances"
    return f"{head}\n\n{parts}\n\n{components}"


def _yes(value: object) -> str:
    return "yes" if value else "no"


def _event_loop_runner() -> Callable[[Coroutine[Any, Any, None]], None]:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return asyncio.run
    return uvloop.run
