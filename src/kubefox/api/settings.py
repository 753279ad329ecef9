"""Settings of the control-plane API, read once from ``KUBEFOX_API_*`` at the entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    """Everything the API server can be told; nothing else reads the environment."""

    model_config = SettingsConfigDict(
        env_prefix="KUBEFOX_API_", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    host: str = Field(default="127.0.0.1", description="Address the API server binds to.")
    port: int = Field(
        default=0, ge=0, le=65535, description="Port the API server binds to; 0 picks a free one."
    )
    tls_cert_file: Path | None = Field(
        default=None,
        description="PEM certificate chain the API presents: it then serves HTTPS only. "
        "Unset: plain HTTP, unless the embedded platform runs with security on (its CA "
        "issues the certificate). Reloaded when the file changes.",
    )
    tls_key_file: Path | None = Field(
        default=None, description="PEM private key of tls_cert_file (both or neither)."
    )
    max_artifact_size: int = Field(
        default=64 * 1024 * 1024,
        ge=1,
        description="Largest component artifact, in bytes, that may be uploaded.",
    )
    max_body_size: int = Field(
        default=8 * 1024 * 1024,
        ge=1,
        description="Largest resource document, in bytes, that may be sent.",
    )
    max_wait: float = Field(
        default=600.0,
        gt=0,
        description="Longest a request may wait for a condition (release, availability), "
        "in seconds.",
    )
    header_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a client has to send a request's line and headers (else 408).",
    )
    body_timeout: float = Field(
        default=30.0, gt=0, description="Seconds a client has to send a request's body (else 408)."
    )
    max_head_size: int = Field(
        default=64 * 1024,
        ge=1024,
        description="Largest request line plus headers accepted, in bytes (else 431).",
    )
    shutdown_grace: float = Field(
        default=5.0,
        gt=0,
        description="Seconds in-flight requests (and open watches) get once stopping has begun.",
    )

    @model_validator(mode="after")
    def _certificate_and_key(self) -> Self:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together: set both or neither")
        return self
