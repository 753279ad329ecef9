"""How every process of ours reaches NATS: servers, TLS trust, credentials, inbox prefix.

One value carries what a connection needs, so the store, the broker, httpsrv
and the Kit connect the same way whichever client library they use. With
security on (the default of ``fox up``), nats-server speaks TLS with a
certificate from the platform's CA and runs in operator mode: a client must
trust that CA (``ca_file``), present a user credential (``creds_file``, a
``.creds`` file holding the user JWT and its seed) and use the inbox prefix its
permissions allow (``inbox_prefix``).
"""

from __future__ import annotations

import dataclasses
import ssl
from pathlib import Path
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NatsConnectOptions:
    """Where and as whom to connect; ``url`` may list several servers, comma separated."""

    url: str
    name: str = "kubefox"
    ca_file: Path | None = None
    creds_file: Path | None = None
    inbox_prefix: str | None = None

    @property
    def servers(self) -> list[str]:
        """The server URLs, in order."""
        return [part.strip() for part in self.url.split(",") if part.strip()]

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client context that trusts only ``ca_file``, or ``None`` without TLS."""
        if self.ca_file is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_file))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    def nats_py_kwargs(self) -> dict[str, Any]:
        """The matching keyword arguments of nats-py's ``Client.connect`` (besides callbacks)."""
        kwargs: dict[str, Any] = {"servers": self.servers, "name": self.name}
        context = self.ssl_context()
        if context is not None:
            kwargs["tls"] = context
        if self.creds_file is not None:
            kwargs["user_credentials"] = str(self.creds_file)
        if self.inbox_prefix is not None:
            kwargs["inbox_prefix"] = self.inbox_prefix
        return kwargs
