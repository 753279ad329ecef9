"""Telemetry: the telemetry store and its records, telemetry settings, logging set-up.

Importing this package is cheap, because component processes import it for
their logging. The stores load when opened (``open_telemetry_store``, or
``kubefox.telemetry.sqlite`` and ``kubefox.telemetry.postgres``); the OTLP
receiver (``receiver``, served by ``server``), the SDK providers
(``providers``), the log forwarder (``log_export``) and the renderers for
``fox trace``/``fox logs`` (``render``) are imported from their modules and
need the ``otel``, ``postgres`` and ``cli`` extras.
"""

from kubefox.telemetry._open import default_store_url, open_telemetry_store
from kubefox.telemetry.protocol import Retention, TelemetryStore
from kubefox.telemetry.records import (
    LogRecord,
    SpanEvent,
    SpanKind,
    SpanRecord,
    StatusCode,
    Trace,
)
from kubefox.telemetry.settings import TelemetrySettings

__all__ = [
    "LogRecord",
    "Retention",
    "SpanEvent",
    "SpanKind",
    "SpanRecord",
    "StatusCode",
    "TelemetrySettings",
    "TelemetryStore",
    "Trace",
    "default_store_url",
    "open_telemetry_store",
]
