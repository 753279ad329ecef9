"""The public surface of kubefox.operator is curated and pinned."""

from __future__ import annotations

from kubefox import operator


def test_operator_all_is_pinned_sorted_and_importable() -> None:
    """Changing the operator's surface is a conscious edit of this list."""
    assert operator.__all__ == [
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
    assert all(hasattr(operator, name) for name in operator.__all__)
