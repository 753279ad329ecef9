"""The ``fox`` command: entry point of every process; settings are read here and only here."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from kubefox.core.errors import KubeFoxError
from kubefox.platform import EmbeddedPlatform, PlatformSettings
from kubefox.platform.demo import deploy_demo
from kubefox.telemetry.logging import configure_logging

app = typer.Typer(no_args_is_help=True, help="KubeFox for Python.")
console = Console(stderr=True)


@app.callback()
def _root() -> None:
    """KubeFox for Python: publish, release and run apps made of event-driven components."""


@app.command()
def up(
    foreground: Annotated[
        bool, typer.Option("--foreground/--background", help="Run in this terminal until Ctrl-C.")
    ] = True,
    demo: Annotated[
        Path | None,
        typer.Option(
            help="Also publish the app in this directory and apply its hack/environments.",
            exists=True,
            file_okay=False,
            resolve_path=True,
        ),
    ] = None,
) -> None:
    """Start the embedded platform on this machine."""
    if not foreground:
        console.print("[red]error:[/] --background is not available yet; run in the foreground")
        raise typer.Exit(2)
    settings = PlatformSettings()  # the only place the platform's environment is read
    configure_logging(log_format=settings.log_format, level=settings.log_level)
    try:
        asyncio.run(_serve(settings, demo))
    except KubeFoxError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc


async def _serve(settings: PlatformSettings, demo: Path | None) -> None:
    platform = EmbeddedPlatform(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    with console.status("starting the embedded platform"):
        await platform.start()
    try:
        console.print(f"[green]✓[/] platform [bold]{settings.name}[/] is up")
        console.print(f"  httpsrv                  {platform.http_url}")
        console.print(f"  nats-server (JetStream)  {platform.nats.url}")
        console.print(f"  state directory          {platform.state_dir}")
        if demo is not None:
            with console.status(f"publishing {demo.name}") as status:
                urls = await deploy_demo(platform, demo, progress=status.update)
            console.print(f"[green]✓[/] {demo.name} is published and running. Try:")
            for url in urls:
                console.print(f"  curl '{url}'", soft_wrap=True)
        console.print("Ctrl-C stops everything.")
        await stop.wait()
    finally:
        with console.status("stopping"):
            await platform.stop()
        console.print("[green]✓[/] stopped")


def main() -> None:
    """Console-script entry point."""
    app()
