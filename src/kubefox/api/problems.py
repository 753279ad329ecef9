r"""Problem documents (RFC 9457): how every API error looks on the wire, and back.

Every error the API answers is ``application/problem+json``::

    {"type": "urn:kubefox:problem:invalid", "title": "invalid", "status": 400,
     "code": 6, "detail": "AppDeployment \"x\": 2 errors ...",
     "errors": [{"path": "$.spec.commit", "message": "required field is missing"}],
     "instance": "/api/v1/resources/appdeployments/x"}

``code`` is the stable wire code of :mod:`kubefox.core.errors`, so a client
rebuilds the same error class (:func:`error_from_problem`); ``errors`` lists
each cause with the JSON path it is about, whatever layer found it (the YAML
loader, pydantic, a status problem). Nothing here imports a web framework: the
CLI reads problems with the same module the server writes them with.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec

from kubefox.core.errors import KubeFoxError, error_for_code

#: Media type of a problem document.
PROBLEM_MEDIA_TYPE = "application/problem+json"
#: Prefix of every problem ``type``; the rest is the error's name in kebab case.
PROBLEM_TYPE_PREFIX = "urn:kubefox:problem:"

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
# Keys of an error's details that are shown as ``errors`` (or are internal), not repeated.
_HIDDEN_DETAILS = frozenset({"problems", "errors"})


def error_text(error: KubeFoxError) -> str:
    """What to tell a person: the cause alone when the message is only the class's default.

    ``str(error)`` is upstream's ``msg: cause`` (``not found: VirtualEnvironment "qa"
    not found``); the ``msg`` part is already in the problem's ``title``.
    """
    if error.cause and error.message == type(error).default_message:
        return error.cause
    return str(error)


def problem_type(error: KubeFoxError) -> str:
    """``urn:kubefox:problem:route-not-found`` for a ``RouteNotFoundError``."""
    return PROBLEM_TYPE_PREFIX + _CAMEL.sub("-", error.name).lower()


def _cause_records(problem: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One ``{path, message}`` per cause of a status problem (``causes`` with paths)."""
    message = str(problem.get("message", ""))
    causes = problem.get("causes")
    records: list[dict[str, Any]] = []
    if isinstance(causes, list):
        for cause in causes:
            if isinstance(cause, Mapping) and isinstance(cause.get("path"), str):
                record: dict[str, Any] = {"path": cause["path"], "message": message}
                if isinstance(problem.get("type"), str):
                    record["type"] = problem["type"]
                if isinstance(cause.get("kind"), str) and isinstance(cause.get("name"), str):
                    record["resource"] = f'{cause["kind"]} "{cause["name"]}"'
                records.append(record)
    if not records:
        record = {"path": "$", "message": message}
        if isinstance(problem.get("type"), str):
            record["type"] = problem["type"]
        records.append(record)
    return records


def error_records(details: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The causes an error's details name, each with its JSON path.

    Loader problems already are ``{"path", "message", ...}``; status problems
    (``{"type", "message", "causes": [{"path", ...}]}``) give one record per cause.
    """
    records: list[dict[str, Any]] = []
    for key in ("problems", "errors"):
        found = details.get(key)
        if not isinstance(found, list):
            continue
        for item in found:
            if not isinstance(item, Mapping):
                continue
            if isinstance(item.get("path"), str):
                records.append({str(k): v for k, v in item.items()})
            else:
                records.extend(_cause_records(item))
    return records


def _json_safe(details: Mapping[str, Any]) -> dict[str, Any]:
    safe: dict[str, Any] = {}
    for key, value in details.items():
        if key in _HIDDEN_DETAILS:
            continue
        try:
            msgspec.json.encode(value)
        except (TypeError, ValueError, OverflowError):
            safe[str(key)] = str(value)
        else:
            safe[str(key)] = value
    return safe


def problem_document(error: KubeFoxError, *, instance: str | None = None) -> dict[str, Any]:
    """The problem document answering ``error``."""
    document: dict[str, Any] = {
        "type": problem_type(error),
        "title": error.message,
        "status": int(error.http_status),
        "code": error.code,
        "detail": error_text(error),
    }
    errors = error_records(error.details)
    if errors:
        document["errors"] = errors
    details = _json_safe(error.details)
    if details:
        document["details"] = details
    if instance is not None:
        document["instance"] = instance
    return document


def error_from_problem(document: Mapping[str, Any], *, status: int | None = None) -> KubeFoxError:
    """The error a problem document stands for (the class of its ``code``).

    ``str(error)`` is the document's ``detail``; its causes are kept in
    ``error.details["errors"]``. A document without a known code becomes the
    root :class:`KubeFoxError` with the HTTP status in ``details["status"]``.
    """
    raw_code = document.get("code")
    code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else 0
    cls = error_for_code(code)
    detail = document.get("detail")
    title = document.get("title")
    text = detail if isinstance(detail, str) and detail else None
    if text is None:
        text = title if isinstance(title, str) and title else f"the API answered {status}"
    error = cls(message=text)
    raw_details = document.get("details")
    details: dict[str, Any] = dict(raw_details) if isinstance(raw_details, Mapping) else {}
    errors = document.get("errors")
    if isinstance(errors, list):
        details["errors"] = [dict(e) for e in errors if isinstance(e, Mapping)]
    if status is not None:
        details.setdefault("status", status)
    error.details = details
    return error
