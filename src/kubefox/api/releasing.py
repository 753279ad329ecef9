"""Releases over HTTP: thin wrappers of :mod:`kubefox.releases` for the API.

Release, history and rollback are the releases library's; this module only
reads the request body and applies the wait the client asked for. A release
or rollback returns at once with the VirtualEnvironment as written, unless
the request says how long to wait for it to become active.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubefox import releases
from kubefox.core.errors import InvalidError
from kubefox.resources import VirtualEnvironment
from kubefox.router import ResourceView
from kubefox.store.typed import TypedStore


def _release_request(body: object) -> tuple[str, str | None]:
    if not isinstance(body, Mapping):
        raise InvalidError(
            "a release request must be a JSON object such as "
            '{"ref": "v1"} or {"ref": "hello-world-main", "app": "hello-world"}',
            problems=[{"path": "$", "message": "expected an object"}],
        )
    problems = []
    ref, app = body.get("ref"), body.get("app")
    if not isinstance(ref, str) or not ref.strip():
        problems.append(
            {
                "path": "$.ref",
                "message": "required: a version, tag, branch, commit or AppDeployment name",
            }
        )
    if app is not None and not isinstance(app, str):
        problems.append({"path": "$.app", "message": "must be a string (an app name)"})
    unknown = sorted(str(key) for key in body if key not in ("ref", "app"))
    problems += [{"path": f"$.{key}", "message": f'unknown field "{key}"'} for key in unknown]
    if problems:
        raise InvalidError(f"bad release request: {problems[0]['message']}", problems=problems)
    assert isinstance(ref, str)  # noqa: S101 - checked above; narrows for mypy
    return ref.strip(), app if isinstance(app, str) else None


class ReleaseService:
    """Release, rollback and history of the VirtualEnvironments of one namespace."""

    def __init__(self, store: TypedStore, view: ResourceView) -> None:
        self.store = store
        self.view = view

    async def release(
        self, virtual_environment: str, body: object, *, wait: int | None, max_wait: float
    ) -> VirtualEnvironment:
        """Release what ``body["ref"]`` names into ``virtual_environment``."""
        ref, app = _release_request(body)
        ve = await releases.release(
            self.store, virtual_environment=virtual_environment, ref=ref, app=app
        )
        if wait is not None:
            ve = await releases.wait_released(
                self.view,
                virtual_environment,
                timeout=min(wait, max_wait),
                release=ve.spec.release,
            )
        return ve

    async def history(self, virtual_environment: str) -> list[dict[str, Any]]:
        """The VirtualEnvironment's releases, newest first, as JSON."""
        found = await releases.history(self.store, virtual_environment)
        return [item.model_dump(mode="json", by_alias=True, exclude_none=True) for item in found]

    async def rollback(
        self, virtual_environment: str, *, wait: int | None, max_wait: float
    ) -> VirtualEnvironment:
        """Release again what was active before the current release."""
        ve = await releases.rollback(self.store, virtual_environment)
        if wait is not None:
            ve = await releases.wait_released(
                self.view,
                virtual_environment,
                timeout=min(wait, max_wait),
                release=ve.spec.release,
            )
        return ve
