"""Calls to HTTPAdapters: the broker resolves the adapter's templates and makes the HTTP call.

Upstream's broker resolves the templates, secrets included, into the event
(``values["spec"]``) and hands it to httpsrv. Here the event never carries a
resolved template: the broker that checked the request (the router's
:meth:`~kubefox.router.Router.route_adapter`) resolves the URL and headers at
the moment it calls, reading secret values from the secrets backend through
:class:`~kubefox.store.secrets.ResourceSecrets` (cached per resource
version), and answers the caller with a RESPONSE event holding only what the
remote server sent back. Resolved values never reach an event, a log line, a
span or an error message: a failed call is reported by the kind of failure
and the adapter's name, never by its URL.

The request follows upstream (§3.6): the event's method, path (joined to the
adapter URL's path), query (the adapter URL's parameters win), headers (the
adapter's win; ``Host`` sets the request's host) and body; redirects per
``followRedirects``; TLS verification unless ``insecureSkipVerify``; at most
the event's remaining TTL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import structlog

from kubefox.core.errors import DeadlineExceededError, KubeFoxError, UnavailableError
from kubefox.core.events import (
    VAL_HEADER,
    VAL_METHOD,
    VAL_PATH,
    VAL_QUERY,
    VAL_STATUS,
    VAL_STATUS_CODE,
    Component,
    Event,
)
from kubefox.resources import FollowRedirects
from kubefox.resources.validation import AnyHTTPAdapter
from kubefox.store.secrets import ResourceSecrets

if TYPE_CHECKING:
    import httpx

    from kubefox.router import Routed

log = structlog.get_logger(__name__)

_TEMPLATE = re.compile(r"\{\{\s*\.(Vars|Env|Secrets)\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_MAX_REDIRECTS = 10
#: Headers that describe one hop's framing, not the message: never passed on.
_HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer", "content-length"}
)


class AdapterCallError(KubeFoxError):
    """An HTTPAdapter call failed before a reply came back (wire code 0, HTTP 500)."""

    default_message = "http request failed"


def uses_secrets(adapter: AnyHTTPAdapter) -> bool:
    """Whether the adapter's URL or a header template names a secret."""
    spec = adapter.spec
    return any(
        match[1] == "Secrets"
        for text in (spec.url, *spec.headers.values())
        for match in _TEMPLATE.finditer(text)
    )


def render(template: str, variables: Mapping[str, Any], secrets: Mapping[str, Any]) -> str:
    """``template`` with every ``{{.Vars.x}}``/``{{.Env.x}}``/``{{.Secrets.x}}`` replaced.

    A missing key renders as an empty string (upstream); a list as its items
    joined with ``,``. The result may hold secrets: never log it.
    """

    def value(match: re.Match[str]) -> str:
        source = secrets if match[1] == "Secrets" else variables
        return _text(source.get(match[2]))

    return _TEMPLATE.sub(value, template)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ",".join(_text(item) for item in value)
    return str(value)


