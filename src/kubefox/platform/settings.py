"""Settings of the embedded platform, read once from ``KUBEFOX_PLATFORM_*`` at the entry point."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from kubefox.security.settings import SecretsSettings


class PlatformSettings(BaseSettings):
    """Everything ``fox up`` can be told; nothing else reads the environment."""

    model_config = SettingsConfigDict(
        env_prefix="KUBEFOX_PLATFORM_", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    name: str = Field(
        default="demo",
        pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        description="Platform name; it prefixes every NATS subject.",
    )
    state_dir: Path = Field(
        default=Path(".kubefox"),
        description="Directory holding the JetStream data, logs and the chosen ports.",
    )
    namespace: str = Field(
        default="kubefox-demo",
        pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        description="Namespace of the platform's resources (upstream: one Platform per namespace).",
    )
    http_host: str = Field(default="127.0.0.1", description="Address httpsrv binds to.")
    http_port: int = Field(
        default=0, ge=0, le=65535, description="Port httpsrv binds to; 0 picks a free one."
    )
    https_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Port httpsrv serves HTTPS on (security on); 0 picks a free one.",
    )
    brokers: int = Field(
        default=1, ge=1, le=16, description="Brokers to run; they share the load as a queue group."
    )
    nats_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Loopback port for nats-server; 0 picks a free one.",
    )
    nats_threads: int = Field(
        default=0,
        ge=0,
        le=1024,
        description="Go threads nats-server runs on (its GOMAXPROCS); 0: the environment's "
        "GOMAXPROCS if set, else half the CPUs, at least one.",
    )
    bucket: str = Field(
        default="kubefox-resources", description="JetStream KV bucket holding the resources."
    )
    artifacts_bucket: str = Field(
        default="kubefox-artifacts", description="JetStream object store holding component files."
    )
    instances_bucket: str = Field(
        default="kubefox-instances", description="JetStream KV bucket of instance registrations."
    )
    instance_ttl: float = Field(
        default=15.0, gt=0, description="Seconds a registration lives without a heartbeat."
    )
    shutdown_grace: float = Field(
        default=10.0, gt=0, description="Seconds each part may take to drain on stop."
    )
    log_format: str = Field(
        default="console", pattern="^(json|console)$", description="Log format: json or console."
    )
    log_level: str = Field(
        default="info",
        pattern="^(debug|info|warning|error)$",
        description="Lowest log level written.",
    )
    security: bool = Field(
        default=True,
        description="Run nats-server with TLS (a certificate from the platform's CA) and in "
        "operator mode (a credential per platform role and per component instance). Off "
        "only for comparison benchmarks and debugging: anything that reaches NATS may then "
        "publish anywhere.",
    )
    secrets: SecretsSettings | None = Field(
        default=None,
        description="Secrets backend and certificate authority (KUBEFOX_PLATFORM_SECRETS__URL, "
        "__TOKEN, ...): embedded:///<dir> or openbao://host:port; unset: embedded in "
        "<state_dir>/security. Opened also with security off.",
    )
    tenant: str = Field(
        default="default",
        pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        description="Tenant owning this platform: its NATS account holds the platform roles "
        "and state, and each of its apps has an account of its own; other tenants' accounts "
        "cannot see them.",
    )
    credential_ttl: float = Field(
        default=24 * 3600.0,
        ge=10.0,
        description="Seconds a component instance's NATS credential is valid; after two thirds "
        "of it the operator replaces the instance's process with one holding a fresh credential, "
        "started before the old one stops.",
    )
    telemetry: bool = Field(
        default=True,
        description="Record traces, logs and metrics into the telemetry store (fox trace, "
        "fox logs, /metrics); off: nothing is recorded.",
    )
    telemetry_sampling_ratio: float = Field(
        # Off by default, as upstream: tracing every request costs most of the
        # throughput (docs/benchmarks.md); kf-sample=true traces the ones you ask for.
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Share of requests traced (kf-sample=true and a sampled traceparent are "
        "always traced); the Platform resource's spec.telemetry.traces.export=false turns "
        "tracing off.",
    )
    telemetry_store: str = Field(
        default="",
        description="Telemetry store URL (sqlite:///path or postgresql://...); empty: "
        "telemetry.db in the state directory.",
    )
    telemetry_endpoint: str = Field(
        default="",
        description="OTLP/HTTP base URL of an external collector to export to as well.",
    )
