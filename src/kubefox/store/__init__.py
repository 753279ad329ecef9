"""Where the platform keeps its resources: the ResourceStore port and its backends.

``open_store(url)`` picks a backend; :class:`MemoryStore` is the in-process one.
The JetStream backend is imported from ``kubefox.store.jetstream`` (or opened
with ``open_store("nats://...")``), so importing this package never pulls in
nats-py; :class:`EmbeddedNatsServer` runs the bundled nats-server.
"""

from kubefox.store._open import open_store
from kubefox.store.memory import MemoryStore
from kubefox.store.natsd import EmbeddedNatsServer
from kubefox.store.protocol import (
    ResourceKey,
    ResourceStore,
    StoredResource,
    WatchEvent,
    WatchKind,
)

__all__ = [
    "EmbeddedNatsServer",
    "MemoryStore",
    "ResourceKey",
    "ResourceStore",
    "StoredResource",
    "WatchEvent",
    "WatchKind",
    "open_store",
]
