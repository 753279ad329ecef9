"""The operator: turns AppDeployments into running component instances and reports on them."""

from kubefox.operator.backoff import Backoff
from kubefox.operator.local import LocalScheduler
from kubefox.operator.reconcile import Operator, wait_available
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
    "InstanceSpec",
    "InstanceState",
    "InstanceStatus",
    "LocalScheduler",
    "Observation",
    "Operator",
    "OperatorSettings",
    "Scheduler",
    "desired_status",
    "instance_key",
    "merge_status",
    "referenced_components",
    "same_status",
    "wait_available",
]
