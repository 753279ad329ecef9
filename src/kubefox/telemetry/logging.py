"""Structured logging set-up: configured exactly once, by the process entry point.

Every role logs through structlog with ``noun.past_participle`` event names and
snake_case keys; per-event fields (``event_id``, ``trace_id``...) are bound with
contextvars so every line of a request carries them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import structlog

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure_logging(
    *,
    log_format: str = "console",
    level: str = "info",
    forward: Sequence[structlog.types.Processor] = (),
) -> None:
    """Configure structlog for this process: JSON for machines, console for people.

    ``forward`` processors see every line before it is rendered (an
    ``OtelLogForwarder`` sends each to the telemetry store).
    """
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        *forward,
    ]
    if log_format == "json":
        # the console renderer formats exceptions itself and warns if this runs first
        processors.append(structlog.processors.dict_tracebacks)
    processors.append(renderer)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
