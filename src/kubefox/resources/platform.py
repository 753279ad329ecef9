"""The ``Platform`` resource: one running kubefox platform and its settings.

Every field and default is upstream's CRD. Pod and container specs are
Kubernetes objects that kubefox only passes through to the scheduler, so they
are kept as free-form mappings rather than re-modelled here.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

from kubefox.resources.conditions import Condition
from kubefox.resources.meta import API_VERSION, Details, KubeFoxModel, ObjectMeta

DEFAULT_EVENT_TIMEOUT_SECONDS = 30
DEFAULT_EVENT_MAX_SIZE = 5 * 1024 * 1024

_QUANTITY = re.compile(r"^(\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_UNITS: dict[str | None, int] = {
    None: 1,
    **{unit: 1000 ** (i + 1) for i, unit in enumerate(("k", "M", "G", "T"))},
    **{unit: 1024 ** (i + 1) for i, unit in enumerate(("Ki", "Mi", "Gi", "Ti"))},
}


def _quantity_to_bytes(value: Any) -> Any:
    # Kubernetes writes sizes as quantities ("5Mi"); kubefox works in bytes.
    if not isinstance(value, str):
        return value
    match = _QUANTITY.match(value.strip())
    if match is None:
        raise PydanticCustomError(
            "quantity", '"{value}" is not a byte size such as 5242880 or 5Mi', {"value": value}
        )
    return int(match[1]) * _UNITS[match[2]]


#: A size in bytes, given as an integer or a Kubernetes quantity.
ByteSize = Annotated[int, BeforeValidator(_quantity_to_bytes), Field(ge=1)]
Port = Annotated[int, Field(ge=1, le=65535)]
FreeForm = dict[str, Any]


class ServiceType(enum.StrEnum):
    """How the HTTP server's Service is exposed."""

    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"
    LOAD_BALANCER = "LoadBalancer"


class LogLevel(enum.StrEnum):
    """Log level passed to every platform process and component."""

    DEBUG = "debug"
    INFO = "info"
    WARN = "warn"
    ERROR = "error"


class LogFormat(enum.StrEnum):
    """Log line format passed to every platform process and component."""

    JSON = "json"
    CONSOLE = "console"


class ImagePullPolicy(enum.StrEnum):
    """Kubernetes image pull policy for platform images."""

    ALWAYS = "Always"
    NEVER = "Never"
    IF_NOT_PRESENT = "IfNotPresent"


class EventsSpec(KubeFoxModel):
    """Limits of every event (time to live and size), and the built-in test events.

    ``builtin`` switches on, for every virtual environment, the events httpsrv
    answers itself (``io.kubefox.health``, ``io.kubefox.echo``,
    ``io.kubefox.routes``); one virtual
    environment can switch them on alone with the annotation
    ``kubefox.xigxog.io/builtin-events: "true"``. Not an upstream field.
    """

    timeout_seconds: int = Field(default=DEFAULT_EVENT_TIMEOUT_SECONDS, ge=3)
    max_size: ByteSize = DEFAULT_EVENT_MAX_SIZE
    builtin: bool = False


class PodSettings(KubeFoxModel):
    """Scheduling and resources of one platform process (free-form Kubernetes specs)."""

    pod_spec: FreeForm | None = None
    container_spec: FreeForm | None = None


class ServicePorts(KubeFoxModel):
    """Ports the HTTP server's Service listens on."""

    http: Port = 80
    https: Port = 443


class ServiceSpec(KubeFoxModel):
    """The HTTP server's Service."""

    type: ServiceType = ServiceType.CLUSTER_IP
    ports: ServicePorts = Field(default_factory=ServicePorts)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class HTTPSrvSpec(PodSettings):
    """The HTTP server (genesis adapter): pod settings plus its Service."""

    service: ServiceSpec = Field(default_factory=ServiceSpec)


class CollectorSpec(KubeFoxModel):
    """Where telemetry is sent (an OTLP collector)."""

    enabled: bool = False
    address: str = ""


class LogsSpec(KubeFoxModel):
    """Logging of platform processes and components."""

    level: LogLevel = LogLevel.INFO
    format: LogFormat = LogFormat.JSON


class MetricsSpec(KubeFoxModel):
    """Metrics export."""

    export: bool = True
    verbose: bool = False
    collection_interval_seconds: int = Field(default=60, ge=3)


class TracesSpec(KubeFoxModel):
    """Trace export."""

    export: bool = True
    verbose: bool = False


class TelemetrySpec(KubeFoxModel):
    """Telemetry settings of the whole platform."""

    collector: CollectorSpec = Field(default_factory=CollectorSpec)
    logs: LogsSpec = Field(default_factory=LogsSpec)
    metrics: MetricsSpec = Field(default_factory=MetricsSpec)
    traces: TracesSpec = Field(default_factory=TracesSpec)


class DebugSpec(KubeFoxModel):
    """Debug mode: lets a developer's broker join the platform."""

    enabled: bool = False
    broker_addr: str | None = None


class PlatformSpec(KubeFoxModel):
    """Settings of a platform; every field is optional and defaulted."""

    events: EventsSpec = Field(default_factory=EventsSpec)
    broker: PodSettings = Field(default_factory=PodSettings)
    httpsrv: HTTPSrvSpec = Field(default_factory=HTTPSrvSpec)
    nats: PodSettings = Field(default_factory=PodSettings)
    telemetry: TelemetrySpec = Field(default_factory=TelemetrySpec)
    image_pull_policy: ImagePullPolicy = ImagePullPolicy.IF_NOT_PRESENT
    debug: DebugSpec = Field(default_factory=DebugSpec)


class PlatformComponent(KubeFoxModel):
    """A running platform process (broker, httpsrv ...) the broker may trust."""

    ready: bool = False
    name: str
    hash: str = ""
    type: str = ""
    pod_name: str = ""
    pod_ip: str = Field(default="", alias="podIP")
    node_name: str = ""
    node_ip: str = Field(default="", alias="nodeIP")


class PlatformStatus(KubeFoxModel):
    """What the operator observed about a platform."""

    components: list[PlatformComponent] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)


class Platform(KubeFoxModel):
    """One kubefox platform (at most one per namespace)."""

    api_version: Literal["kubefox.xigxog.io/v1alpha1"] = API_VERSION
    kind: Literal["Platform"] = "Platform"
    metadata: ObjectMeta
    spec: PlatformSpec = Field(default_factory=PlatformSpec)
    details: Details | None = None
    status: PlatformStatus | None = None
