"""TelemetrySettings: validated when built, carried to child processes by the environment."""

from __future__ import annotations

import pytest
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from kubefox.core.errors import InvalidError
from kubefox.telemetry.settings import TelemetrySettings


class RoleSettings(BaseSettings):
    """How a role's pydantic settings nest the telemetry settings."""

    model_config = SettingsConfigDict(
        env_prefix="KUBEFOX_ROLE_", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    telemetry: TelemetrySettings = Field(
        default_factory=TelemetrySettings, description="Telemetry."
    )


def test_the_defaults_sample_everything_and_export_nowhere() -> None:
    """Out of the box: on, 100% sampling, no destination until the platform names one."""
    settings = TelemetrySettings()

    assert settings.enabled
    assert settings.sampling_ratio == 1.0
    assert not settings.exporting


@pytest.mark.parametrize(
    "fields",
    [
        {"sampling_ratio": 1.5},
        {"sampling_ratio": -0.1},
        {"endpoint": "collector:4318"},
        {"endpoint": "grpc://collector:4317"},
        {"embedded_endpoint": "http://127.0.0.1:4318?x=1"},
        {"metrics_interval": 0},
        {"headers": {"bad name": "x"}},
        {"headers": {"x": "line\nbreak"}},
    ],
)
def test_bad_values_are_invalid(fields: dict[str, object]) -> None:
    """Nothing malformed gets as far as an exporter."""
    with pytest.raises(InvalidError):
        TelemetrySettings(**fields)  # type: ignore[arg-type]


def test_a_round_trip_through_the_environment_keeps_every_field() -> None:
    """to_environ (operator) and from_environ (component) agree, headers included."""
    settings = TelemetrySettings(
        enabled=True,
        sampling_ratio=0.25,
        embedded_endpoint="http://127.0.0.1:4318",
        endpoint="https://collector.example:4318",
        headers={"authorization": "Bearer a=b,c", "x-team": "fox"},
        traces=True,
        metrics=False,
        logs=True,
        metrics_interval=5.0,
        export_timeout=2.5,
    )

    environ = settings.to_environ("KUBEFOX_KIT_TELEMETRY_")

    assert TelemetrySettings.from_environ(environ, "KUBEFOX_KIT_TELEMETRY_") == settings


def test_missing_variables_keep_their_defaults() -> None:
    """Only the variables present are read."""
    settings = TelemetrySettings.from_environ({"T_SAMPLING_RATIO": "0.5", "OTHER": "x"}, "T_")

    assert settings == TelemetrySettings(sampling_ratio=0.5)


@pytest.mark.parametrize(
    "environ",
    [{"T_ENABLED": "maybe"}, {"T_SAMPLING_RATIO": "lots"}, {"T_HEADERS": "novalue"}],
)
def test_an_unreadable_variable_is_invalid_and_named(environ: dict[str, str]) -> None:
    """The error names the variable, so the operator's mistake is easy to find."""
    with pytest.raises(InvalidError, match=next(iter(environ))):
        TelemetrySettings.from_environ(environ, "T_")


def test_pydantic_settings_read_it_from_nested_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """KUBEFOX_<ROLE>_TELEMETRY__<FIELD> and ..._HEADERS__<NAME> reach the dataclass."""
    monkeypatch.setenv("KUBEFOX_ROLE_TELEMETRY__SAMPLING_RATIO", "0.1")
    monkeypatch.setenv("KUBEFOX_ROLE_TELEMETRY__ENDPOINT", "http://collector:4318")
    monkeypatch.setenv("KUBEFOX_ROLE_TELEMETRY__HEADERS__X_API_KEY", "secret")

    telemetry = RoleSettings().telemetry

    assert telemetry.sampling_ratio == 0.1
    assert telemetry.endpoint == "http://collector:4318"
    assert telemetry.headers == {"x_api_key": "secret"}


def test_pydantic_settings_report_a_bad_nested_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dataclass's own check surfaces as a pydantic validation error at the entry point."""
    monkeypatch.setenv("KUBEFOX_ROLE_TELEMETRY__SAMPLING_RATIO", "2")

    with pytest.raises(ValidationError, match="sampling_ratio"):
        RoleSettings()
