"""KitSettings: read once from KUBEFOX_KIT_* variables, validated, frozen."""

from __future__ import annotations

import dataclasses
import re

import pytest

from kubefox.core.codec import DEFAULT_MAX_EVENT_SIZE
from kubefox.kit import InvalidError, KitSettings

REQUIRED = {
    "KUBEFOX_KIT_PLATFORM": "demo",
    "KUBEFOX_KIT_APP": "hello-world",
    "KUBEFOX_KIT_NAME": "backend",
    "KUBEFOX_KIT_HASH": "0123456789abcdef0123456789abcdef",
    "KUBEFOX_KIT_NATS_URL": "nats://127.0.0.1:4222",
}


def test_required_settings_and_defaults() -> None:
    """Only identity and NATS address are required; everything else has a default."""
    settings = KitSettings.from_environ(REQUIRED)

    assert (settings.platform, settings.app, settings.name) == ("demo", "hello-world", "backend")
    assert settings.hash == REQUIRED["KUBEFOX_KIT_HASH"]
    assert settings.nats_url == "nats://127.0.0.1:4222"
    assert settings.max_event_size == DEFAULT_MAX_EVENT_SIZE
    assert settings.max_in_flight == 256
    assert settings.heartbeat_interval == 3.0
    assert settings.platform_grace == 10.0
    assert settings.shutdown_grace == 10.0
    assert settings.log_format == "console"
    assert settings.log_level == "info"


def test_empty_instance_id_gets_a_random_one() -> None:
    """Without an instance id each process gets its own: 10 characters of [a-z0-9]."""
    first = KitSettings.from_environ({**REQUIRED, "KUBEFOX_KIT_INSTANCE_ID": ""})
    second = KitSettings.from_environ(REQUIRED)

    assert re.fullmatch(r"[a-z0-9]{10}", first.instance_id)
    assert first.instance_id != second.instance_id


def test_every_setting_is_read_from_its_variable() -> None:
    """Each field comes from KUBEFOX_KIT_<FIELD>, numbers parsed."""
    environ = {
        **REQUIRED,
        "KUBEFOX_KIT_INSTANCE_ID": "abc123",
        "KUBEFOX_KIT_MAX_EVENT_SIZE": "1048576",
        "KUBEFOX_KIT_MAX_IN_FLIGHT": "8",
        "KUBEFOX_KIT_HEARTBEAT_INTERVAL": "0.5",
        "KUBEFOX_KIT_PLATFORM_GRACE": "2",
        "KUBEFOX_KIT_SHUTDOWN_GRACE": "1.5",
        "KUBEFOX_KIT_LOG_FORMAT": "json",
        "KUBEFOX_KIT_LOG_LEVEL": "debug",
        "UNRELATED": "ignored",
    }

    settings = KitSettings.from_environ(environ)

    assert settings.instance_id == "abc123"
    assert settings.max_event_size == 1048576
    assert settings.max_in_flight == 8
    assert settings.heartbeat_interval == 0.5
    assert settings.platform_grace == 2.0
    assert settings.shutdown_grace == 1.5
    assert (settings.log_format, settings.log_level) == ("json", "debug")


def test_missing_settings_are_all_named() -> None:
    """One error names every missing variable, so one fix round is enough."""
    with pytest.raises(InvalidError) as error:
        KitSettings.from_environ({"KUBEFOX_KIT_APP": "hello-world"})

    message = str(error.value)
    assert message.startswith("invalid kit settings: ")
    for var in ("PLATFORM", "NAME", "HASH", "NATS_URL"):
        assert f"KUBEFOX_KIT_{var} is required" in message
    assert "KUBEFOX_KIT_APP" not in message


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("KUBEFOX_KIT_MAX_IN_FLIGHT", "lots", "must be an integer"),
        ("KUBEFOX_KIT_MAX_IN_FLIGHT", "0", "must be at least 1"),
        ("KUBEFOX_KIT_PLATFORM_GRACE", "10s", "must be a number of seconds"),
        ("KUBEFOX_KIT_LOG_FORMAT", "xml", "must be one of json|console"),
        ("KUBEFOX_KIT_LOG_LEVEL", "trace", "must be one of"),
        ("KUBEFOX_KIT_APP", "Hello.World", "must be a lowercase DNS label"),
        ("KUBEFOX_KIT_HASH", "not a hash", "must be 1 to 64 characters"),
        ("KUBEFOX_KIT_INSTANCE_ID", "a*b", "must be 1 to 32 characters"),
    ],
)
def test_malformed_settings_are_rejected(variable: str, value: str, expected: str) -> None:
    """A malformed value is refused, naming the variable and what it must be."""
    with pytest.raises(InvalidError, match=re.escape(variable)) as error:
        KitSettings.from_environ({**REQUIRED, variable: value})

    assert expected in str(error.value)


def test_settings_are_frozen() -> None:
    """Settings are read once and passed down; nobody changes them on the way."""
    settings = KitSettings.from_environ(REQUIRED)

    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.app = "other"  # type: ignore[misc]
