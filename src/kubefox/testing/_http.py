"""An HTTP client for a platform's httpsrv that can name the context of its requests.

``kf-dep`` and ``kf-ve`` pick the AppDeployment and VirtualEnvironment a
request runs in (both or neither). Tests name them on almost every request, so
:meth:`HttpClient.with_context` returns a view of the client that adds both
headers to each request it sends; headers given to a request still win.

httpsrv also listens for HTTPS when the platform's security is on, with a
certificate from the platform's own CA: :meth:`HttpClient.trusting` makes a
client that verifies it against that CA (and nothing else).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Self

import httpx

from kubefox.publish import PublishResult

#: The request headers naming the context, as upstream's short parameter names.
DEPLOYMENT_HEADER = "kf-dep"
VIRTUAL_ENVIRONMENT_HEADER = "kf-ve"


class HttpClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` for httpsrv; the ``kubefox_http`` fixture.

    Use it as any httpx client (``await client.get("/qa/hello", params=...)``)
    or through :meth:`with_context`.
    """

    @classmethod
    def trusting(cls, ca_file: Path | str, **kwargs: Any) -> Self:
        """A client that verifies HTTPS servers against the CAs in ``ca_file`` only.

        Args:
            ca_file: PEM bundle, e.g. the platform's (``platform.security.ca_file``).
            kwargs: further ``httpx.AsyncClient`` arguments (``base_url``, ``timeout``...).
        """
        return cls(verify=ssl.create_default_context(cafile=str(ca_file)), **kwargs)

    def with_context(
        self, deployment: str | PublishResult, virtual_environment: str
    ) -> ContextClient:
        """A view of this client whose requests run in one deployment and virtual environment.

        Args:
            deployment: The AppDeployment's name, or the result of publishing it.
            virtual_environment: The VirtualEnvironment's name.
        """
        name = deployment.name if isinstance(deployment, PublishResult) else deployment
        return ContextClient(self, deployment=name, virtual_environment=virtual_environment)


class ContextClient:
    """Sends requests through an :class:`HttpClient` with ``kf-dep`` and ``kf-ve`` set.

    Every method takes the arguments of the ``httpx.AsyncClient`` method of the
    same name and returns its ``httpx.Response``.

    Attributes:
        client: The client requests go through.
        deployment: The AppDeployment every request names.
        virtual_environment: The VirtualEnvironment every request names.
    """

    def __init__(self, client: HttpClient, *, deployment: str, virtual_environment: str) -> None:
        self.client = client
        self.deployment = deployment
        self.virtual_environment = virtual_environment

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send a request with the context headers added (headers passed in win)."""
        headers = httpx.Headers(
            {
                DEPLOYMENT_HEADER: self.deployment,
                VIRTUAL_ENVIRONMENT_HEADER: self.virtual_environment,
            }
        )
        headers.update(httpx.Headers(kwargs.pop("headers", None)))
        return await self.client.request(method, url, headers=headers, **kwargs)

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        """``GET`` ``url`` in the context."""
        return await self.request("GET", url, **kwargs)

    async def head(self, url: str, **kwargs: Any) -> httpx.Response:
        """``HEAD`` ``url`` in the context."""
        return await self.request("HEAD", url, **kwargs)

    async def options(self, url: str, **kwargs: Any) -> httpx.Response:
        """``OPTIONS`` ``url`` in the context."""
        return await self.request("OPTIONS", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        """``POST`` to ``url`` in the context."""
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> httpx.Response:
        """``PUT`` to ``url`` in the context."""
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        """``PATCH`` ``url`` in the context."""
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        """``DELETE`` ``url`` in the context."""
        return await self.request("DELETE", url, **kwargs)
