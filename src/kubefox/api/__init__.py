"""The control plane: a REST API over the resource store, artifacts and releases.

:func:`create_app` builds the Starlette application, :class:`ApiServer` serves
it with uvicorn; ``fox`` talks to the platform only through it.
"""

from kubefox.api.app import APPLY_HEADER, PREFIX, create_app
from kubefox.api.problems import PROBLEM_MEDIA_TYPE, error_from_problem, problem_document
from kubefox.api.server import ApiServer
from kubefox.api.service import ApplyResult, ResourceService, parse_label_selector
from kubefox.api.settings import ApiSettings

__all__ = [
    "APPLY_HEADER",
    "PREFIX",
    "PROBLEM_MEDIA_TYPE",
    "ApiServer",
    "ApiSettings",
    "ApplyResult",
    "ResourceService",
    "create_app",
    "error_from_problem",
    "parse_label_selector",
    "problem_document",
]
