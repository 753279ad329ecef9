"""Structured logging set-up: configured exactly once, by the process entry point.

Every role logs through structlog with ``noun.past_participle`` event names and
snake_case keys; per-event fields (``event_id``, ``trace_id``...) are bound with
contextvars so every line of a request carries them.

A traced request's ids are bound once, with :func:`bind_request`: one context
variable holds the event id and the span, and :func:`add_request_ids` (in the
chain :func:`configure_logging` sets up) adds them to a line, in hex, only
when a line is logged. Binding them with ``structlog.contextvars`` instead
cost three context variables and two hex conversions on every sampled
request, logged or not.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from kubefox.core.events import SpanContext

__all__ = ["add_request_ids", "bind_request", "bound_span", "configure_logging", "unbind_request"]

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


_request: ContextVar[tuple[str, SpanContext] | None] = ContextVar("kubefox_request", default=None)


def bind_request(event_id: str, span: SpanContext) -> Token[tuple[str, SpanContext] | None]:
    """From now on, in this context, log lines carry ``event_id`` and ``span``'s ids.

    Call it in the request's own task; :func:`unbind_request` with the token
    undoes it where the task outlives the request.
    """
    return _request.set((event_id, span))


def unbind_request(token: Token[tuple[str, SpanContext] | None]) -> None:
    """Undo :func:`bind_request` (``token`` is what it returned)."""
    _request.reset(token)


def bound_span() -> SpanContext | None:
    """The span :func:`bind_request` bound in this context, if any."""
    request = _request.get()
    return None if request is None else request[1]


def add_request_ids(
    logger: object, method_name: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """A processor: ``event_id``, ``trace_id`` and ``span_id`` of the bound request.

    Values bound to the logger or passed in the call win, as with
    ``merge_contextvars``.
    """
    request = _request.get()
    if request is not None:
        event_id, span = request
        event_dict.setdefault("event_id", event_id)
        if "trace_id" not in event_dict:
            event_dict["trace_id"] = span.trace_id.hex()
            event_dict["span_id"] = span.span_id.hex()
    return event_dict


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
        add_request_ids,
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
