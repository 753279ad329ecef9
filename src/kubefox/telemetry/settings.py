"""What a process is told about telemetry: sampling, and where to export.

:class:`TelemetrySettings` is a plain frozen dataclass, not a pydantic model,
so the Kit (which must not import pydantic) can use it too. Platform roles
nest it in their pydantic settings (``telemetry: TelemetrySettings``), where
pydantic validates it field by field from ``KUBEFOX_<PROCESS>_TELEMETRY__<FIELD>``
variables (headers as ``..._TELEMETRY__HEADERS__<NAME>``); a component
process reads it with :meth:`TelemetrySettings.from_environ` from the
variables the operator wrote with :meth:`TelemetrySettings.to_environ`.

Two destinations, either or both: the platform's embedded receiver
(``embedded_endpoint``, traces and logs into the telemetry store) and an
external OTLP/HTTP collector (``endpoint``, with ``headers``; traces, logs
and metrics). Both are base URLs: ``/v1/traces``, ``/v1/logs`` and
``/v1/metrics`` are appended.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Self
from urllib.parse import quote, unquote, urlsplit

from kubefox.core.errors import InvalidError

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def _check_endpoint(name: str, url: str) -> None:
    if not url:
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise InvalidError(
            f"{name} must be an http(s) base URL such as http://collector:4318", url=url
        )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TelemetrySettings:
    """Telemetry of one process.

    Attributes:
        enabled: Off: no spans, metrics or log records are made at all.
        sampling_ratio: Share of new traces recorded, 0 to 1; a sampled parent,
            or ``kf-sample=true`` on the request, records a trace whatever the ratio.
        embedded_endpoint: OTLP/HTTP base URL of the platform's receiver; empty: none.
        endpoint: OTLP/HTTP base URL of an external collector; empty: none.
        headers: Headers sent to the external collector (an API key, say).
        traces: Export spans.
        metrics: Export metrics (to the external collector only).
        logs: Export log records.
        metrics_interval: Seconds between two metric exports.
        export_timeout: Seconds one export may take before it is given up.
    """

    enabled: bool = True
    sampling_ratio: float = 1.0
    embedded_endpoint: str = ""
    endpoint: str = ""
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    traces: bool = True
    metrics: bool = True
    logs: bool = True
    metrics_interval: float = 60.0
    export_timeout: float = 10.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.sampling_ratio <= 1.0:
            raise InvalidError("sampling_ratio must be between 0 and 1", value=self.sampling_ratio)
        if self.metrics_interval <= 0 or self.export_timeout <= 0:
            raise InvalidError("metrics_interval and export_timeout must be positive")
        _check_endpoint("embedded_endpoint", self.embedded_endpoint)
        _check_endpoint("endpoint", self.endpoint)
        for name, value in self.headers.items():
            if not name or any(c in name for c in ":\r\n ") or any(c in value for c in "\r\n"):
                raise InvalidError("a header name or value is malformed", header=name)

    @property
    def exporting(self) -> bool:
        """Whether anything is sent anywhere."""
        return self.enabled and bool(self.embedded_endpoint or self.endpoint)

    def to_environ(self, prefix: str) -> dict[str, str]:
        """These settings as environment variables for a child process (see :meth:`from_environ`).

        Headers are written in ``OTEL_EXPORTER_OTLP_HEADERS`` form
        (``name=value,...``, percent-encoded).
        """
        return {
            f"{prefix}ENABLED": str(self.enabled).lower(),
            f"{prefix}SAMPLING_RATIO": repr(self.sampling_ratio),
            f"{prefix}EMBEDDED_ENDPOINT": self.embedded_endpoint,
            f"{prefix}ENDPOINT": self.endpoint,
            f"{prefix}HEADERS": ",".join(
                f"{quote(name, safe='')}={quote(value, safe='')}"
                for name, value in self.headers.items()
            ),
            f"{prefix}TRACES": str(self.traces).lower(),
            f"{prefix}METRICS": str(self.metrics).lower(),
            f"{prefix}LOGS": str(self.logs).lower(),
            f"{prefix}METRICS_INTERVAL": repr(self.metrics_interval),
            f"{prefix}EXPORT_TIMEOUT": repr(self.export_timeout),
        }

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], prefix: str) -> Self:
        """Read the variables ``prefix + FIELD`` (missing ones keep their default).

        Raises:
            InvalidError: a value cannot be read, naming the variable.
        """
        values: dict[str, object] = {}
        for field in dataclasses.fields(cls):
            name = f"{prefix}{field.name.upper()}"
            if name not in environ:
                continue
            raw = environ[name].strip()
            try:
                values[field.name] = _parse(field.name, raw)
            except ValueError as exc:
                raise InvalidError(f"cannot read {name}", value=raw, reason=str(exc)) from exc
        return cls(**values)  # type: ignore[arg-type]  # each value was parsed for its field


def _parse(field: str, raw: str) -> object:
    if field in ("enabled", "traces", "metrics", "logs"):
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise ValueError("expected true or false")
    if field in ("sampling_ratio", "metrics_interval", "export_timeout"):
        return float(raw)
    if field == "headers":
        headers: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in raw.split(","))):
            name, sep, value = item.partition("=")
            if not sep or not name.strip():
                raise ValueError("expected name=value pairs separated by commas")
            headers[unquote(name.strip())] = unquote(value.strip())
        return headers
    return raw
