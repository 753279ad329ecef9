"""The ``fox`` command: entry point of every process; settings are read here and only here."""

from __future__ import annotations

import asyncio
import signal

import typer
from rich.console import Console

from kubefox.platform import EmbeddedPlatform, PlatformSettings
from kubefox.telemetry.logging import configure_logging

app = typer.Typer(no_args_is_help=True, help="KubeFox for Python.")
console = Console(stderr=True)


@app.callback()
def _root() -> None:
    """KubeFox for Python: publish, release and run apps made of event-driven components."""


@app.command()
def up(
    foreground: bool = typer.Option(
        True, "--foreground/--background", help="Run in this terminal until Ctrl-C."
    ),
) -> None:
    """Start the embedded platform on this machine."""
    if not foreground:
        console.print("[red]error:[/] --background is not available yet; run in the foreground")
        raise typer.Exit(2)
    settings = PlatformSettings()  # the only place the platform's environment is read
    configure_logging(log_format=settings.log_format, level=settings.log_level)
    asyncio.run(_serve(settings))


async def _serve(settings: PlatformSettings) -> None:
    platform = EmbeddedPlatform(settings)
    with console.status("starting the embedded platform"):
        await platform.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    console.print(f"[green]✓[/] platform [bold]{settings.name}[/] is up")
    console.print(f"  nats-server (JetStream)  {platform.nats.url}")
    console.print(f"  resource store           bucket {settings.bucket!r}")
    console.print(f"  state directory          {settings.state_dir.resolve()}")
    console.print(
        "No app is served yet: running apps arrives with the 'Run apps' work. Ctrl-C stops."
    )
    try:
        await stop.wait()
    finally:
        with console.status("stopping"):
            await platform.stop()
        console.print("[green]✓[/] stopped")


def main() -> None:
    """Console-script entry point."""
    app()
