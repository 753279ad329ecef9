"""Settings of the broker process, read once from ``KUBEFOX_BROKER_*`` at the entry point.

Nothing in the broker reads the environment itself: ``fox broker`` (or the
embedded platform) builds a :class:`BrokerSettings` and passes it to
:class:`~kubefox.broker.engine.Broker`.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from kubefox.core.codec import DEFAULT_MAX_EVENT_SIZE
from kubefox.security.settings import NatsClientSettings

# A DNS label: platform names become subject tokens and namespaces store-key parts.
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"


class BrokerSettings(NatsClientSettings, BaseSettings):
    """Everything a broker can be told; immutable once built."""

    model_config = SettingsConfigDict(
        env_prefix="KUBEFOX_BROKER_", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    platform: str = Field(
        default="demo",
        pattern=_DNS_LABEL,
        description="Platform name; the broker serves the subjects kf.<platform>.brk.>.",
    )
    namespace: str = Field(
        default="kubefox-demo",
        pattern=_DNS_LABEL,
        description="Namespace of the AppDeployments and VirtualEnvironments routed with.",
    )
    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        min_length=1,
        description="NATS server URL(s), comma separated.",
    )
    bucket: str = Field(
        default="kubefox-resources",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="JetStream KV bucket holding the resources.",
    )
    max_event_size: int = Field(
        default=DEFAULT_MAX_EVENT_SIZE,
        gt=0,
        description="Largest encoded event accepted or sent, in bytes (5 MiB by default).",
    )
    max_in_flight: int = Field(
        default=1024,
        ge=1,
        description="Events handled at once; when full, the broker stops taking new ones "
        "until one finishes (back-pressure through the NATS subscription).",
    )
    shutdown_grace: float = Field(
        default=10.0,
        gt=0,
        description="Seconds in-flight events get to finish on stop before they are cancelled.",
    )
