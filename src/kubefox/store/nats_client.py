"""The one way the store's NATS adapters open a connection of their own.

The resource store, the artifact store and the instance registry can each be
opened over a connection the caller owns, or connect themselves; the second
case is the same everywhere: reconnect forever, a connect deadline imposed
from outside (nats-py retries a failed first connect like a reconnect, which is
forever here), quiet logging of the reconnect noise, and library errors turned
into ``UnavailableError``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import nats.errors
import structlog
from nats.aio.client import Client

from kubefox.core.errors import UnavailableError

log = structlog.get_logger(__name__)


async def connect_client(
    url: str,
    *,
    name: str,
    connect_timeout: float = 2.0,
    reconnect_time_wait: float = 0.5,
    log_prefix: str = "store",
) -> Client:
    """A client connected to ``url`` (comma-separated for several servers) that reconnects forever.

    Raises:
        UnavailableError: no server answered within ``connect_timeout`` seconds.
    """
    client = Client()
    servers = [part.strip() for part in url.split(",") if part.strip()]
    try:
        async with asyncio.timeout(connect_timeout):
            await client.connect(
                servers=servers,
                name=name,
                # nats-py annotates these seconds as int but waits any float.
                connect_timeout=connect_timeout,  # type: ignore[arg-type]
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=reconnect_time_wait,  # type: ignore[arg-type]
                error_cb=_errors_logged_as(f"{log_prefix}.nats_error"),
                disconnected_cb=_logged(f"{log_prefix}.nats_disconnected"),
                reconnected_cb=_logged(f"{log_prefix}.nats_reconnected"),
            )
    except (TimeoutError, OSError, nats.errors.Error) as exc:
        with contextlib.suppress(nats.errors.Error, OSError):
            await client.close()
        raise UnavailableError("cannot reach nats", url=url) from exc
    return client


def _errors_logged_as(event: str) -> Callable[[Exception], Awaitable[None]]:
    async def on_error(exc: Exception) -> None:
        # Failed connection attempts are reported once each by nats-py's reconnect
        # loop; the disconnect and reconnect callbacks say what matters about them.
        if not isinstance(exc, OSError | nats.errors.StaleConnectionError):
            log.warning(event, error=repr(exc))

    return on_error


def _logged(event: str) -> Callable[[], Awaitable[None]]:
    async def on_change() -> None:
        log.info(event)

    return on_change
