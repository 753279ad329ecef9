"""Every structlog line also as an OpenTelemetry log record, so ``fox logs`` can find it.

:class:`OtelLogForwarder` is a structlog processor: it passes the event dict
on unchanged and emits a copy through an OpenTelemetry logger (from
:meth:`TelemetryProviders.logger`), whose exporter sends it to the
platform's receiver. Give it to ``configure_logging(forward=[...])``.

The keys kubefox binds to its loggers become the attribute names the
telemetry store indexes (``event_id`` → ``kubefox.event.id``, ``app`` →
``kubefox.app``...). The record's trace context is the active span's; without
one, ``trace_id`` and ``span_id`` keys (hex) bound to the logger stand in.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, MutableMapping
from typing import Any

from opentelemetry import _logs, trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from kubefox.telemetry import attributes as attr

#: structlog keys renamed to the attribute names the store indexes.
KEY_ATTRIBUTES: Mapping[str, str] = {
    "event_id": attr.EVENT_ID,
    "app": attr.APP,
    "component": attr.COMPONENT,
    "hash": attr.HASH,
    "virtual_environment": attr.VIRTUAL_ENVIRONMENT,
    "ve": attr.VIRTUAL_ENVIRONMENT,
    "app_deployment": attr.APP_DEPLOYMENT,
    "release_manifest": attr.RELEASE_MANIFEST,
    "route_id": attr.ROUTE_ID,
}
_SEVERITIES: Mapping[str, tuple[_logs.SeverityNumber, str]] = {
    "debug": (_logs.SeverityNumber.DEBUG, "DEBUG"),
    "info": (_logs.SeverityNumber.INFO, "INFO"),
    "warning": (_logs.SeverityNumber.WARN, "WARN"),
    "warn": (_logs.SeverityNumber.WARN, "WARN"),
    "error": (_logs.SeverityNumber.ERROR, "ERROR"),
    "exception": (_logs.SeverityNumber.ERROR, "ERROR"),
    "critical": (_logs.SeverityNumber.FATAL, "FATAL"),
}
# structlog's own bookkeeping, not worth an attribute
_SKIPPED = frozenset({"event", "level", "timestamp", "exc_info", "trace_id", "span_id", "logger"})


def _attribute(value: Any) -> Any:
    if isinstance(value, str | bool | int | float):
        return value
    return str(value)


def _context(event: Mapping[str, Any]) -> Context | None:
    """The active span's context, else one made from bound ``trace_id``/``span_id`` keys."""
    if trace.get_current_span().get_span_context().is_valid:
        return None  # emit() uses the current context
    try:
        trace_id = int(str(event.get("trace_id", "")), 16)
        span_id = int(str(event.get("span_id", "")), 16)
    except ValueError:
        return None
    parent = SpanContext(
        trace_id=trace_id,
        span_id=span_id,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    return trace.set_span_in_context(NonRecordingSpan(parent)) if parent.is_valid else None


class OtelLogForwarder:
    """A structlog processor that emits each event through ``logger`` too.

    Args:
        logger: where records go (``providers.logger("kubefox.<role>")``).
    """

    def __init__(self, logger: _logs.Logger) -> None:
        self.logger = logger

    def __call__(
        self, _logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        level = str(event_dict.get("level", method_name)).lower()
        number, text = _SEVERITIES.get(level, (_logs.SeverityNumber.INFO, "INFO"))
        attributes = {
            KEY_ATTRIBUTES.get(key, key): _attribute(value)
            for key, value in event_dict.items()
            if key not in _SKIPPED and value is not None
        }
        exc_info = event_dict.get("exc_info")
        exception = None
        if isinstance(exc_info, BaseException):
            exception = exc_info
        elif exc_info:
            exception = sys.exc_info()[1]
        self.logger.emit(
            timestamp=time.time_ns(),
            context=_context(event_dict),
            severity_number=number,
            severity_text=text,
            body=str(event_dict.get("event", "")),
            attributes=attributes,
            exception=exception,
        )
        return event_dict
