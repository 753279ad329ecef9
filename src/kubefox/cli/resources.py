"""``fox apply``, ``fox get``, ``fox delete``: resources of every kind, through the API.

``apply`` reads every file first (a directory: its ``*.yaml``/``*.yml`` files
in name order) and validates every document locally with the same loader the
platform uses, so one bad file anywhere means nothing is applied and every
error is shown with its file, document and JSON path. Kinds are named as
upstream users type them: ``ve``, ``appdep``, ``env``, ``rm``, plurals, any case.
"""

from __future__ import annotations

import sys
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
)
from kubefox.cli.output import emit, resource_table
from kubefox.core.errors import InvalidError
from kubefox.resources import Resource, dump, kind_for, load_yaml

KindArgument = Annotated[
    str, typer.Argument(help="A kind, plural or short name: ve, appdep, env, rm, platform ...")
]


def read_resources(sources: list[Path]) -> list[Resource]:
    """Every resource in ``sources`` (files, directories, ``-`` for stdin), all validated.

    Raises:
        InvalidError: a file is missing or unreadable, or any document is invalid
            (every problem of every file in ``details["problems"]``).
    """
    texts: list[tuple[str, str]] = []
    for source in sources:
        if str(source) == "-":
            texts.append(("<stdin>", sys.stdin.read()))
            continue
        if source.is_dir():
            files = sorted([*source.glob("*.yaml"), *source.glob("*.yml")])
            if not files:
                raise InvalidError(f"{source} holds no *.yaml or *.yml file")
        elif source.is_file():
            files = [source]
        else:
            raise InvalidError(f"{source} does not exist", path=str(source))
        for file in files:
            try:
                texts.append((str(file), file.read_text()))
            except (OSError, UnicodeDecodeError) as exc:
                raise InvalidError(f"cannot read {file}: {exc}", path=str(file)) from exc
    resources: list[Resource] = []
    problems: list[dict[str, Any]] = []
    failed: list[InvalidError] = []
    for name, text in texts:
        try:
            resources += load_yaml(text, source=name)
        except InvalidError as exc:
            failed.append(exc)
            problems += [{"source": name, **p} for p in exc.details.get("problems", [])]
    if len(failed) == 1:
        raise failed[0]
    if failed:
        raise InvalidError(
            f"{len(failed)} files are invalid; nothing was applied", problems=problems
        )
    return resources


@reports_errors
def apply(
    *,
    filename: Annotated[
        list[Path],
        typer.Option(
            "--filename",
            "-f",
            help="A YAML file, a directory of them, or - for stdin.",
            show_default=False,
        ),
    ],
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    api: ApiOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Create or update resources from YAML (upstream's files are accepted unchanged).

    Examples:
        fox apply -f hack/environments/

        fox apply -f qa.yaml -f prod.yaml
    """
    resources = read_resources(filename)
    with ApiClient.connect(api=api, state_dir=state_dir) as client:
        results = apply_resources(client, resources)
    if output is OutputFormat.TABLE:
        for result in results:
            typer.echo(f"{result['kind'].lower()}/{result['name']} {result['result']}")
    else:
        emit(results, output)


def apply_resources(client: ApiClient, resources: list[Resource]) -> list[dict[str, str]]:
    """Apply each resource in order; ``{kind, name, result}`` for each."""
    results: list[dict[str, str]] = []
    for resource in resources:
        kind, name = resource.kind, resource.metadata.name
        response = client.request("PUT", path("resources", kind, name), json_body=dump(resource))
        result = response.headers.get("kubefox-apply", "configured")
        results.append({"kind": kind, "name": name, "result": result})
    return results


@reports_errors
def get(
    *,
    kind: KindArgument,
    name: Annotated[str | None, typer.Argument(help="One resource's name.")] = None,
    selector: Annotated[
        str | None,
        typer.Option("--selector", "-l", help="Only resources with these labels: key=value,..."),
    ] = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    api: ApiOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """List resources of a kind, or show one.

    Examples:
        fox get appdeployments

        fox get ve qa -o yaml

        fox get apps -l kubefox.xigxog.io/app-version=v1
    """
    canonical = kind_for(kind)
    with ApiClient.connect(api=api, state_dir=state_dir) as client:
        if name is not None:
            found = client.get(path("resources", canonical, name))
            emit(found, output, table=lambda: resource_table(canonical, [found]))
            return
        listed = client.get(path("resources", canonical), params={"labelSelector": selector})
    items = listed["items"]
    if output is OutputFormat.TABLE and not items:
        stderr.print(f"no {canonical} resources found")
        return
    emit(listed, output, table=lambda: resource_table(canonical, items))


@reports_errors
def delete(
    *,
    kind: KindArgument,
    name: Annotated[str, typer.Argument(help="The resource's name.")],
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    api: ApiOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Delete a resource (refused while a release uses it).

    Example:
        fox delete appdeployment hello-world-v1
    """
    canonical = kind_for(kind)
    with ApiClient.connect(api=api, state_dir=state_dir) as client:
        deleted = client.request("DELETE", path("resources", canonical, name)).json()
    if output is OutputFormat.TABLE:
        typer.echo(f"{canonical.lower()}/{name} deleted")
    else:
        emit(deleted, output)
