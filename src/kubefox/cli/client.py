"""The platform API seen from ``fox``: where it is, and calls that raise kubefox errors.

Every command except ``fox up`` and local git work talks to the platform
through this client only. An error answer (a problem document) comes back as
the same ``KubeFoxError`` class the server raised, with its causes; a
platform that does not answer becomes an ``UnavailableError`` that says to
run ``fox up``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

import httpx

from kubefox.core.errors import KubeFoxError, UnavailableError

#: The file a running platform writes in its state directory (see ``kubefox.platform``).
ENDPOINTS_FILE = "endpoints.json"

#: Prefix of every versioned endpoint (``kubefox.api.PREFIX``; not imported: the API is heavy).
PREFIX = "/api/v1"

_NOT_RUNNING = "the platform is not running{where}; start it with `fox up`"


def find_api_url(state_dir: Path) -> str:
    """The API URL a platform running in ``state_dir`` wrote down.

    Raises:
        UnavailableError: no platform runs there (no ``endpoints.json``).
    """
    try:
        endpoints = json.loads((state_dir / ENDPOINTS_FILE).read_text())
    except (OSError, ValueError):
        raise UnavailableError(
            message=_NOT_RUNNING.format(where=f" (nothing in {state_dir})"),
            state_dir=str(state_dir),
        ) from None
    url = endpoints.get("api") if isinstance(endpoints, dict) else None
    if not isinstance(url, str) or not url:
        raise UnavailableError(
            message=_NOT_RUNNING.format(where=f" (its API is not up in {state_dir})"),
            state_dir=str(state_dir),
        )
    return url


def path(*parts: str) -> str:
    """``/api/v1/<part>/<part>`` with each part escaped."""
    return PREFIX + "".join(f"/{quote(part, safe='')}" for part in parts)


class ApiClient:
    """Synchronous calls to the platform API (``fox`` commands are synchronous)."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)

    @classmethod
    def connect(cls, *, api: str | None, state_dir: Path, timeout: float = 30.0) -> Self:
        """A client for ``api``, or for the platform running in ``state_dir``."""
        return cls(api or find_api_url(state_dir), timeout=timeout)

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        ok: tuple[int, ...] = (),
    ) -> httpx.Response:
        """Send a request; an error status raises the error its problem document names.

        ``ok`` lists error statuses to return instead (``HEAD`` answering 404).
        """
        try:
            response = self._http.request(
                method,
                url,
                json=json_body,
                content=content,
                params={k: v for k, v in (params or {}).items() if v is not None},
                headers=headers,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TimeoutException as exc:
            raise UnavailableError(
                message=f"the platform API at {self.base_url} did not answer in time; "
                "see `fox status`",
            ) from exc
        except httpx.TransportError as exc:
            raise UnavailableError(
                message=f"cannot reach the platform API at {self.base_url}: is the platform "
                "running? start it with `fox up`",
                url=self.base_url,
            ) from exc
        if response.status_code >= 400 and response.status_code not in ok:
            raise self._error(response)
        return response

    def get(self, url: str, **kwargs: Any) -> Any:
        """``GET`` and decode the JSON answer."""
        return self.request("GET", url, **kwargs).json()

    def _error(self, response: httpx.Response) -> KubeFoxError:
        try:
            document = response.json()
        except ValueError:
            document = None
        if isinstance(document, dict) and "code" in document:
            from kubefox.api.problems import error_from_problem  # the error path only

            return error_from_problem(document, status=response.status_code)
        return KubeFoxError(
            message=f"the platform API answered {response.status_code} to "
            f"{response.request.method} {response.request.url.path}",
            status=response.status_code,
        )


def http_url(client: ApiClient) -> str:
    """The base URL of the platform's httpsrv, from the API's status report.

    Raises:
        UnavailableError: the status names no running httpsrv.
    """
    status = client.get(path("status"))
    for part in status.get("parts", []):
        if part.get("name") == "http" and part.get("url"):
            return str(part["url"])
    raise UnavailableError("httpsrv is not running: the platform status names no HTTP endpoint")
