"""The operator: turns AppDeployments into running component instances and reports on them."""

from kubefox.operator.backoff import Backoff
from kubefox.operator.local import LocalScheduler
from kubefox.operator.reconcile import Operator, wait_available
from kubefox.operator.records import InstanceRecord, Registrations, parse_record, record_key
from kubefox.operator.registry import InstanceRegistry
from kubefox.operator.scheduler import (
    InstanceSpec,
    InstanceState,
    InstanceStatus,
    Scheduler,
    instance_key,
)
from kubefox.operator.settings import OperatorSettings
from kubefox.operator.status import (
    ComponentRef,
    Observation,
    desired_status,
    merge_status,
    referenced_components,
    same_status,
)

__all__ = [
    "Backoff",
    "ComponentRef",
    "InstanceRecord",
    "InstanceRegistry",
    "InstanceSpec",
    "InstanceState",
    "InstanceStatus",
    "LocalScheduler",
    "Observation",
    "Operator",
    "OperatorSettings",
    "Registrations",
    "Scheduler",
    "desired_status",
    "instance_key",
    "merge_status",
    "parse_record",
    "record_key",
    "referenced_components",
    "same_status",
    "wait_available",
]