class HttpAdapterCaller:
    """Makes the HTTP calls of HTTPAdapter requests for one broker.

    Args:
        secrets: where the secret values of contexts are read; without it an
            adapter whose templates name a secret cannot be called.
    """

    def __init__(self, secrets: ResourceSecrets | None) -> None:
        self._secrets = secrets
        self._clients: dict[bool, httpx.AsyncClient] = {}

    async def call(self, event: Event, routed: Routed, *, source: Component) -> Event:
        """Call the adapter ``routed`` names with ``event``; the RESPONSE to send back.

        Raises:
            AdapterCallError: the call failed (connection, TLS, protocol).
            DeadlineExceededError: no answer within the event's TTL.
            UnavailableError: the adapter needs secrets and there is no backend.
        """
        import httpx

        adapter = routed.adapter
        if adapter is None:  # pragma: no cover - route_adapter always sets it
            raise AdapterCallError("not an adapter request")
        name = adapter.metadata.name
        secrets = await self._context_secrets(routed) if uses_secrets(adapter) else {}
        variables = routed.context.data.vars
        spec = adapter.spec
        url = _request_url(render(spec.url, variables, secrets), event)
        headers = _request_headers(event, spec.headers, variables, secrets)
        client = self._client(verify=not spec.insecure_skip_verify)
        method = str(event.values.get(VAL_METHOD) or "GET").upper()
        timeout = event.ttl / 1e9
        try:
            response = await client.request(
                method, url, headers=headers, content=event.content, timeout=timeout
            )
            for _ in range(_MAX_REDIRECTS):
                location = _redirect(response, spec.follow_redirects)
                if location is None:
                    break
                await response.aclose()
                response = await client.request("GET", location, headers=headers, timeout=timeout)
        except httpx.TimeoutException:
            # ``from None``: httpx's messages name the URL, which may hold a secret.
            raise DeadlineExceededError(
                f'HTTPAdapter "{name}" did not answer in time', adapter=name
            ) from None
        except httpx.HTTPError as exc:
            # The message would name the URL, which may hold a secret: only its kind.
            raise AdapterCallError(
                f'http request to HTTPAdapter "{name}" failed: {type(exc).__name__}',
                adapter=name,
            ) from None
        return event.reply(
            source=source,
            content=response.content,
            content_type=response.headers.get("content-type", ""),
            values={
                VAL_STATUS_CODE: response.status_code,
                VAL_STATUS: _status_line(response.status_code),
                VAL_HEADER: _reply_headers(response),
            },
        )

    async def aclose(self) -> None:
        """Close the HTTP clients; idempotent."""
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.aclose()

    async def _context_secrets(self, routed: Routed) -> dict[str, Any]:
        secrets = self._secrets
        if secrets is None:
            raise UnavailableError(
                "this broker has no secrets backend; HTTPAdapters that use secrets cannot be "
                "called",
                adapter=routed.target.name,
            )
        values: dict[str, Any] = {}
        for key, version in routed.context.secret_sources:
            values.update(await secrets.read(key, version=version))
        return values

    def _client(self, *, verify: bool) -> httpx.AsyncClient:
        import httpx

        client = self._clients.get(verify)
        if client is None:
            # Redirects are followed here (per adapter policy), never by the client.
            client = self._clients[verify] = httpx.AsyncClient(
                verify=verify, follow_redirects=False, trust_env=False
            )
        return client


def _request_url(adapter_url: str, event: Event) -> str:
    """The adapter URL with the event's path joined to its path and the queries merged."""
    base = urlsplit(adapter_url)
    path = event.values.get(VAL_PATH)
    suffix = quote(path, safe="/:@!$&'()*+,;=-._~") if isinstance(path, str) else ""
    joined = (base.path or "/").rstrip("/") + "/" + suffix.lstrip("/") if suffix else base.path
    query: list[tuple[str, str]] = []
    adapter_query = parse_qsl(base.query, keep_blank_values=True)
    overridden = {k for k, _ in adapter_query}
    raw = event.values.get(VAL_QUERY)
    if isinstance(raw, Mapping):
        for name, values in raw.items():
            if name in overridden or not isinstance(name, str):
                continue
            items = values if isinstance(values, list) else [values]
            query.extend((name, str(item)) for item in items)
    query.extend(adapter_query)
    return urlunsplit(
        (base.scheme, base.netloc, joined or "/", urlencode(query, doseq=True), base.fragment)
    )


def _request_headers(
    event: Event,
    templates: Mapping[str, str],
    variables: Mapping[str, Any],
    secrets: Mapping[str, Any],
) -> list[tuple[str, str]]:
    adapter = {
        name.lower(): (name, render(text, variables, secrets)) for name, text in templates.items()
    }
    headers: list[tuple[str, str]] = []
    raw = event.values.get(VAL_HEADER)
    if isinstance(raw, Mapping):
        for name, values in raw.items():
            if not isinstance(name, str) or name.lower() in adapter or name.lower() in _HOP_HEADERS:
                continue
            if name.lower() == "host":
                continue  # the adapter URL's host, unless the adapter sets one
            items = values if isinstance(values, list) else [values]
            headers.extend((name, str(item)) for item in items)
    headers.extend(adapter.values())
    if event.content_type and "content-type" not in {n.lower() for n, _ in headers}:
        headers.append(("Content-Type", event.content_type))
    return headers


def _redirect(response: httpx.Response, policy: FollowRedirects) -> str | None:
    if policy is FollowRedirects.NEVER or not response.is_redirect:
        return None
    location = response.headers.get("location")
    if not location:
        return None
    target = response.url.join(location)
    if policy is FollowRedirects.SAME_HOST and target.host != response.request.url.host:
        return None
    return str(target)


def _reply_headers(response: httpx.Response) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in response.headers.multi_items():
        if name.lower() in _HOP_HEADERS:
            continue
        headers.setdefault(_canonical(name), []).append(value)
    return headers


def _canonical(name: str) -> str:
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def _status_line(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return str(code)
