"""Settings of httpsrv, read once from ``KUBEFOX_HTTPSRV_*`` at the entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kubefox.security.settings import NatsClientSettings


class HttpsrvSettings(NatsClientSettings, BaseSettings):
    """Everything httpsrv (the HTTP genesis adapter) can be told; nothing else reads the env."""

    model_config = SettingsConfigDict(
        env_prefix="KUBEFOX_HTTPSRV_", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    platform: str = Field(
        default="demo",
        pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        description="Platform name; it prefixes every NATS subject and names the Platform "
        "resource the event limits are read from.",
    )
    namespace: str = Field(
        default="kubefox-demo",
        min_length=1,
        description="Namespace of the platform's resources (Platform, VirtualEnvironments, "
        "AppDeployments).",
    )
    host: str = Field(default="127.0.0.1", description="Address the HTTP server binds to.")
    port: int = Field(
        default=0, ge=0, le=65535, description="Port the HTTP server binds to; 0 picks a free one."
    )
    tls_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Port the HTTPS listener binds to (beside the plain HTTP one, as upstream's "
        "8080 and 8443); 0 picks a free one. Used only with a certificate.",
    )
    tls_cert_file: Path | None = Field(
        default=None,
        description="PEM certificate chain the HTTPS listener presents; unset: HTTP only. "
        "Reloaded when the file changes.",
    )
    tls_key_file: Path | None = Field(
        default=None, description="PEM private key of tls_cert_file (both or neither)."
    )
    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        description="NATS server URL(s), comma separated, used when no client is passed in.",
    )
    bucket: str = Field(
        default="kubefox-resources",
        min_length=1,
        description="JetStream KV bucket holding the resources.",
    )
    timeout: float | None = Field(
        default=None,
        gt=0,
        description="Seconds a request may take (the genesis event's TTL); unset uses the "
        "Platform resource's spec.events.timeoutSeconds (default 30).",
    )
    max_event_size: int | None = Field(
        default=None,
        ge=1,
        description="Largest request body and event in bytes; unset uses the Platform "
        "resource's spec.events.maxSize (default 5 MiB).",
    )
    shutdown_grace: float = Field(
        default=10.0,
        gt=0,
        description="Seconds in-flight requests get to finish once stopping has begun.",
    )
    header_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a client may take to send a request's line and headers, from the "
        "connection opening or the first byte of a request; past it the answer is 408.",
    )
    body_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds a client may take to send a request's body once its headers are "
        "in; past it the answer is 408.",
    )
    max_head_size: int = Field(
        default=64 * 1024,
        ge=1024,
        description="Largest request line plus headers in bytes; a larger head is answered 431.",
    )
    max_connections: int = Field(
        default=10_000,
        ge=1,
        description="Open connections (and requests in progress) beyond which new requests are "
        "answered 503 at once; counted per listener (HTTP and HTTPS each).",
    )

    @model_validator(mode="after")
    def _certificate_and_key(self) -> Self:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together: set both or neither")
        return self
