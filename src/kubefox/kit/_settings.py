"""What a component process is told at start: its identity, where NATS is, its limits.

The operator (or ``fox``) injects ``KUBEFOX_KIT_*`` environment variables; the
Kit reads them exactly once, in :meth:`Kit.start`, and passes the frozen
:class:`KitSettings` down. It is a plain dataclass rather than a pydantic
settings class because the SDK must stay light (no pydantic in a component
process); the validation it needs is small and lives here.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import string
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kubefox.core.codec import DEFAULT_MAX_EVENT_SIZE
from kubefox.core.errors import InvalidError
from kubefox.telemetry.settings import TelemetrySettings

#: Prefix of every environment variable the Kit reads.
ENV_PREFIX = "KUBEFOX_KIT_"
#: Prefix of the telemetry variables (``TelemetrySettings.to_environ`` writes them).
TELEMETRY_PREFIX = ENV_PREFIX + "TELEMETRY_"

_ID_ALPHABET = string.ascii_lowercase + string.digits
_ID_LENGTH = 10
_NAME_RE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_HASH_RE = re.compile(r"[a-z0-9]{1,64}")
_INSTANCE_RE = re.compile(r"[a-z0-9]{1,32}")
_LOG_FORMATS = ("json", "console")
_LOG_LEVELS = ("debug", "info", "warning", "error")
_TELEMETRY_OFF = TelemetrySettings(enabled=False)


def new_instance_id() -> str:
    """A random instance id: 10 characters of ``[a-z0-9]``, as upstream generates."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class KitSettings:
    """Identity, platform address and limits of one component instance.

    Each field is read from ``KUBEFOX_KIT_<FIELD>`` (upper case) by
    :meth:`from_environ`. Constructing it directly validates the same way.

    Attributes:
        platform: Platform name; it prefixes every NATS subject.
        app: Name of the App the component belongs to.
        name: Component name.
        hash: Component hash (the version being run).
        nats_url: NATS server URL(s), comma separated.
        instance_id: This process's id; random 10 characters of ``[a-z0-9]`` when empty.
        max_event_size: Largest encoded event sent or accepted, in bytes.
        max_in_flight: Events handled at once; when full, receiving waits (back-pressure).
        heartbeat_interval: Seconds between two refreshes of the registration record.
        platform_grace: Seconds the NATS connection may be lost before the process gives up.
        shutdown_grace: Seconds in-flight events get to finish when stopping.
        log_format: ``json`` or ``console``.
        log_level: ``debug``, ``info``, ``warning`` or ``error``.
        instances_bucket: JetStream KV bucket holding instance registrations.
        nats_ca_file: CA bundle that verifies the NATS server's TLS certificate
            (``KUBEFOX_KIT_NATS_CA_FILE``); unset: no TLS.
        nats_creds_file: This instance's NATS user credential, a ``.creds`` file
            the operator writes (``KUBEFOX_KIT_NATS_CREDS_FILE``); unset: none.
        telemetry: Sampling and where spans, logs and metrics go, from the
            ``KUBEFOX_KIT_TELEMETRY_*`` variables; off when none is set.

    Raises:
        InvalidError: if a field is out of range or not a valid name; the cause
            names every problem and the environment variable to fix.
    """

    platform: str
    app: str
    name: str
    hash: str
    nats_url: str
    instance_id: str = dataclasses.field(default_factory=new_instance_id)
    max_event_size: int = DEFAULT_MAX_EVENT_SIZE
    max_in_flight: int = 256
    heartbeat_interval: float = 3.0
    platform_grace: float = 10.0
    shutdown_grace: float = 10.0
    log_format: str = "console"
    log_level: str = "info"
    instances_bucket: str = "kubefox-instances"
    nats_ca_file: Path | None = None
    nats_creds_file: Path | None = None
    telemetry: TelemetrySettings = _TELEMETRY_OFF

    def __post_init__(self) -> None:
        problems = [p for check in _CHECKS if (p := check(self)) is not None]
        if problems:
            raise InvalidError("; ".join(problems), message="invalid kit settings")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> KitSettings:
        """Read the settings from ``KUBEFOX_KIT_*`` variables of ``environ``.

        Empty variables count as unset. ``PLATFORM``, ``APP``, ``NAME``, ``HASH``
        and ``NATS_URL`` are required.

        Args:
            environ: the process environment (or any mapping standing in for it).

        Raises:
            InvalidError: naming every missing or malformed variable.
        """
        problems: list[str] = []
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            if field.name == "telemetry":
                if any(name.startswith(TELEMETRY_PREFIX) for name in environ):
                    try:
                        values["telemetry"] = TelemetrySettings.from_environ(
                            environ, TELEMETRY_PREFIX
                        )
                    except InvalidError as exc:
                        problems.append(str(exc))
                continue
            var = ENV_PREFIX + field.name.upper()
            raw = environ.get(var, "").strip()
            if not raw:
                if field.default is dataclasses.MISSING and field.default_factory is (
                    dataclasses.MISSING
                ):
                    problems.append(f"{var} is required")
                continue
            parser = _PARSERS.get(field.name, str)
            try:
                values[field.name] = parser(raw)
            except ValueError:
                problems.append(f"{var} must be {_EXPECTED[field.name]}, got {raw!r}")
        if problems:
            raise InvalidError("; ".join(problems), message="invalid kit settings")
        return cls(**values)


