"""Write KubeFox components: declare what a component needs and serves, then start it.

Example::

    from kubefox.kit import Kit, Kontext, Response

    kit = Kit()
    who = kit.env_var("who", required=True)

    @kit.default
    async def default(k: Kontext) -> Response:
        return k.text(k.env_str(who) or "World")

    if __name__ == "__main__":
        kit.start()
"""

from kubefox.core.errors import (
    BrokerMismatchError,
    BrokerUnavailableError,
    ComponentGoneError,
    ComponentMismatchError,
    ConflictError,
    ContentTooLargeError,
    DeadlineExceededError,
    InvalidError,
    KubeFoxError,
    NotFoundError,
    PortUnavailableError,
    RouteInvalidError,
    RouteNotFoundError,
    UnauthorizedError,
    UnavailableError,
    UnknownContentTypeError,
    UnsupportedAdapterError,
)
from kubefox.core.values import EnvVarType, Value
from kubefox.kit._declarations import Dependency, EnvVar, EventType, Handler
from kubefox.kit._kit import Kit
from kubefox.kit._kontext import Kontext
from kubefox.kit._messages import Reply, Response
from kubefox.kit._settings import KitSettings
from kubefox.kit._transport import Receiver, Transport

__all__ = [
    "BrokerMismatchError",
    "BrokerUnavailableError",
    "ComponentGoneError",
    "ComponentMismatchError",
    "ConflictError",
    "ContentTooLargeError",
    "DeadlineExceededError",
    "Dependency",
    "EnvVar",
    "EnvVarType",
    "EventType",
    "Handler",
    "InvalidError",
    "Kit",
    "KitSettings",
    "Kontext",
    "KubeFoxError",
    "NotFoundError",
    "PortUnavailableError",
    "Receiver",
    "Reply",
    "Response",
    "RouteInvalidError",
    "RouteNotFoundError",
    "Transport",
    "UnauthorizedError",
    "UnavailableError",
    "UnknownContentTypeError",
    "UnsupportedAdapterError",
    "Value",
]
