"""Settings of the operator, read once from ``KUBEFOX_OPERATOR_*`` at the entry point.

The operator turns AppDeployments into running component instances, so its
settings are about where things live (NATS, buckets, the work directory) and
how patiently it supervises (registration TTL, restart backoff, stop grace).
Tests shrink the durations to keep each scenario to a few seconds.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_BUCKET = r"^[A-Za-z0-9_-]+$"


class OperatorSettings(BaseSettings):
    """Everything the operator can be told; nothing else in it reads the environment."""

    model_config = SettingsConfigDict(
        env_prefix="KUBEFOX_OPERATOR_", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    platform: str = Field(
        default="demo",
        pattern=_DNS_LABEL,
        description="Platform name; it prefixes NATS subjects and registration keys.",
    )
    namespace: str = Field(
        default="kubefox-demo",
        pattern=_DNS_LABEL,
        description="Namespace whose AppDeployments this operator runs.",
    )
    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        min_length=1,
        description="NATS server URL(s), comma separated; also handed to every component.",
    )
    bucket: str = Field(
        default="kubefox-resources",
        pattern=_BUCKET,
        description="JetStream KV bucket holding the resources.",
    )
    artifacts_bucket: str = Field(
        default="kubefox-artifacts",
        pattern=_BUCKET,
        description="JetStream object store bucket holding the component artifacts.",
    )
    instances_bucket: str = Field(
        default="kubefox-instances",
        pattern=_BUCKET,
        description="JetStream KV bucket where running instances register themselves.",
    )
    work_dir: Path = Field(
        default=Path(".kubefox/operator"),
        description="Directory where artifacts are extracted (components/) and logs written "
        "(logs/).",
    )
    instance_ttl: float = Field(
        default=15.0,
        gt=0,
        description="Seconds a registration stays live without a refresh; also the max age "
        "of the instances bucket when the operator creates it.",
    )
    restart_backoff_initial: float = Field(
        default=0.5, gt=0, description="Seconds before the first restart of a crashed instance."
    )
    restart_backoff_max: float = Field(
        default=30.0, gt=0, description="Longest wait between two restarts of a crashed instance."
    )
    restart_backoff_reset: float = Field(
        default=10.0,
        gt=0,
        description="Seconds an instance must run before its restart backoff starts over.",
    )
    failed_after_restarts: int = Field(
        default=3,
        ge=1,
        description="Quick restarts in a row, with no registered instance, after which a "
        "deployment reports ComponentDeploymentFailed.",
    )
    stop_grace: float = Field(
        default=10.0,
        ge=0,
        description="Seconds an instance gets to exit after SIGTERM before it is killed.",
    )
    reconcile_debounce: float = Field(
        default=0.05,
        ge=0,
        description="Seconds to gather a burst of changes into one reconcile pass.",
    )
    resync_interval: float = Field(
        default=10.0,
        gt=0,
        description="Seconds between reconcile passes when nothing changes (picks up "
        "artifacts that appeared late).",
    )
    log_format: str = Field(
        default="console",
        pattern="^(json|console)$",
        description="Log format of the operator and of the components it starts: json or console.",
    )
    log_level: str = Field(
        default="info",
        pattern="^(debug|info|warning|error)$",
        description="Lowest log level written, by the operator and its components.",
    )

    @model_validator(mode="after")
    def _backoff_in_order(self) -> OperatorSettings:
        if self.restart_backoff_initial > self.restart_backoff_max:
            raise ValueError("restart_backoff_initial must not exceed restart_backoff_max")
        return self
