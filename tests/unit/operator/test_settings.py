"""OperatorSettings: defaults, the environment prefix, and what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from kubefox.operator import OperatorSettings


def test_defaults() -> None:
    """The defaults name the demo namespace, the standard buckets and upstream-like timings."""
    settings = OperatorSettings()

    assert settings.namespace == "kubefox-demo"
    assert (settings.bucket, settings.artifacts_bucket, settings.instances_bucket) == (
        "kubefox-resources",
        "kubefox-artifacts",
        "kubefox-instances",
    )
    assert (settings.instance_ttl, settings.stop_grace) == (15.0, 10.0)
    assert (settings.restart_backoff_initial, settings.restart_backoff_max) == (0.5, 30.0)


def test_read_from_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """KUBEFOX_OPERATOR_* variables set the fields."""
    monkeypatch.setenv("KUBEFOX_OPERATOR_NAMESPACE", "team-a")
    monkeypatch.setenv("KUBEFOX_OPERATOR_WORK_DIR", "/srv/kubefox/op")
    monkeypatch.setenv("KUBEFOX_OPERATOR_INSTANCE_TTL", "3.5")

    settings = OperatorSettings()

    assert (settings.namespace, settings.work_dir, settings.instance_ttl) == (
        "team-a",
        Path("/srv/kubefox/op"),
        3.5,
    )


def test_frozen_and_closed() -> None:
    """Settings cannot be changed after construction, and unknown fields are refused."""
    settings = OperatorSettings()

    with pytest.raises(ValidationError):
        settings.namespace = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        OperatorSettings(colour="blue")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "field",
    [
        {"namespace": "Not_A_Label"},
        {"instance_ttl": 0},
        {"restart_backoff_initial": 5, "restart_backoff_max": 1},
        {"log_format": "xml"},
    ],
)
def test_bad_values_are_refused(field: dict[str, object]) -> None:
    """Names must be DNS labels, durations positive, backoff in order, formats known."""
    with pytest.raises(ValidationError):
        OperatorSettings(**field)  # type: ignore[arg-type]


def test_every_field_is_described() -> None:
    """Every setting documents itself."""
    assert all(field.description for field in OperatorSettings.model_fields.values())
