"""How fox reports errors: exit codes by kind, causes with their paths, problems read back."""

from __future__ import annotations

import pytest

from kubefox.api import error_from_problem, problem_document
from kubefox.cli.errors import ExitCode, cause_lines, exit_code_for
from kubefox.core.errors import (
    ConflictError,
    DeadlineExceededError,
    InvalidError,
    KubeFoxError,
    NotFoundError,
    RouteNotFoundError,
    UnavailableError,
)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (UnavailableError("x"), ExitCode.UNAVAILABLE),
        (NotFoundError("x"), ExitCode.NOT_FOUND),
        (RouteNotFoundError("x"), ExitCode.NOT_FOUND),
        (ConflictError("x"), ExitCode.CONFLICT),
        (DeadlineExceededError("x"), ExitCode.TIMEOUT),
        (InvalidError("x"), ExitCode.ERROR),
        (KubeFoxError("x"), ExitCode.ERROR),
    ],
)
def test_exit_code_follows_the_error_class(error: KubeFoxError, code: ExitCode) -> None:
    """Scripts can tell "not running", "not found", "conflict" and "timed out" apart."""
    assert exit_code_for(error) == code


def test_problem_document_round_trips_class_text_and_causes() -> None:
    """What the server answers, the CLI rebuilds: same class, same text, causes with paths."""
    error = InvalidError(
        "AppDeployment: 1 error",
        problems=[{"path": "$.spec.commit", "message": "required field is missing"}],
    )

    document = problem_document(error, instance="/api/v1/resources/appdep/x")
    back = error_from_problem(document, status=400)

    assert document["type"] == "urn:kubefox:problem:invalid"
    assert document["detail"] == "AppDeployment: 1 error"
    assert type(back) is InvalidError
    assert str(back) == "AppDeployment: 1 error"
    assert cause_lines(back.details) == ["$.spec.commit: required field is missing"]


def test_status_problems_become_one_cause_per_path() -> None:
    """A status problem's causes are listed with their paths (§9.4 shape)."""
    error = UnavailableError(
        "failed",
        problems=[
            {
                "type": "VarNotFound",
                "message": 'Var "subPath" not found but is required.',
                "causes": [
                    {
                        "kind": "AppDeployment",
                        "name": "hello-world-main",
                        "path": "$.spec.components.frontend.routes[0].subPath",
                    }
                ],
            }
        ],
    )

    document = problem_document(error)

    assert document["errors"] == [
        {
            "path": "$.spec.components.frontend.routes[0].subPath",
            "message": 'Var "subPath" not found but is required.',
            "type": "VarNotFound",
            "resource": 'AppDeployment "hello-world-main"',
        }
    ]


def test_unknown_problem_code_degrades_to_the_root_error() -> None:
    """A document from a newer server with an unknown code still reads."""
    back = error_from_problem({"code": 999, "detail": "something new"}, status=418)

    assert type(back) is KubeFoxError
    assert str(back) == "something new"
    assert back.details["status"] == 418
