"""The platform API seen from ``fox``: where it is, and calls that raise kubefox errors.

Every command except ``fox up`` and local git work talks to the platform
through this client only. An error answer (a problem document) comes back as
the same ``KubeFoxError`` class the server raised, with its causes; a
platform that does not answer becomes an ``UnavailableError`` that says to
run ``fox up``.

With security on the API speaks HTTPS with a certificate from the platform's
own CA, which no system trust store knows. The client trusts, in this order:
the CA given with ``fox --ca-file`` (or ``KUBEFOX_CA_FILE``), then the CA a
platform running in the state directory names in ``endpoints.json`` (only
when talking to that platform), else the system's trust store. A certificate
it cannot verify is an ``UnavailableError`` saying which CA to give.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

import httpx

from kubefox.core.errors import InvalidError, KubeFoxError, UnavailableError

#: The file a running platform writes in its state directory (see ``kubefox.platform``).
ENDPOINTS_FILE = "endpoints.json"

#: Prefix of every versioned endpoint (``kubefox.api.PREFIX``; not imported: the API is heavy).
PREFIX = "/api/v1"

#: The variable ``fox --ca-file`` reads: the CA bundle a remote platform's API is verified with.
CA_FILE_ENV = "KUBEFOX_CA_FILE"

_NOT_RUNNING = "the platform is not running{where}; start it with `fox up`"

#: The CA given on the command line (``fox --ca-file``); wins over the state directory's.
_ca_file_option: Path | None = None


def use_ca_file(ca_file: Path | None) -> None:
    """Trust ``ca_file`` (``fox --ca-file``) for every API call of this command."""
    global _ca_file_option  # noqa: PLW0603 - one command per process: the option, set once
    _ca_file_option = ca_file


def _endpoints(state_dir: Path) -> dict[str, Any] | None:
    try:
        endpoints = json.loads((state_dir / ENDPOINTS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return endpoints if isinstance(endpoints, dict) else None


def find_api_url(state_dir: Path) -> str:
    """The API URL a platform running in ``state_dir`` wrote down.

    Raises:
        UnavailableError: no platform runs there (no ``endpoints.json``).
    """
    endpoints = _endpoints(state_dir)
    if endpoints is None:
        raise UnavailableError(
            message=_NOT_RUNNING.format(where=f" (nothing in {state_dir})"),
            state_dir=str(state_dir),
        )
    url = endpoints.get("api")
    if not isinstance(url, str) or not url:
        raise UnavailableError(
            message=_NOT_RUNNING.format(where=f" (its API is not up in {state_dir})"),
            state_dir=str(state_dir),
        )
    return url


def find_ca_file(state_dir: Path) -> Path | None:
    """The CA bundle a platform running in ``state_dir`` serves its certificates from, if any."""
    ca_file = (_endpoints(state_dir) or {}).get("caFile")
    return Path(ca_file) if isinstance(ca_file, str) and ca_file else None


def trusted_ca_file(*, api: str | None, state_dir: Path) -> Path | None:
    """The CA to verify the API with: ``--ca-file``, else the state directory's platform's.

    The state directory's CA is used only for that platform's API (``api``
    unset or the URL it wrote down): another platform's certificate is checked
    against the system's trust store, as any HTTPS server's.
    """
    if _ca_file_option is not None:
        return _ca_file_option
    local = _endpoints(state_dir) or {}
    if api is not None and api.rstrip("/") != str(local.get("api", "")).rstrip("/"):
        return None
    return find_ca_file(state_dir)


def verifying(ca_file: Path | None) -> ssl.SSLContext | bool:
    """What httpx verifies servers with: only ``ca_file``'s CAs, else the default trust store.

    Raises:
        InvalidError: ``ca_file`` cannot be read as PEM certificates.
    """
    if ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise InvalidError(
            f"cannot read the CA file {ca_file}: {exc}", ca_file=str(ca_file)
        ) from exc


def _untrusted(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure ``exc`` was raised from, if that is what it is."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def path(*parts: str) -> str:
    """``/api/v1/<part>/<part>`` with each part escaped."""
    return PREFIX + "".join(f"/{quote(part, safe='')}" for part in parts)


class ApiClient:
    """Synchronous calls to the platform API (``fox`` commands are synchronous)."""

    def __init__(
        self, base_url: str, *, timeout: float = 30.0, ca_file: Path | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        #: The CA bundle HTTPS answers are verified with; ``None``: the system's trust store.
        self.ca_file = ca_file
        self._http = httpx.Client(
            base_url=self.base_url, timeout=timeout, verify=verifying(ca_file)
        )

    @classmethod
    def connect(cls, *, api: str | None, state_dir: Path, timeout: float = 30.0) -> Self:
        """A client for ``api``, or for the platform running in ``state_dir``, trusting its CA."""
        url = api or find_api_url(state_dir)
        return cls(url, timeout=timeout, ca_file=trusted_ca_file(api=api, state_dir=state_dir))

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
            raise self._unreachable(exc) from exc
        if response.status_code >= 400 and response.status_code not in ok:
            raise self._error(response)
        return response

    def _unreachable(self, exc: httpx.TransportError) -> UnavailableError:
        untrusted = _untrusted(exc)
        if untrusted is not None:
            trusted = f"the CA in {self.ca_file}" if self.ca_file else "the system's trust store"
            return UnavailableError(
                message=f"the platform API at {self.base_url} presented a certificate that "
                f"{trusted} does not vouch for ({untrusted.verify_message}): give fox the "
                f"platform's CA with `fox --ca-file PATH` or {CA_FILE_ENV}=PATH (`fox up` "
                "prints where a local platform keeps it)",
                url=self.base_url,
            )
        if self.base_url.startswith("http://") and isinstance(
            exc, httpx.RemoteProtocolError | httpx.ReadError
        ):
            return UnavailableError(
                message=f"the platform API at {self.base_url} closed the connection without "
                "an answer: it may speak HTTPS only; try https://",
                url=self.base_url,
            )
        return UnavailableError(
            message=f"cannot reach the platform API at {self.base_url}: is the platform "
            "running? start it with `fox up`",
            url=self.base_url,
        )

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
