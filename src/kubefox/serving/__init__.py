"""Serving ASGI applications: what httpsrv, the API and the OTLP receiver share."""

from kubefox.serving.listener import QuietServer, bind, url_of
from kubefox.serving.server import AsgiServer

__all__ = ["AsgiServer", "QuietServer", "bind", "url_of"]
