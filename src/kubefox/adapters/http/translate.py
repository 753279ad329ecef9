"""HTTP request -> genesis event, and reply event -> HTTP response (upstream §2.5).

Pure functions over an ASGI ``scope`` and the request body, so every rule is
unit-tested without a server. The mapping is upstream's:

* the context comes from ``kubefox-virtual-environment``/``kf-ve`` and
  ``kubefox-app-deployment``/``kf-dep``, the event type from
  ``kubefox-event-type``/``kf-type`` (else ``io.kubefox.http``); for each name
  the query parameter is checked before the header, and the first non-empty
  value wins. Those six names are then removed from the query and the headers,
  so they never reach a component;
* the values are ``url``, ``host`` (lower-case, with the port; the
  ``X-Forwarded-Host``/``-Port``/``-Proto`` headers win), ``path``,
  ``queryParam``, ``method`` and ``header`` (keys in Go's canonical MIME form,
  ``Host`` left out as Go's server does).

Bytes that are not UTF-8 in a header, in the query string or in a
percent-escape of the query are refused with :class:`InvalidError` (400):
a component only ever sees text, and silently replacing bytes would change
what the client sent.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple
from urllib.parse import quote, unquote_plus

import msgspec

from kubefox.core.codec import error_from_event
from kubefox.core.errors import InvalidError, KubeFoxError
from kubefox.core.events import (
    TYPE_ERROR,
    TYPE_HTTP,
    VAL_HEADER,
    VAL_HOST,
    VAL_METHOD,
    VAL_PATH,
    VAL_QUERY,
    VAL_STATUS_CODE,
    VAL_URL,
    Category,
    Component,
    Event,
    EventContext,
    SpanContext,
)

#: Request parameters (query name = header name) naming the context and the event type.
PARAM_VIRTUAL_ENVIRONMENT = "kubefox-virtual-environment"
PARAM_VIRTUAL_ENVIRONMENT_SHORT = "kf-ve"
PARAM_APP_DEPLOYMENT = "kubefox-app-deployment"
PARAM_APP_DEPLOYMENT_SHORT = "kf-dep"
PARAM_EVENT_TYPE = "kubefox-event-type"
PARAM_EVENT_TYPE_SHORT = "kf-type"
#: The six names above: removed from the query and the headers before routing.
STRIPPED_PARAMS = frozenset(
    {
        PARAM_VIRTUAL_ENVIRONMENT,
        PARAM_VIRTUAL_ENVIRONMENT_SHORT,
        PARAM_APP_DEPLOYMENT,
        PARAM_APP_DEPLOYMENT_SHORT,
        PARAM_EVENT_TYPE,
        PARAM_EVENT_TYPE_SHORT,
    }
)

# Each pair is checked in order, the query before the header for each name.
_VIRTUAL_ENVIRONMENT_NAMES = (PARAM_VIRTUAL_ENVIRONMENT, PARAM_VIRTUAL_ENVIRONMENT_SHORT)
_APP_DEPLOYMENT_NAMES = (PARAM_APP_DEPLOYMENT, PARAM_APP_DEPLOYMENT_SHORT)
_EVENT_TYPE_NAMES = (PARAM_EVENT_TYPE, PARAM_EVENT_TYPE_SHORT)

#: Response headers httpsrv adds to every answer (lower case, as ASGI servers send them).
HEADER_ADAPTER = b"kubefox-adapter"
HEADER_EVENT_ID = b"kubefox-event-id"
HEADER_PLATFORM = b"kubefox-platform"
HEADER_VIRTUAL_ENVIRONMENT = b"kubefox-virtual-environment"
HEADER_APP_DEPLOYMENT = b"kubefox-app-deployment"
HEADER_RELEASE_MANIFEST = b"kubefox-release-manifest"

#: Content type of error bodies, as Go's ``http.Error`` writes it.
CONTENT_TYPE_ERROR = "text/plain; charset=utf-8"

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# What an HTTP/1.1 server may not write in a header value (uvicorn refuses it too).
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_SCHEME = re.compile(r"[a-z][a-z0-9+.\-]*")
_PORT = re.compile(r"[0-9]{1,5}")
# Framing is the server's business, our own headers are ours: a reply cannot set these.
_RESERVED_REPLY_HEADERS = frozenset(
    {
        "connection",
        "content-length",
        "date",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        *(
            name.decode()
            for name in (
                HEADER_ADAPTER,
                HEADER_EVENT_ID,
                HEADER_PLATFORM,
                HEADER_VIRTUAL_ENVIRONMENT,
                HEADER_APP_DEPLOYMENT,
                HEADER_RELEASE_MANIFEST,
            )
        ),
    }
)
_NO_BODY_STATUSES = frozenset({204, 304})
_MIN_STATUS = 200
_MAX_STATUS = 599
_json_decoder = msgspec.json.Decoder()


class HttpResponse(NamedTuple):
    """What to write back: status, headers (lower-case names, as bytes) and body."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


