"""Resource YAML and JSON from users: every failure is an InvalidError listing paths, quickly.

``load_yaml`` reads what ``fox apply`` and the API are given; ``parse_resource``
reads decoded JSON bodies. Both are fuzzed with arbitrary text, upstream's own
example files with bytes inserted and cut, YAML dumps of random structures
shaped like resources, and the classic hostile YAML documents.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from kubefox.core.errors import InvalidError
from kubefox.resources import load_yaml, parse_resource
from tests.fuzz.budget import budget

pytestmark = pytest.mark.fuzz

UPSTREAM = Path(__file__).resolve().parents[1] / "data" / "upstream"
EXAMPLES = sorted(UPSTREAM.glob("*/*.yaml"))
KINDS = ["Environment", "VirtualEnvironment", "AppDeployment", "Platform", "ReleaseManifest"]
NAMES = [
    *("apiVersion", "kind", "metadata", "name", "namespace", "spec", "data", "vars", "secrets"),
    *("components", "routes", "rule", "hash", "type", "environment", "releasePolicy", "labels"),
    *("appName", "version", "events", "timeoutSeconds", "maxSize", "envVarSchema", "release"),
    *("dependencies", "defaultHandler", "priority", "id", "commit", "status", "apps"),
]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from([*KINDS, "kubefox.xigxog.io/v1alpha1", "a-b", "x" * 300, "Path(`/`)"])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=5), inner, max_size=6)
    ),
    max_leaves=30,
)
DOCUMENTS = st.fixed_dictionaries(
    {
        "apiVersion": st.just("kubefox.xigxog.io/v1alpha1") | SCALARS,
        "kind": st.sampled_from(KINDS) | SCALARS,
        "metadata": st.fixed_dictionaries({"name": SCALARS}) | VALUES,
    },
    optional={"spec": VALUES, "data": VALUES, "details": VALUES},
)
INSERTS = st.text(max_size=6) | st.sampled_from(
    ["- ", ": ", "&a ", "*a", "!!str ", "!!binary ", "{", "[", "'", '"', "\n  ", "\t", "---\n"]
)


def _loads_or_refuses(text: str) -> None:
    problems: list[dict[str, Any]] | None = None
    try:
        load_yaml(text, source="fuzz.yaml")
    except InvalidError as exc:
        problems = exc.details["problems"]
    _assert_listed(problems)


def _assert_listed(problems: list[dict[str, Any]] | None) -> None:
    """None (accepted) or a non-empty list of problems, each with a JSON path."""
    assert problems is None or problems
    assert all(str(problem["path"]).startswith("$") for problem in problems or [])


@budget(200)
@given(document=DOCUMENTS)
def test_any_document_parses_or_lists_its_problems_with_paths(document: dict[str, Any]) -> None:
    """parse_resource and load_yaml of its YAML: a resource, or InvalidError with JSON paths."""
    problems: list[dict[str, Any]] | None = None
    try:
        parse_resource(document)
    except InvalidError as exc:
        problems = exc.details["problems"]
    _assert_listed(problems)
    _loads_or_refuses(yaml.safe_dump(document))


@budget(200)
@given(text=st.text(max_size=300))
def test_any_text_loads_or_lists_its_problems_with_paths(text: str) -> None:
    """Arbitrary text is resources or one InvalidError, never another exception."""
    _loads_or_refuses(text)


@budget(200)
@given(data=st.data(), example=st.sampled_from(EXAMPLES))
def test_damaged_upstream_files_load_or_list_their_problems(data: Any, example: Path) -> None:
    """Upstream's example files with text inserted and cut never escape InvalidError."""
    text = example.read_text()
    at = data.draw(st.integers(0, len(text)))
    cut = data.draw(st.integers(0, 8))

    _loads_or_refuses(text[:at] + data.draw(INSERTS) + text[at + cut :])


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _aliases(levels: int, width: int = 9) -> str:
    lines = [f"l0: &l0 [{', '.join(['x'] * width)}]"]
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * width)}]" for n in range(1, levels)]
    return "\n".join(lines)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(_nested(100_000), id="flow lists nested 100,000 deep"),
        pytest.param("a:\n" + "".join("  " * i + "b:\n" for i in range(1, 300)), id="deep maps"),
        pytest.param(_aliases(9), id="billion laughs"),
        pytest.param(
            "apiVersion: kubefox.xigxog.io/v1alpha1\nkind: Environment\nmetadata: {name: e}\n"
            + _aliases(9).replace("\n", "\n    ").replace("l0:", "data:\n  vars:\n    l0:", 1),
            id="billion laughs in vars",
        ),
        pytest.param("&a [*a]", id="a list holding itself"),
        pytest.param("&a {x: *a}", id="a mapping holding itself"),
        pytest.param("!!python/object/apply:os.system ['true']", id="python tag"),
        pytest.param(f"kind: Environment\nx: {'9' * 5000}\n", id="an integer of 5000 digits"),
        pytest.param("kind: Environment\nkind: Platform\n", id="a repeated key"),
        pytest.param("---\n" * 20_000, id="20,000 empty documents"),
        pytest.param("kind: \x00", id="a NUL character"),
        pytest.param("? [a, b]\n: c\n", id="a list as a key"),
    ],
)
def test_hostile_yaml_is_refused_quickly(text: str) -> None:
    """Deep nesting, alias bombs, tags, huge numbers: InvalidError (or nothing) within seconds."""
    started = time.monotonic()

    _loads_or_refuses(text)

    assert time.monotonic() - started < 5.0
