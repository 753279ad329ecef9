"""httpsrv, the HTTP genesis adapter: HTTP requests in, events routed in-process, replies out."""

from kubefox.adapters.http.app import (
    HEALTH_PATH,
    HttpAdapter,
    Limits,
    Requester,
    adapter_identity,
)
from kubefox.adapters.http.server import HttpServer
from kubefox.adapters.http.settings import HttpsrvSettings
from kubefox.adapters.http.translate import (
    STRIPPED_PARAMS,
    HttpResponse,
    canonical_header,
    error_response,
    kubefox_headers,
    reply_response,
    request_event,
)

__all__ = [
    "HEALTH_PATH",
    "STRIPPED_PARAMS",
    "HttpAdapter",
    "HttpResponse",
    "HttpServer",
    "HttpsrvSettings",
    "Limits",
    "Requester",
    "adapter_identity",
    "canonical_header",
    "error_response",
    "kubefox_headers",
    "reply_response",
    "request_event",
]
