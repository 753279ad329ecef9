"""httpsrv's NATS adapter: the only module of the HTTP adapter that imports ``nats``.

A genesis event is one NATS request to the target's ``cmp`` subject, answered
straight to our inbox. The requests travel on a :mod:`kubefox.natsio`
connection (:class:`NatsioRequester`: replies are handled inside the socket
read, with no task per message), while the resource store and the recordings
stay on a nats-py connection, which speaks JetStream. The libraries' errors
become ours here, so nothing above this module catches a library exception:
"no responders" (nobody subscribes, so no instance of the target runs) is
:class:`UnavailableError` at once, no reply in time is
:class:`DeadlineExceededError`, a payload larger than the server accepts is
:class:`ContentTooLargeError`, a lost connection is :class:`BrokerUnavailableError`.
"""

from __future__ import annotations

import asyncio

import nats.errors
import structlog
from nats.aio.client import Client

from kubefox import natsio
from kubefox.core.errors import (
    BrokerUnavailableError,
    ContentTooLargeError,
    DeadlineExceededError,
    UnavailableError,
)
from kubefox.core.nats_options import NatsConnectOptions
from kubefox.store.nats_client import as_options, report_refusal

#: The nats-py client type, for modules that may not import ``nats`` themselves.
NatsClient = Client

_RECONNECT_WAIT = 0.5
_CONNECT_TIMEOUT = 2


log = structlog.get_logger(__name__)


async def connect(
    url: str | NatsConnectOptions,
    *,
    name: str = "kubefox-httpsrv",
    timeout: float = 5.0,  # noqa: ASYNC109 - a connect deadline, not an API-wide timeout
) -> Client:
    """A client connected to ``url`` (comma-separated for several) that reconnects forever.

    Raises:
        UnavailableError: no server answered within ``timeout`` seconds.
    """
    client = Client()
    options = as_options(url, name=name)
    try:
        # nats-py retries a failed first connect like a reconnect, which is
        # forever here, so the deadline has to come from outside.
        async with asyncio.timeout(timeout):
            await client.connect(
                **options.nats_py_kwargs(),
                connect_timeout=_CONNECT_TIMEOUT,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                # nats-py annotates these seconds as int but waits any float.
                reconnect_time_wait=_RECONNECT_WAIT,  # type: ignore[arg-type]
                error_cb=_on_error,
            )
    except (TimeoutError, OSError, nats.errors.Error) as exc:
        await client.close()
        raise UnavailableError(
            f"cannot reach NATS at {options.url} within {timeout:g}s: {type(exc).__name__}: {exc}"
        ) from exc
    return client


async def close(client: Client) -> None:
    """Close ``client``, flushing what is pending; never raises a nats error."""
    try:
        await client.close()
    except (OSError, nats.errors.Error):
        # The socket may already be gone; the client is closed regardless.
        return


class NatsRequester:
    """Sends one event and waits for its reply over a nats-py client the caller owns."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @property
    def connected(self) -> bool:
        """Whether the connection is up right now."""
        return bool(self._client.is_connected)

    async def request(
        self,
        subject: str,
        data: bytes,
        *,
        timeout: float,  # noqa: ASYNC109 - nats-py's request owns the wait and its reply inbox
    ) -> bytes:
        """Send ``data`` to ``subject`` and return the reply's data.

        Raises:
            UnavailableError: nothing subscribes to ``subject``.
            DeadlineExceededError: no reply within ``timeout`` seconds.
            ContentTooLargeError: ``data`` is larger than the server accepts.
            BrokerUnavailableError: the connection failed.
        """
        try:
            msg = await self._client.request(subject, data, timeout=timeout)
        except nats.errors.NoRespondersError as exc:
            raise UnavailableError("nothing subscribes to the target's subject") from exc
        except TimeoutError as exc:  # nats.errors.TimeoutError included
            raise DeadlineExceededError(f"no reply within {timeout:.3g}s") from exc
        except nats.errors.MaxPayloadError as exc:
            raise ContentTooLargeError("the event is larger than NATS accepts") from exc
        except (nats.errors.Error, OSError) as exc:
            raise BrokerUnavailableError(f"request failed: {type(exc).__name__}: {exc}") from exc
        return msg.data


async def connect_requests(
    options: NatsConnectOptions,
    *,
    timeout: float = 5.0,  # noqa: ASYNC109 - a connect deadline, not an API-wide timeout
) -> natsio.Client:
    """A natsio connection for the genesis requests; it reconnects forever.

    Raises:
        UnavailableError: no server accepted within ``timeout`` seconds.
    """
    client = natsio.Client(
        options, connect_timeout=timeout, reconnect_wait=_RECONNECT_WAIT, on_error=_on_natsio_error
    )
    try:
        await client.connect()
    except (natsio.NatsIOError, OSError, TimeoutError) as exc:
        await client.close()
        raise UnavailableError(
            f"cannot reach NATS at {options.url} within {timeout:g}s: {type(exc).__name__}: {exc}"
        ) from exc
    return client


class NatsioRequester:
    """Sends one event and waits for its reply over a natsio client the caller owns."""

    def __init__(self, client: natsio.Client) -> None:
        self._client = client

    @property
    def connected(self) -> bool:
        """Whether the connection is up right now."""
        return self._client.is_connected

    async def request(
        self,
        subject: str,
        data: bytes,
        *,
        timeout: float,  # noqa: ASYNC109 - natsio's request owns the wait and its reply inbox
    ) -> bytes:
        """Send ``data`` to ``subject`` and return the reply's data.

        Raises:
            UnavailableError: nothing subscribes to ``subject``.
            DeadlineExceededError: no reply within ``timeout`` seconds.
            ContentTooLargeError: ``data`` is larger than the server accepts.
            BrokerUnavailableError: the connection failed.
        """
        try:
            msg = await self._client.request(subject, data, timeout=timeout)
        except natsio.NoRespondersError as exc:
            raise UnavailableError("nothing subscribes to the target's subject") from exc
        except natsio.RequestTimeoutError as exc:
            raise DeadlineExceededError(f"no reply within {timeout:.3g}s") from exc
        except natsio.MaxPayloadError as exc:
            raise ContentTooLargeError("the event is larger than NATS accepts") from exc
        except (natsio.NatsIOError, OSError) as exc:
            raise BrokerUnavailableError(f"request failed: {type(exc).__name__}: {exc}") from exc
        return bytes(msg.data)


def _on_natsio_error(exc: Exception) -> None:
    if report_refusal("httpsrv", exc):
        return
    if not isinstance(exc, OSError | natsio.ConnectionClosedError):
        log.warning("httpsrv.nats_error", error=repr(exc))


async def _on_error(exc: Exception) -> None:
    if report_refusal("httpsrv", exc):
        return
    # Without a callback nats-py prints each failed reconnect with a traceback;
    # a refused or dropped connection is expected while the server restarts.
    if not isinstance(exc, OSError | nats.errors.StaleConnectionError | nats.errors.UnexpectedEOF):
        log.warning("httpsrv.nats_error", error=repr(exc))