@functools.lru_cache(maxsize=1024)
def canonical_header(name: str) -> str:
    """Go's ``textproto.CanonicalMIMEHeaderKey``: ``content-type`` -> ``Content-Type``.

    A name that is not a valid HTTP token is returned unchanged, as Go does.
    """
    if not _TOKEN.fullmatch(name):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def _text(raw: object, what: str) -> str:
    if not isinstance(raw, bytes | bytearray):
        raise InvalidError(f"{what} is not bytes")
    try:
        return raw.decode()
    except UnicodeDecodeError as exc:
        raise InvalidError(f"{what} is not valid UTF-8") from exc


def _check_encodable(text: str, what: str) -> None:
    try:
        text.encode()
    except UnicodeEncodeError as exc:  # lone surrogates: no wire format can carry them
        raise InvalidError(f"{what} is not valid UTF-8") from exc


def _header_value(raw: object, name: str) -> str:
    if isinstance(raw, bytes):
        try:
            return raw.decode()
        except UnicodeDecodeError:
            pass
    # Built only on failure: this runs for every header of every request.
    return _text(raw, f"header {name!r}")


def _unquote(text: str) -> str:
    if "%" not in text and "+" not in text:
        return text
    try:
        return unquote_plus(text, errors="strict")
    except UnicodeDecodeError as exc:
        raise InvalidError("a query parameter is not valid UTF-8 once unescaped") from exc


def _first_item(value: str) -> str:
    """The first entry of a comma-separated proxy header (``X-Forwarded-Host: a, b``)."""
    return value.partition(",")[0].strip()


def _has_port(host: str) -> bool:
    if host.startswith("["):  # IPv6 literal: the port follows the closing bracket
        return "]:" in host
    return ":" in host


def _server_host(server: object) -> str:
    if not isinstance(server, tuple | list) or len(server) != 2:
        return ""
    address, port = server
    if not isinstance(address, str):
        return ""
    if ":" in address:
        address = f"[{address}]"
    return f"{address}:{port}" if isinstance(port, int) else address


def _param(names: tuple[str, str], query: Mapping[str, str], headers: Mapping[str, str]) -> str:
    for name in names:
        value = query.get(name) or headers.get(name)
        if value:
            return value
    return ""


@dataclasses.dataclass(slots=True)
class _Headers:
    """What one pass over the request headers finds."""

    header: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    params: dict[str, str] = dataclasses.field(default_factory=dict)
    host: str = ""
    content_type: str = ""
    forwarded_host: str = ""
    forwarded_port: str = ""
    forwarded_proto: str = ""


def _read_headers(raw_headers: Iterable[Any]) -> _Headers:
    found = _Headers()
    header = found.header
    for item in raw_headers:
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise InvalidError("malformed request: bad header")
        name = _text(item[0], "a header name").lower()
        value = _header_value(item[1], name)
        if name in STRIPPED_PARAMS:
            if value and name not in found.params:
                found.params[name] = value
            continue
        if name == "host":
            # Go's server moves Host out of the header map into the request.
            found.host = found.host or value
            continue
        if name == "content-type":
            found.content_type = found.content_type or value
        elif name == "x-forwarded-host":
            found.forwarded_host = found.forwarded_host or _first_item(value)
        elif name == "x-forwarded-port":
            found.forwarded_port = found.forwarded_port or _first_item(value)
        elif name == "x-forwarded-proto":
            found.forwarded_proto = found.forwarded_proto or _first_item(value).lower()
        header.setdefault(canonical_header(name), []).append(value)
    return found


