"""The ``fox`` command: one module per command group, assembled here.

Settings are read at the entry point only (``fox up`` builds the platform's
and the API's); every other command talks to the platform through its API
(:mod:`kubefox.cli.client`). Exit codes are listed in :mod:`kubefox.cli.errors`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from kubefox import __version__
from kubefox.cli import (
    client,
    init,
    platform,
    publish,
    quickstart,
    recording,
    release,
    resources,
    telemetry,
    testevents,
)

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="KubeFox for Python: publish, release and run apps made of event-driven components.",
    epilog="Exit codes: 0 done, 1 refused or failed, 2 usage, 3 platform not running, "
    "4 not found, 5 conflict, 6 timed out.",
)


@app.callback()
def _options(
    ca_file: Annotated[
        Path | None,
        typer.Option(
            "--ca-file",
            envvar=client.CA_FILE_ENV,
            help="CA bundle (PEM) to verify the platform API's HTTPS certificate with; a "
            "platform running in the state directory is trusted without it.",
            show_default=False,
            dir_okay=False,
            resolve_path=True,
        ),
    ] = None,
) -> None:
    client.use_ca_file(ca_file)


app.command(rich_help_panel="Platform")(platform.up)
app.command(rich_help_panel="Platform")(platform.down)
app.command(rich_help_panel="Platform")(platform.status)
app.command(rich_help_panel="Apps")(init.init)
app.command(rich_help_panel="Apps")(publish.publish)
app.add_typer(release.app, name="release", rich_help_panel="Apps")
app.command(rich_help_panel="Resources")(resources.apply)
app.command(rich_help_panel="Resources")(resources.get)
app.command(rich_help_panel="Resources")(resources.delete)
app.command(rich_help_panel="Apps")(quickstart.quickstart)
app.command(rich_help_panel="Telemetry")(telemetry.trace)
app.command(rich_help_panel="Telemetry")(telemetry.logs)
app.add_typer(recording.app, name="record", rich_help_panel="Testing")
app.command("replay", rich_help_panel="Testing")(recording.replay_command)
app.add_typer(testevents.app, name="test", rich_help_panel="Testing")


@app.command(rich_help_panel="Other")
def version() -> None:
    """Print fox's version as JSON."""
    typer.echo(json.dumps({"version": __version__}))


def main() -> None:
    """Console-script entry point."""
    app()
