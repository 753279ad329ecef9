"""Serving ASGI applications: what httpsrv, the API and the OTLP receiver share."""

from kubefox.serving.listener import QuietServer, bind, url_of
from kubefox.serving.server import AsgiServer, asgi_config
from kubefox.serving.tls import CertificatePaths, ServerTls, certificate_names

__all__ = [
    "AsgiServer",
    "CertificatePaths",
    "QuietServer",
    "ServerTls",
    "asgi_config",
    "bind",
    "certificate_names",
    "url_of",
]