def _read_query(raw: object) -> tuple[str, dict[str, list[str]], dict[str, str]]:
    """The query string without the kubefox parameters, its parameters, and those removed."""
    query_string = _text(raw, "the query string")
    query: dict[str, list[str]] = {}
    params: dict[str, str] = {}
    if not query_string:
        return query_string, query, params
    kept: list[str] = []
    stripped = False
    for part in query_string.split("&"):
        if not part:
            continue
        raw_key, _, raw_value = part.partition("=")
        key = _unquote(raw_key)
        value = _unquote(raw_value)
        if key in STRIPPED_PARAMS:
            stripped = True
            if value and key not in params:
                params[key] = value
            continue
        kept.append(part)
        query.setdefault(key, []).append(value)
    # Untouched unless a parameter was removed: the client's own encoding is kept.
    return ("&".join(kept) if stripped else query_string), query, params


def _origin(scope: Mapping[str, Any], headers: _Headers) -> tuple[str, str]:
    """Scheme and lower-case host (with port) the client addressed, proxies honoured."""
    host = headers.forwarded_host or headers.host or _server_host(scope.get("server"))
    port = headers.forwarded_port
    if port and _PORT.fullmatch(port) and host and not _has_port(host):
        host = f"{host}:{port}"
    scheme = scope.get("scheme")
    if headers.forwarded_proto and _SCHEME.fullmatch(headers.forwarded_proto):
        scheme = headers.forwarded_proto
    elif not isinstance(scheme, str) or not scheme:
        scheme = "http"
    return scheme, host.lower()


def _url(scope: Mapping[str, Any], path: str, origin: tuple[str, str], query: str) -> str:
    raw_path = scope.get("raw_path")
    try:
        url_path = raw_path.decode("ascii") if isinstance(raw_path, bytes) else ""
    except UnicodeDecodeError:
        url_path = ""
    if not url_path:
        url_path = quote(path, safe="/:@!$&'()*+,;=~%")
    scheme, host = origin
    url = f"{scheme}://{host}{url_path}"
    return f"{url}?{query}" if query else url


def request_event(
    scope: Mapping[str, Any],
    body: bytes,
    *,
    platform: str,
    source: Component,
    ttl: int,
    event_id: str | None = None,
    parent_span: SpanContext | None = None,
) -> Event:
    """The genesis REQUEST event for the HTTP request ``scope`` + ``body`` describes.

    Args:
        scope: the ASGI HTTP scope.
        body: the whole request body (already size-checked).
        platform: the platform the event enters.
        source: httpsrv's own identity.
        ttl: the event's time to live in nanoseconds.
        event_id: the event's id; a fresh one if not given.
        parent_span: the trace context the event carries (httpsrv's span, when sampled).

    Raises:
        InvalidError: the request cannot be expressed as an event: a header or
            the query is not UTF-8, or the scope is malformed.
    """
    method = scope.get("method")
    path = scope.get("path")
    if not isinstance(method, str) or not method or not isinstance(path, str):
        raise InvalidError("malformed request: no method or path")
    if not (path.isascii() and method.isascii()):
        _check_encodable(path, "the path")
        _check_encodable(method, "the method")
    headers = _read_headers(scope.get("headers") or ())
    query_string, query, query_params = _read_query(scope.get("query_string", b""))
    origin = _origin(scope, headers)

    header_params = headers.params
    context = EventContext(
        platform=platform,
        virtual_environment=_param(_VIRTUAL_ENVIRONMENT_NAMES, query_params, header_params),
        app_deployment=_param(_APP_DEPLOYMENT_NAMES, query_params, header_params),
    )
    event_type = _param(_EVENT_TYPE_NAMES, query_params, header_params)
    values: dict[str, Any] = {
        VAL_URL: _url(scope, path, origin, query_string),
        VAL_HOST: origin[1],
        VAL_PATH: path,
        VAL_QUERY: query,
        VAL_METHOD: method,
        VAL_HEADER: headers.header,
    }
    fields: dict[str, Any] = {"id": event_id} if event_id else {}
    return Event(
        **fields,
        parent_span=parent_span,
        type=event_type or TYPE_HTTP,
        category=Category.REQUEST,
        ttl=ttl,
        context=context,
        source=source,
        values=values,
        content_type=headers.content_type,
        content=body if type(body) is bytes else bytes(body),
    )


