"""Definitions come from running the committed component with --export."""

from __future__ import annotations

import json

import pytest

from kubefox.core.errors import InvalidError
from kubefox.publish import SourceFile, export_definition, parse_definition
from kubefox.resources import ComponentType
from tests.unit.publish.gitrepos import BACKEND, FRONTEND, main_py

HASH = "0123456789abcdef0123456789abcdef"


def main(source: str) -> list[SourceFile]:
    return [SourceFile(path="main.py", mode=0o644, content=source.encode())]


async def test_the_export_is_parsed_and_given_the_hash() -> None:
    """The printed JSON becomes a ComponentDefinition carrying the component hash."""
    definition = await export_definition("frontend", main(main_py(FRONTEND)), hash=HASH)
    assert definition.hash == HASH
    assert definition.type is ComponentType.KUBEFOX
    assert [route.rule for route in definition.routes] == ["Path(`/{{.Vars.subPath}}/hello`)"]
    assert set(definition.dependencies) == {"backend"}


async def test_the_export_runs_in_the_component_directory_with_its_modules() -> None:
    """main.py may import sibling modules: they are extracted next to it."""
    files = [
        SourceFile(path="definition.py", mode=0o644, content=b'DEF = {"type": "KubeFox"}\n'),
        SourceFile(
            path="main.py",
            mode=0o644,
            content=b"import json, sys\nfrom definition import DEF\nprint(json.dumps(DEF))\n",
        ),
    ]
    definition = await export_definition("backend", files, hash=HASH)
    assert definition.default_handler is False


async def test_a_failing_export_names_the_component_and_shows_stderr() -> None:
    """A crash at import shows the end of the traceback, not just an exit code."""
    source = "import sys\nprint('starting', file=sys.stderr)\nraise RuntimeError('boom here')\n"
    with pytest.raises(InvalidError) as caught:
        await export_definition("frontend", main(source), hash=HASH)
    text = str(caught.value)
    assert 'component "frontend": main.py --export failed with exit code 1' in text
    assert "RuntimeError: boom here" in text
    assert caught.value.details["exit_code"] == 1


async def test_an_export_that_hangs_is_stopped_at_the_deadline() -> None:
    """A component that never exits fails the publish after the timeout, and is killed."""
    source = "import time\ntime.sleep(60)\n"
    with pytest.raises(InvalidError, match=r'"backend": main.py --export did not finish within'):
        await export_definition("backend", main(source), hash=HASH, timeout=0.5)


async def test_an_export_without_json_is_an_error() -> None:
    """Printing something that is not a JSON object fails with what was printed."""
    with pytest.raises(InvalidError, match="did not print a JSON object"):
        await export_definition("backend", main("print('hello')\n"), hash=HASH)


def test_extra_lines_before_the_definition_are_tolerated() -> None:
    """A component that prints at import still exports: the last line is the definition."""
    stdout = b'loading...\n{"type": "KubeFox", "defaultHandler": true}\n'
    assert parse_definition("backend", stdout, hash=HASH).default_handler is True


def test_an_invalid_definition_lists_its_problems() -> None:
    """A definition the model rejects names the component and the fields."""
    with pytest.raises(InvalidError, match=r'component "backend": .*invalid definition') as caught:
        parse_definition("backend", b'{"type": "Nope", "routes": [{"id": -1}]}', hash=HASH)
    paths = {problem["path"] for problem in caught.value.details["problems"]}
    assert {"type", "routes.0.id", "routes.0.rule"} <= paths


def test_a_hash_in_the_export_is_replaced_by_the_real_one() -> None:
    """The hash comes from the files, never from what the component claims."""
    stdout = json.dumps({**BACKEND, "hash": "f" * 32}).encode()
    definition = parse_definition("backend", stdout, hash=HASH)
    assert definition.hash == HASH
    assert set(definition.env_var_schema) == {"who"}
