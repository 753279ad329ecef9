"""``fox release``: put a published version in front of a virtual environment's users.

``fox release REF --virtual-env VE`` (REF: version, tag, branch, commit or
AppDeployment name), plus ``fox release history VE`` and ``fox release
rollback VE``. The release itself, its checks and its lifecycle are the
platform's (``kubefox.releases`` behind the API); this module parses and prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from kubefox.cli.client import ApiClient, path
from kubefox.cli.errors import reports_errors, stderr
from kubefox.cli.options import (
    DEFAULT_STATE_DIR,
    ApiOption,
    OutputFormat,
    OutputOption,
    StateDirOption,
    duration_option,
)
from kubefox.cli.output import emit, render_table

_DEFAULT = "to"


class ReleaseGroup(TyperGroup):
    """``fox release REF ...`` runs the hidden ``to`` command; history and rollback are named."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [_DEFAULT, *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=ReleaseGroup,
    no_args_is_help=True,
    help="Release a version into a virtual environment; show or roll back its releases.\n\n"
    "Examples:\n\n"
    "    fox release v1 --virtual-env qa --wait 1m\n\n"
    "    fox release hello-world-main -e qa\n\n"
    "    fox release history qa\n\n"
    "    fox release rollback qa",
)

VirtualEnvOption = Annotated[
    str,
    typer.Option("--virtual-env", "-e", help="The VirtualEnvironment to release into."),
]
WaitOption = Annotated[
    str | None,
    typer.Option(help="Wait this long for the release to be active (1m, 30s)."),
]


def _conditions(ve: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    status = ve.get("status") or {}
    return {c.get("type", ""): c for c in status.get("conditions") or []}


def _apps(release: Mapping[str, Any] | None) -> str:
    apps = (release or {}).get("apps") or {}
    return ", ".join(
        f"{app}={spec.get('appDeployment')}"
        + (f"@{spec['version']}" if spec.get("version") else "")
        for app, spec in sorted(apps.items())
    )


def ve_summary(ve: Mapping[str, Any]) -> str:
    """A person's view of a VirtualEnvironment's release state."""
    name = ve.get("metadata", {}).get("name")
    status = ve.get("status") or {}
    lines = [f"VirtualEnvironment {name} (environment {ve.get('spec', {}).get('environment')})"]
    lines.append(f"  requested: {_apps(ve.get('spec', {}).get('release')) or 'nothing'}")
    active = status.get("activeRelease")
    if active:
        manifest = active.get("releaseManifest")
        lines.append(
            f"  active:    {_apps(active)} (id {active.get('id')}"
            + (f", manifest {manifest})" if manifest else ")")
        )
    pending = status.get("pendingRelease")
    if pending:
        lines.append(f"  pending:   {_apps(pending)} (id {pending.get('id')})")
        lines += [
            f"    problem: {problem.get('type')}: {problem.get('message')}"
            for problem in pending.get("problems") or []
        ]
    for kind, condition in sorted(_conditions(ve).items()):
        lines.append(f"  {kind}={condition.get('status')} ({condition.get('reason')})")
    return "\n".join(lines)


def _release_call(
    method: str, url: str, body: Any, *, wait: str | None, state_dir: Any, api: str | None
) -> Any:
    seconds = duration_option(wait)
    with ApiClient.connect(api=api, state_dir=state_dir) as client:
        return call_waiting(client, method, url, body, wait=seconds)


def call_waiting(client: ApiClient, method: str, url: str, body: Any, *, wait: float | None) -> Any:
    """A release or rollback call that waits up to ``wait`` seconds for activation."""
    params = {"timeoutSeconds": max(1, round(wait))} if wait else None
    timeout = (wait or 0) + 30
    return client.request(method, url, json_body=body, params=params, timeout=timeout).json()


def release_ref(client: ApiClient, ref: str, virtual_env: str, *, wait: float | None) -> Any:
    """Release ``ref`` into ``virtual_env``; the VirtualEnvironment as JSON."""
    url = path("virtualenvironments", virtual_env, "release")
    return call_waiting(client, "POST", url, {"ref": ref}, wait=wait)


@app.command(_DEFAULT, hidden=True)
@reports_errors
def release_to(
    *,
    ref: Annotated[
        str, typer.Argument(help="Version, tag, branch, commit, or AppDeployment name.")
    ],
    virtual_env: VirtualEnvOption,
    app_name: Annotated[
        str | None, typer.Option("--app", help="The app, if the ref could name several.")
    ] = None,
    wait: WaitOption = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    api: ApiOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Release REF into a virtual environment."""
    body: dict[str, Any] = {"ref": ref}
    if app_name is not None:
        body["app"] = app_name
    url = path("virtualenvironments", virtual_env, "release")
    ve = _release_call("POST", url, body, wait=wait, state_dir=state_dir, api=api)
    if output is OutputFormat.TABLE:
        stderr.print(f"[green]✓[/] released {ref} into {virtual_env}")
    emit(ve, output, table=lambda: ve_summary(ve))


@app.command()
@reports_errors
def history(
    *,
    virtual_env: Annotated[str, typer.Argument(help="The VirtualEnvironment.")],
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    api: ApiOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Show a virtual environment's releases, newest first.

    Example:
        fox release history qa
    """
    with ApiClient.connect(api=api, state_dir=state_dir) as client:
        found = client.get(path("virtualenvironments", virtual_env, "history"))
    emit(found, output, table=lambda: _history_table(found["releases"]))


def _history_table(releases: list[Mapping[str, Any]]) -> str:
    if not releases:
        return "no releases"
    return render_table(
        ["ID", "APPS", "MANIFEST", "REQUESTED", "ACTIVATED", "ARCHIVED", "REASON"],
        [
            [
                r.get("id"),
                _apps(r),
                r.get("releaseManifest") or "",
                r.get("requestTime") or "",
                r.get("activationTime") or "",
                r.get("archiveTime") or "",
                r.get("archiveReason") or "",
            ]
            for r in releases
        ],
    )


@app.command()
@reports_errors
def rollback(
    *,
    virtual_env: Annotated[str, typer.Argument(help="The VirtualEnvironment.")],
    wait: WaitOption = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    api: ApiOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Release again what was active before the current release.

    Example:
        fox release rollback qa --wait 1m
    """
    url = path("virtualenvironments", virtual_env, "rollback")
    ve = _release_call("POST", url, None, wait=wait, state_dir=state_dir, api=api)
    if output is OutputFormat.TABLE:
        stderr.print(f"[green]✓[/] rolled back {virtual_env}")
    emit(ve, output, table=lambda: ve_summary(ve))
