"""TLS for a server: one ``ssl.SSLContext``, reloaded in place when its certificate rotates.

A server is created with one context and keeps it for its whole life;
:meth:`ServerTls.reload` loads the certificate files into that same context
again. OpenSSL copies a context's certificate and key into each connection
when the connection is accepted, so from then on new handshakes present the
new certificate while connections already open keep theirs: a rotation drops
nothing and needs no restart.

The new files are first loaded into a scratch context: a pair that does not
load (a key that does not match its certificate, a file half written) is
logged and the server keeps presenting the certificate it has.

Who rotates the files decides who calls :meth:`~ServerTls.reload`: a
``CertificateRotator`` in the same process passes
:meth:`~ServerTls.on_rotated` as its callback; files renewed by another
process are followed with :meth:`~ServerTls.watch`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import ssl
from pathlib import Path
from typing import Protocol, Self

import structlog

from kubefox.core.errors import InvalidError

log = structlog.get_logger(__name__)

#: Seconds between two looks at the certificate file by :meth:`ServerTls.watch`.
WATCH_INTERVAL = 2.0


class CertificatePaths(Protocol):
    """Where a certificate chain and its key are (a ``CertificateFiles``, for one)."""

    @property
    def cert_file(self) -> Path: ...

    @property
    def key_file(self) -> Path: ...


def _server_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])  # uvicorn's httptools protocol speaks HTTP/1.1
    return context


def _file_state(path: Path) -> tuple[int, int, int] | None:
    """What changes when a file is rewritten (atomically or in place); ``None`` if missing."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


class ServerTls:
    """The TLS context of one server, loaded from a certificate chain and key file.

    Args:
        cert_file: PEM chain the server presents (leaf first).
        key_file: PEM private key of the leaf.

    Raises:
        InvalidError: the files are missing or do not make a certificate and its key.
    """

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        self.cert_file = Path(cert_file)
        self.key_file = Path(key_file)
        #: The context the server is created with; reloads change it in place.
        self.context = _server_context()
        #: How many times new files were loaded after the first.
        self.reloads = 0
        self._loaded = _file_state(self.cert_file)
        try:
            self.context.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise InvalidError(
                f"cannot load the TLS certificate {self.cert_file} with key {self.key_file}: {exc}",
                cert_file=str(self.cert_file),
                key_file=str(self.key_file),
            ) from exc

    @classmethod
    def from_files(cls, files: CertificatePaths) -> Self:
        """The context for ``files.cert_file`` and ``files.key_file``."""
        return cls(files.cert_file, files.key_file)

    def reload(self) -> bool:
        """Load the files again into the same context; ``False`` (and logged) if they do not load.

        Call it from the event loop's thread: no handshake can begin halfway
        through, since connections are accepted in that thread too.
        """
        state = _file_state(self.cert_file)
        try:
            # A pair that does not load must not reach the live context: loading
            # a certificate whose key is not there yet leaves a context without a key.
            _server_context().load_cert_chain(self.cert_file, self.key_file)
            self.context.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            log.warning(
                "tls.reload_failed",
                cert_file=str(self.cert_file),
                error=str(exc),
                detail="still presenting the certificate loaded before",
            )
            return False
        self._loaded = state
        self.reloads += 1
        log.info("tls.reloaded", cert_file=str(self.cert_file), reloads=self.reloads)
        return True

    async def on_rotated(self, files: CertificatePaths) -> None:
        """Reload; the shape of a ``CertificateRotator``'s ``on_rotated`` callback."""
        if (files.cert_file, files.key_file) != (self.cert_file, self.key_file):
            raise ValueError(f"these TLS settings serve {self.cert_file}, not {files.cert_file}")
        self.reload()

    def changed(self) -> bool:
        """Whether the certificate file differs from the one last loaded."""
        state = _file_state(self.cert_file)
        return state is not None and state != self._loaded

    async def watch(self, interval: float = WATCH_INTERVAL) -> None:
        """Reload whenever the certificate file changes, until cancelled.

        The certificate is written after its key (``CertificateRotator`` does
        so), so a changed certificate means both are there. A pair that does not
        load yet is tried again at the next look.
        """
        while True:
            await asyncio.sleep(interval)
            if self.changed():
                self.reload()


def certificate_names(host: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The DNS names and IP addresses a certificate must name for a server bound to ``host``.

    Loopback names are every platform certificate's already; a wildcard
    address (``0.0.0.0``, ``::``) adds this machine's host name.
    """
    if host in {"", "0.0.0.0", "::"}:  # noqa: S104 - naming the wildcard, not binding it
        return (socket.gethostname(),), ()
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return (host,), ()
    return (), (host,)
