"""``fox publish``: the committed app to artifacts and an AppDeployment, through the API.

Everything that reads the repository runs here, locally (the commit, the
component hashes, each component's definition from ``main.py --export``);
everything that changes the platform goes through the API: the artifacts the
platform lacks are uploaded (``HEAD`` first, so unchanged components cost
nothing: upstream's "exists, skipping build"), then the AppDeployment is
applied, last, so whoever sees it finds its artifacts.

Nothing changes when a check fails: the repository must be clean and have a
commit, the platform must answer, a versioned AppDeployment that exists with
other contents is refused before anything is uploaded, and ``--create-tag``
creates the git tag only once the deployment is about to be written.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

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
from kubefox.cli.output import emit
from kubefox.core.errors import ConflictError, InvalidError, NotFoundError
from kubefox.publish import (
    GitRepo,
    Snapshot,
    build_app_deployment,
    create_tag,
    export_definition,
    find_app_dir,
    package,
    read_snapshot,
)
from kubefox.resources import ComponentDefinition, dump
from kubefox.store.artifacts import artifact_name


def _check_repository(app_dir: Path, version: str | None, *, tag: bool) -> None:
    """The checks that must pass before anything else happens (local, cheap)."""
    repo = GitRepo.find(app_dir)
    commit = repo.head()
    repo.check_clean()
    find_app_dir(repo, app_dir)
    if not tag:
        return
    if version is None:
        raise InvalidError("--create-tag needs --version: the tag is named after the version")
    if not repo.is_valid_tag_name(version):
        raise InvalidError(f'"{version}" is not a valid git tag name', version=version)
    tagged = repo.resolve(f"refs/tags/{version}")
    if tagged is not None and tagged != commit:
        raise ConflictError(
            message=f'tag "{version}" already exists on commit {tagged[:7]}, '
            f"not on HEAD ({commit[:7]})",
            tag=version,
        )


async def _definitions(snapshot: Snapshot) -> dict[str, ComponentDefinition]:
    return {
        component.name: await export_definition(
            component.name, component.files, hash=component.hash
        )
        for component in snapshot.components
    }


def _contents(document: Mapping[str, Any]) -> tuple[Any, Any]:
    return document.get("spec"), document.get("details")


def publish_app(
    client: ApiClient,
    app_dir: Path,
    *,
    version: str | None = None,
    deployment_name: str | None = None,
    tag: bool = False,
    wait: float | None = None,
    say: Any = None,
) -> dict[str, Any]:
    """Publish the app at ``app_dir`` through ``client``; return the outcome as JSON-ready data.

    ``say`` receives one line per step (progress for people).
    """
    report = say or (lambda _: None)
    if version is not None and not version.strip():
        raise InvalidError("a version must not be empty")
    _check_repository(app_dir, version, tag=tag)
    client.get(path("healthz"))  # the platform must answer before anything changes
    snapshot = read_snapshot(app_dir)
    if tag and version is not None and version not in snapshot.tags:
        snapshot = dataclasses.replace(snapshot, tags=(version, *snapshot.tags))
    for skipped in snapshot.skipped:
        report(f"skipping {skipped}: no main.py")
    report(f"exporting {len(snapshot.components)} component definitions")
    definitions = asyncio.run(_definitions(snapshot))
    deployment = build_app_deployment(snapshot, definitions, version=version, name=deployment_name)
    name = deployment.metadata.name
    body = dump(deployment)
    existing = _existing(client, name)
    if existing is not None:
        immutable = version is not None or bool(_get(existing, "spec", "version"))
        if immutable and _contents(existing) != _contents(body):
            raise ConflictError(
                message=f'AppDeployment "{name}" already exists with other contents; '
                "publish a new version",
                name=name,
            )
    components = []
    for component in snapshot.components:
        key = artifact_name(snapshot.app.name, component.name, component.hash)
        found = client.request("HEAD", path("artifacts", key), ok=(404,)).status_code == 200
        if found:
            report(f"{component.name}: {component.hash} exists, skipping")
        else:
            client.request("PUT", path("artifacts", key), content=package(component.files))
            report(f"{component.name}: {component.hash} uploaded")
        components.append({"name": component.name, "hash": component.hash, "uploaded": not found})
    if tag and version is not None:
        create_tag(app_dir, version)
        report(f'tag "{version}" at {snapshot.commit[:7]}')
    response = client.request("PUT", path("resources", "AppDeployment", name), json_body=body)
    result = response.headers.get("kubefox-apply", "configured")
    written = response.json()
    report(f'AppDeployment "{name}" {result}')
    if wait is not None:
        report(f'waiting up to {wait:g}s for "{name}" to be available')
        written = client.request(
            "POST",
            path("appdeployments", name, "wait"),
            params={"timeoutSeconds": max(1, round(wait))},
            timeout=wait + 10,
        ).json()
        report(f'AppDeployment "{name}" is available')
    return {"name": name, "result": result, "components": components, "appDeployment": written}


def _existing(client: ApiClient, name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = client.get(path("resources", "AppDeployment", name))
    except NotFoundError:
        return None
    return found


def _get(obj: Mapping[str, Any], *keys: str) -> Any:
    value: Any = obj
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


@reports_errors
def publish(
    *,
    version: Annotated[
        str | None,
        typer.Option("--version", "-s", help="Publish <app>-<version>, immutable once written."),
    ] = None,
    create_tag_: Annotated[
        bool,
        typer.Option("--create-tag", "-t", help="Tag the commit with the version (git tag)."),
    ] = False,
    deployment: Annotated[
        str | None,
        typer.Option("--deployment", "-d", help="Name the AppDeployment instead."),
    ] = None,
    wait: Annotated[
        str | None,
        typer.Option(help="Wait this long for every component to run (5m, 30s)."),
    ] = None,
    app_dir: Annotated[
        Path,
        typer.Option(
            "--app", "-a", help="The app's directory (or any directory in it).", file_okay=False
        ),
    ] = Path(),
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    api: ApiOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Publish the app as committed at HEAD: upload changed components, write its AppDeployment.

    The AppDeployment is <app>-<branch> (updated in place on every publish), or
    <app>-<version> with --version (immutable).

    Examples:
        fox publish --wait 5m

        fox publish --version v1 --create-tag
    """
    seconds = duration_option(wait)
    with ApiClient.connect(api=api, state_dir=state_dir) as client:
        if output is OutputFormat.TABLE:
            with stderr.status("publishing") as status:

                def say(line: str) -> None:
                    status.update(line)
                    stderr.print(f"  {line}")

                outcome = publish_app(
                    client,
                    app_dir.resolve(),
                    version=version,
                    deployment_name=deployment,
                    tag=create_tag_,
                    wait=seconds,
                    say=say,
                )
        else:
            outcome = publish_app(
                client,
                app_dir.resolve(),
                version=version,
                deployment_name=deployment,
                tag=create_tag_,
                wait=seconds,
            )
    if output is OutputFormat.TABLE:
        stderr.print(f"[green]✓[/] AppDeployment [bold]{outcome['name']}[/] {outcome['result']}")
        typer.echo(outcome["name"])
    else:
        emit(outcome, output)
