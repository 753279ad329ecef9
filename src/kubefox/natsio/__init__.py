"""A small asyncio NATS core client for the platform's hot path (see :mod:`.client`)."""

from kubefox.natsio.client import Client, connect
from kubefox.natsio.errors import (
    AuthorizationError,
    ConnectError,
    ConnectionClosedError,
    MaxPayloadError,
    NatsIOError,
    NoRespondersError,
    OutboundBufferFullError,
    PermissionsViolationError,
    ProtocolError,
    RequestTimeoutError,
    ServerError,
)
from kubefox.natsio.headers import Headers
from kubefox.natsio.parser import Payload
from kubefox.natsio.subscription import ErrorCallback, Handler, Msg, StateCallback, Subscription

__all__ = [
    "AuthorizationError",
    "Client",
    "ConnectError",
    "ConnectionClosedError",
    "ErrorCallback",
    "Handler",
    "Headers",
    "MaxPayloadError",
    "Msg",
    "NatsIOError",
    "NoRespondersError",
    "OutboundBufferFullError",
    "Payload",
    "PermissionsViolationError",
    "ProtocolError",
    "RequestTimeoutError",
    "ServerError",
    "StateCallback",
    "Subscription",
    "connect",
]
