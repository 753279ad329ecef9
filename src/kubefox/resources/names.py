"""Names derived from user input: cleaned strings and AppDeployment names.

``fox publish`` names an AppDeployment after the app and the most specific
thing it was published as (version, branch, tag or commit), cleaned into a
DNS label so that it is a valid resource name whatever the branch is called.
"""

from __future__ import annotations

import re

from kubefox.core.errors import InvalidError

MAX_NAME_LENGTH = 63

_NOT_NAME = re.compile(r"[^a-z0-9]")


def clean_name(s: str) -> str:
    """``s`` as a DNS label: basename, lowercase, other characters as ``-``, at most 63.

    ``feature/Add_Login`` becomes ``add-login``. Leading and trailing dashes
    are trimmed, also after cutting to 63 characters.

    Raises:
        InvalidError: nothing usable is left (``""``, ``"/"``, ``"--"``).
    """
    base = s.rstrip("/").rsplit("/", 1)[-1]
    cleaned = _NOT_NAME.sub("-", base.lower()).strip("-")
    cleaned = cleaned[:MAX_NAME_LENGTH].rstrip("-")
    if not cleaned:
        raise InvalidError(f'"{s}" has no letters or digits to make a name from', value=s)
    return cleaned


def app_deployment_name(
    app: str,
    *,
    version: str | None = None,
    branch: str | None = None,
    tag: str | None = None,
    commit: str | None = None,
) -> str:
    """The AppDeployment name ``fox publish`` uses: ``<app>-<version|branch|tag|commit>``.

    The first of version, branch, tag and commit that is set wins; each part is
    cleaned with :func:`clean_name` and the result is cut to 63 characters.

    Raises:
        InvalidError: none of version, branch, tag or commit is set, or a part
            has nothing usable in it.
    """
    qualifier = next((q for q in (version, branch, tag, commit) if q), None)
    if qualifier is None:
        raise InvalidError("an AppDeployment name needs a version, branch, tag or commit")
    return clean_name(f"{clean_name(app)}-{clean_name(qualifier)}")