_PARSERS: dict[str, Callable[[str], Any]] = {
    "max_event_size": int,
    "max_in_flight": int,
    "heartbeat_interval": float,
    "platform_grace": float,
    "shutdown_grace": float,
    "nats_ca_file": Path,
    "nats_creds_file": Path,
}
_EXPECTED = {
    "max_event_size": "an integer",
    "max_in_flight": "an integer",
    "heartbeat_interval": "a number of seconds",
    "platform_grace": "a number of seconds",
    "shutdown_grace": "a number of seconds",
}


def _env(field: str) -> str:
    return ENV_PREFIX + field.upper()


def _check_name(field: str) -> Callable[[KitSettings], str | None]:
    def check(s: KitSettings) -> str | None:
        value = getattr(s, field)
        if _NAME_RE.fullmatch(value):
            return None
        return f"{_env(field)} must be a lowercase DNS label ([a-z0-9-], at most 63), got {value!r}"

    return check


def _check_pattern(
    field: str, pattern: re.Pattern[str], expected: str
) -> Callable[[KitSettings], str | None]:
    def check(s: KitSettings) -> str | None:
        value = getattr(s, field)
        return (
            None if pattern.fullmatch(value) else f"{_env(field)} must be {expected}, got {value!r}"
        )

    return check


def _check_positive(field: str, *, minimum: float) -> Callable[[KitSettings], str | None]:
    def check(s: KitSettings) -> str | None:
        value = getattr(s, field)
        return (
            None if value >= minimum else f"{_env(field)} must be at least {minimum}, got {value}"
        )

    return check


def _check_choice(field: str, choices: tuple[str, ...]) -> Callable[[KitSettings], str | None]:
    def check(s: KitSettings) -> str | None:
        value = getattr(s, field)
        return (
            None
            if value in choices
            else f"{_env(field)} must be one of {'|'.join(choices)}, got {value!r}"
        )

    return check


def _check_nats_url(s: KitSettings) -> str | None:
    return None if s.nats_url.strip() else f"{_env('nats_url')} must not be empty"


_CHECKS: tuple[Callable[[KitSettings], str | None], ...] = (
    _check_name("platform"),
    _check_name("app"),
    _check_name("name"),
    _check_pattern("hash", _HASH_RE, "1 to 64 characters of [a-z0-9]"),
    _check_nats_url,
    _check_pattern("instance_id", _INSTANCE_RE, "1 to 32 characters of [a-z0-9]"),
    _check_positive("max_event_size", minimum=1024),
    _check_positive("max_in_flight", minimum=1),
    _check_positive("heartbeat_interval", minimum=0.01),
    _check_positive("platform_grace", minimum=0.01),
    _check_positive("shutdown_grace", minimum=0.0),
    _check_choice("log_format", _LOG_FORMATS),
    _check_choice("log_level", _LOG_LEVELS),
)
