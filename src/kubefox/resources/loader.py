"""Reading resources from YAML or mappings, and writing them back.

This is where untrusted resource text enters, so it reports *every* error at
once, each with a JSON path (``$.spec.releasePolicy.activationDeadlineSeconds``)
and, across a multi-document file, the document it is in; YAML syntax errors
name the document, line and column. All of them arrive as one
:class:`~kubefox.core.errors.InvalidError` whose ``details["problems"]`` lists
``{"path", "message"}`` records (plus ``document``, ``resource`` (kind and
name), ``line`` and ``column`` where known) and whose text lists them one per
line.

The YAML reader differs from PyYAML's safe loader in two ways: a key repeated
in one mapping is an error (PyYAML silently keeps the last), and timestamps
stay strings until a model field asks for a datetime, so a var such as
``date: 2024-01-01`` stays the string the user wrote.
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Mapping
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from kubefox.core.errors import InvalidError
from kubefox.resources.kinds import RESOURCE_KINDS, Resource, kind_for, supported_kinds
from kubefox.resources.meta import API_VERSION

_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_MERGE_TAG = "tag:yaml.org,2002:merge"
#: Deepest nesting of collections accepted; resources need fewer than ten levels.
MAX_YAML_DEPTH = 100

Record = dict[str, Any]


class _Loader(yaml.SafeLoader):
    """Safe YAML loading that refuses duplicate keys and keeps timestamps as text.

    It also refuses what would make PyYAML itself fail with something other
    than a YAML error: collections nested deeper than :data:`MAX_YAML_DEPTH`
    (the composer recurses once per level, so ``[[[...]]]`` ended in a
    ``RecursionError``) and integers too long for ``int()`` (a ``ValueError``).
    """

    # Class-level on purpose: this is how PyYAML resolvers are configured per loader.
    yaml_implicit_resolvers = {  # noqa: RUF012
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"collections nested deeper than {MAX_YAML_DEPTH} levels",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            return super().construct_yaml_int(node)
        except ValueError as exc:  # more digits than int() converts
            raise yaml.constructor.ConstructorError(
                None, None, "an integer with too many digits", node.start_mark
            ) from exc

    def construct_mapping(
        self,
        node: yaml.MappingNode,
        deep: bool = False,  # noqa: FBT001, FBT002 (PyYAML's signature)
    ) -> dict[Hashable, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# PyYAML looks constructors up in a per-class table, not by method name.
_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


def _json_path(loc: tuple[int | str, ...]) -> str:
    path = "$"
    for step in loc:
        if isinstance(step, int):
            path += f"[{step}]"
        elif step.replace("_", "a").replace("-", "a").isalnum():
            path += f".{step}"
        else:
            path += f"[{step!r}]"
    return path


def _message(error: ErrorDetails) -> str:
    if error["type"] == "extra_forbidden":
        return f'unknown field "{error["loc"][-1]}"'
    if error["type"] == "missing":
        return "required field is missing"
    text = error["msg"].removeprefix("Value error, ").rstrip(".")
    return text[:1].lower() + text[1:]


def _from_validation_error(exc: ValidationError) -> list[Record]:
    records: list[Record] = []
    for error in exc.errors(include_url=False):
        loc = tuple(step for step in error["loc"] if step != "[key]")
        if loc == ("apiVersion",):
            continue  # reported by _check_header, with the expected value
        records.append({"path": _json_path(loc), "message": _message(error)})
    return records


def _type_name(obj: object) -> str:
    if obj is None:
        return "null"
    if isinstance(obj, list):
        return "a list"
    if isinstance(obj, str):
        return "a string"
    return f"a {type(obj).__name__}"


def _check_header(obj: Mapping[str, Any]) -> tuple[str | None, list[Record]]:
    """The kind if it is supported, and the problems with ``apiVersion`` and ``kind``."""
    records: list[Record] = []
    api_version = obj.get("apiVersion")
    if api_version is None:
        records.append({"path": "$.apiVersion", "message": f'missing; expected "{API_VERSION}"'})
    elif api_version != API_VERSION:
        records.append(
            {
                "path": "$.apiVersion",
                "message": f'unsupported apiVersion "{api_version}"; expected "{API_VERSION}"',
            }
        )
    kind = obj.get("kind")
    if kind is None:
        message = f"missing kind; supported kinds: {supported_kinds()}"
    elif isinstance(kind, str) and kind in RESOURCE_KINDS:
        return kind, records
    else:
        message = f'unknown kind "{kind}"; supported kinds: {supported_kinds()}'
        with contextlib.suppress(InvalidError):
            message += f' (did you mean "{kind_for(str(kind))}"?)'
    records.append({"path": "$.kind", "message": message})
    return None, records


def _parse(obj: object) -> tuple[Resource | None, list[Record]]:
    if not isinstance(obj, Mapping):
        return None, [
            {"path": "$", "message": f"expected a resource mapping, got {_type_name(obj)}"}
        ]
    kind, records = _check_header(obj)
    if kind is None:
        return None, records
    try:
        resource = RESOURCE_KINDS[kind].model_validate(obj)
    except ValidationError as exc:
        return None, records + _from_validation_error(exc)
    return (None if records else resource), records


def _label(obj: object) -> str:
    """``Environment "prod"`` for a mapping that names itself, else ``""``."""
    if not isinstance(obj, Mapping):
        return ""
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    kind = obj.get("kind")
    if isinstance(kind, str) and isinstance(name, str):
        return f'{kind} "{name}"'
    return kind if isinstance(kind, str) else ""


def _line(record: Record) -> str:
    where: list[str] = []
    if "document" in record:
        where.append(f"document {record['document']}")
    if "line" in record:
        where.append(f"line {record['line']}, column {record['column']}")
    prefix = ", ".join(where)
    if record.get("resource"):
        prefix += f" ({record['resource']})" if prefix else record["resource"]
    path = f"{record['path']}: " if record["path"] != "$" or "line" not in record else ""
    return f"{prefix}: {path}{record['message']}" if prefix else f"{path}{record['message']}"


def _invalid(source: str, records: list[Record]) -> InvalidError:
    if len(records) == 1:
        cause = f"{source}: {_line(records[0])}"
    else:
        lines = "\n".join(f"  {_line(record)}" for record in records)
        cause = f"{source}: {len(records)} errors\n{lines}"
    return InvalidError(cause, source=source, problems=records)


def parse_resource(obj: Mapping[str, Any]) -> Resource:
    """The resource that ``obj`` (a decoded YAML or JSON document) describes.

    Dispatches on ``kind``; ``apiVersion`` must be ``kubefox.xigxog.io/v1alpha1``.

    Raises:
        InvalidError: with every problem found, each as ``{"path", "message"}``
            in ``details["problems"]``.
    """
    resource, records = _parse(obj)
    if resource is None:
        label = _label(obj) or "resource"
        raise _invalid(label, records)
    return resource


def _syntax_record(exc: yaml.YAMLError, document: int) -> Record:
    record: Record = {"path": "$", "document": document}
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        if mark is not None:
            record.update(line=mark.line + 1, column=mark.column + 1)
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            problem = f"{exc.context}: {exc.problem}"
        if "'\\t'" in problem:
            problem += " (YAML does not allow tabs for indentation)"
        record["message"] = f"YAML syntax error: {problem}"
    else:
        record["message"] = f"YAML syntax error: {exc}"
    return record


def load_yaml(text: str, *, source: str = "<input>") -> list[Resource]:
    """Every resource in a (multi-document) YAML text, in order; empty documents are skipped.

    Args:
        text: the YAML.
        source: what to call the text in errors (usually the file name).

    Raises:
        InvalidError: with every problem of every document (YAML syntax,
            unknown kind, wrong apiVersion, invalid fields, the same resource
            twice), each as ``{"path", "message", "document", ...}`` in
            ``details["problems"]``.
    """
    resources: list[Resource] = []
    records: list[Record] = []
    seen: dict[tuple[str, str | None, str], int] = {}
    document = 0
    try:
        for document, obj in enumerate(yaml.load_all(text, Loader=_Loader), start=1):
            if obj is None:
                continue
            resource, found = _parse(obj)
            label = _label(obj)
            records += [{**record, "document": document, "resource": label} for record in found]
            if resource is None:
                continue
            key = (resource.kind, resource.metadata.namespace, resource.metadata.name)
            if key in seen:
                message = f"{label} is already defined in document {seen[key]}"
                records.append(
                    {"path": "$.metadata.name", "message": message, "document": document}
                )
                continue
            seen[key] = document
            resources.append(resource)
    except yaml.YAMLError as exc:
        records.append(_syntax_record(exc, document + 1))
    if records:
        raise _invalid(source, records)
    return resources


def dump(resource: Resource) -> dict[str, Any]:
    """``resource`` as a JSON-ready mapping with upstream's keys; ``parse_resource`` reads it back.

    Unset optional fields and empty optional collections are left out.
    """
    return resource.model_dump(mode="json", by_alias=True, exclude_none=True)