def _status(raw: object) -> int:
    if raw is None:
        return 200
    status: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        status = raw
    elif (isinstance(raw, float) and raw.is_integer()) or (
        isinstance(raw, str) and raw.isdigit() and raw.isascii() and len(raw) <= 3
    ):
        status = int(raw)
    if status == 0:
        return 200  # Go's zero value: "not set"
    if status is None or not _MIN_STATUS <= status <= _MAX_STATUS:
        raise KubeFoxError(f"the reply's status code {raw!r} is not an HTTP status")
    return status


def _reply_headers(raw: object, content_type: str) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = []
    if isinstance(raw, dict):
        for name, values in raw.items():
            if not isinstance(name, str) or not isinstance(values, list):
                continue
            lower = name.lower()
            if lower in _RESERVED_REPLY_HEADERS or not _TOKEN.fullmatch(name):
                continue
            if lower == "content-type" and content_type:
                continue
            encoded = lower.encode("ascii")
            headers.extend(
                (encoded, value.encode())
                for value in values
                if isinstance(value, str) and not _BAD_VALUE.search(value)
            )
    if content_type and not _BAD_VALUE.search(content_type):
        headers.append((b"content-type", content_type.encode()))
    return headers


def _with_body(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> HttpResponse:
    if status in _NO_BODY_STATUSES:
        return HttpResponse(status, headers, b"")
    headers.append((b"content-length", str(len(body)).encode("ascii")))
    return HttpResponse(status, headers, body)


def error_response(error: KubeFoxError, *, status: int | None = None) -> HttpResponse:
    """The response for ``error``: its HTTP status and ``msg: cause`` as plain text.

    An :class:`InvalidError` carrying the problems of an invalid context
    (``details["problems_yaml"]``) gets upstream's body: the line
    ``invalid: event context is invalid`` followed by the YAML problem list.
    """
    text = str(error)
    problems = error.details.get("problems_yaml")
    if isinstance(error, InvalidError) and isinstance(problems, str) and problems:
        text = f"{text}\n{problems}"
    return _with_body(
        int(error.http_status) if status is None else status,
        [(b"content-type", CONTENT_TYPE_ERROR.encode("ascii"))],
        text.encode(),
    )


def _wire_status(content: bytes, default: int) -> int:
    """The ``httpCode`` an error document names, for codes this version does not know."""
    try:
        payload = _json_decoder.decode(content)
    except (msgspec.DecodeError, RecursionError):
        return default
    code = payload.get("httpCode") if isinstance(payload, dict) else None
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= _MAX_STATUS:
        return code
    return default


def reply_response(reply: Event) -> HttpResponse:
    """The HTTP response a component's reply event stands for.

    Status from the ``statusCode`` value (200 if absent), headers from the
    ``header`` value (framing and ``Kubefox-*`` headers excepted),
    ``Content-Type`` from the event's content type, the content as body. An
    ``io.kubefox.error`` event becomes :func:`error_response` of its error.

    Raises:
        KubeFoxError: the reply's status code is not an HTTP status (200-599).
    """
    if reply.type == TYPE_ERROR:
        error = error_from_event(reply)
        status = int(error.http_status)
        if type(error) is KubeFoxError:  # an unknown code: trust the sender's HTTP status
            status = _wire_status(reply.content, status)
        return error_response(error, status=status)
    values = reply.values
    status = _status(values.get(VAL_STATUS_CODE))
    headers = _reply_headers(values.get(VAL_HEADER), reply.content_type)
    return _with_body(status, headers, reply.content)


def kubefox_headers(
    adapter: str, event_id: str, context: EventContext
) -> list[tuple[bytes, bytes]]:
    """``Kubefox-Adapter``, ``Kubefox-Event-Id`` and the context headers that are known."""
    headers = [(HEADER_ADAPTER, adapter.encode()), (HEADER_EVENT_ID, event_id.encode())]
    for name, value in (
        (HEADER_PLATFORM, context.platform),
        (HEADER_VIRTUAL_ENVIRONMENT, context.virtual_environment),
        (HEADER_APP_DEPLOYMENT, context.app_deployment),
        (HEADER_RELEASE_MANIFEST, context.release_manifest),
    ):
        # The context may echo what a client sent; never let it break the header block.
        if value and not _BAD_VALUE.search(value):
            headers.append((name, value.encode()))
    return headers
