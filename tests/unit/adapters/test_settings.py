"""HttpsrvSettings: read once from KUBEFOX_HTTPSRV_* variables, validated, frozen."""

from __future__ import annotations

import pydantic
import pytest

from kubefox.adapters.http import HttpsrvSettings


def test_defaults_leave_the_limits_to_the_platform_resource() -> None:
    """Without configuration: demo platform, a free loopback port, limits from the Platform."""
    settings = HttpsrvSettings()

    assert (settings.platform, settings.namespace) == ("demo", "kubefox-demo")
    assert (settings.host, settings.port) == ("127.0.0.1", 0)
    assert settings.bucket == "kubefox-resources"
    assert settings.timeout is None
    assert settings.max_event_size is None
    assert settings.shutdown_grace == 10.0


def test_every_setting_is_read_from_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each field comes from KUBEFOX_HTTPSRV_<FIELD>."""
    for name, value in {
        "PLATFORM": "dev",
        "NAMESPACE": "team-a",
        "HOST": "0.0.0.0",  # noqa: S104 - a value under test, nothing binds here
        "PORT": "8080",
        "NATS_URL": "nats://nats:4222",
        "BUCKET": "res",
        "TIMEOUT": "2.5",
        "MAX_EVENT_SIZE": "1024",
        "SHUTDOWN_GRACE": "1",
    }.items():
        monkeypatch.setenv(f"KUBEFOX_HTTPSRV_{name}", value)

    settings = HttpsrvSettings()

    assert (settings.platform, settings.namespace, settings.port) == ("dev", "team-a", 8080)
    assert (settings.nats_url, settings.bucket) == ("nats://nats:4222", "res")
    assert (settings.timeout, settings.max_event_size, settings.shutdown_grace) == (2.5, 1024, 1)


@pytest.mark.parametrize(
    "fields",
    [
        {"port": 70000},
        {"timeout": 0},
        {"max_event_size": 0},
        {"platform": "Not_A_Name"},
        {"unknown": 1},
    ],
)
def test_invalid_settings_are_refused(fields: dict[str, object]) -> None:
    """Out-of-range values, bad names and unknown fields fail validation."""
    with pytest.raises(pydantic.ValidationError):
        HttpsrvSettings.model_validate(fields)


def test_settings_are_frozen_and_documented() -> None:
    """Settings cannot change after start-up, and every field says what it is."""
    settings = HttpsrvSettings()

    with pytest.raises(pydantic.ValidationError):
        settings.port = 1  # type: ignore[misc]
    assert all(field.description for field in HttpsrvSettings.model_fields.values())
