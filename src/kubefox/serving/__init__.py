"""Serving ASGI applications: what httpsrv, the API and the OTLP receiver share."""

from kubefox.serving.listener import QuietServer, bind, url_of

__all__ = ["QuietServer", "bind", "url_of"]
