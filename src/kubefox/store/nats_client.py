"""The one way the store's NATS adapters open a connection of their own.

The resource store, the artifact store and the instance registry can each be
opened over a connection the caller owns, or connect themselves; the second
case is the same everywhere: reconnect forever, a connect deadline imposed
from outside (nats-py retries a failed first connect like a reconnect, which is
forever here), quiet logging of the reconnect noise, and library errors turned
into ``UnavailableError``.

Every platform role connects through a :class:`~kubefox.core.nats_options.NatsConnectOptions`
(TLS trust, user credential, inbox prefix). A permissions violation nats-server
reports on a role's connection is logged here (``nats.permission_refused``,
with the role and the server's reason) and passed to every listener added with
:func:`on_permission_refused`; the embedded platform counts them in a metric.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import nats.errors
import structlog
from nats.aio.client import Client

from kubefox.core.errors import UnavailableError
from kubefox.core.nats_options import NatsConnectOptions

log = structlog.get_logger(__name__)

#: A listener of refusals: ``(role, reason)``.
RefusalListener = Callable[[str, str], None]

_PERMISSIONS_VIOLATION = "permissions violation"
_refusal_listeners: list[RefusalListener] = []


def as_options(target: str | NatsConnectOptions, *, name: str) -> NatsConnectOptions:
    """``target`` itself, or plain options for a URL (no TLS, no credential) named ``name``."""
    if isinstance(target, NatsConnectOptions):
        return target
    return NatsConnectOptions(url=target, name=name)


def on_permission_refused(listener: RefusalListener) -> Callable[[], None]:
    """Call ``listener(role, reason)`` for every refusal; returns what removes it again."""
    _refusal_listeners.append(listener)

    def remove() -> None:
        with contextlib.suppress(ValueError):
            _refusal_listeners.remove(listener)

    return remove


def report_refusal(role: str, error: BaseException | str) -> bool:
    """Log and count ``error`` if it is nats-server's permissions violation; say whether it was."""
    reason = str(error)
    if _PERMISSIONS_VIOLATION not in reason.lower():
        return False
    log.warning("nats.permission_refused", role=role, reason=reason)
    for listener in _refusal_listeners:
        listener(role, reason)
    return True


async def connect_client(
    target: str | NatsConnectOptions,
    *,
    name: str = "kubefox",
    connect_timeout: float = 2.0,
    reconnect_time_wait: float = 0.5,
    log_prefix: str = "store",
) -> Client:
    """A client connected as ``target`` says (a URL: no TLS, no credential) that reconnects forever.

    ``name`` names the connection when ``target`` is a URL.

    Raises:
        UnavailableError: no server answered within ``connect_timeout`` seconds,
            or it refused the TLS handshake or the credential.
    """
    options = as_options(target, name=name)
    client = Client()
    try:
        async with asyncio.timeout(connect_timeout):
            await client.connect(
                **options.nats_py_kwargs(),
                # nats-py annotates these seconds as int but waits any float.
                connect_timeout=connect_timeout,  # type: ignore[arg-type]
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=reconnect_time_wait,  # type: ignore[arg-type]
                error_cb=_errors_logged_as(f"{log_prefix}.nats_error", role=log_prefix),
                disconnected_cb=_logged(f"{log_prefix}.nats_disconnected"),
                reconnected_cb=_logged(f"{log_prefix}.nats_reconnected"),
            )
    except (TimeoutError, OSError, nats.errors.Error) as exc:
        with contextlib.suppress(nats.errors.Error, OSError):
            await client.close()
        raise UnavailableError(
            f"cannot reach nats: {type(exc).__name__}: {exc}", url=options.url
        ) from exc
    return client


def _errors_logged_as(event: str, *, role: str) -> Callable[[Exception], Awaitable[None]]:
    async def on_error(exc: Exception) -> None:
        # Failed connection attempts are reported once each by nats-py's reconnect
        # loop; the disconnect and reconnect callbacks say what matters about them.
        if report_refusal(role, exc):
            return
        if not isinstance(exc, OSError | nats.errors.StaleConnectionError):
            log.warning(event, error=repr(exc))

    return on_error


def _logged(event: str) -> Callable[[], Awaitable[None]]:
    async def on_change() -> None:
        log.info(event)

    return on_change
