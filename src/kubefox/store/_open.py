"""Pick a store backend from a URL such as ``memory://`` or ``nats://host:4222``.

Built-in schemes come first; any other scheme is looked up in the entry-point
group ``kubefox.store_backends``, whose entries name an async factory
``(url) -> ResourceStore``. Backends are imported only when chosen, so importing
``kubefox.store`` never pulls in nats-py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib.metadata import entry_points
from urllib.parse import parse_qs, urlsplit, urlunsplit

from kubefox.core.errors import InvalidError
from kubefox.store.protocol import ResourceStore

BackendFactory = Callable[[str], Awaitable[ResourceStore]]

#: Third-party backends register a factory under this entry-point group.
ENTRY_POINT_GROUP = "kubefox.store_backends"


async def _open_memory(url: str) -> ResourceStore:
    from kubefox.store.memory import MemoryStore

    return MemoryStore()


async def _open_nats(url: str) -> ResourceStore:
    from kubefox.store.jetstream import DEFAULT_BUCKET, JetStreamStore

    parts = urlsplit(url)
    query = parse_qs(parts.query)
    unknown = sorted(set(query) - {"bucket"})
    if unknown:
        raise InvalidError("unknown store url parameters", url=url, parameters=unknown)
    bucket = query.get("bucket", [DEFAULT_BUCKET])[-1]
    server = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
    return await JetStreamStore.connect(server, bucket=bucket)


_BUILTIN: dict[str, BackendFactory] = {"memory": _open_memory, "nats": _open_nats}


async def open_store(url: str) -> ResourceStore:
    """Open the store named by ``url``; built-in schemes win over plugins.

    ``memory://`` is a fresh in-process store; ``nats://host:port[?bucket=name]``
    is a JetStream KV bucket (default ``kubefox-resources``). An unknown scheme
    raises ``InvalidError``.
    """
    scheme = urlsplit(url).scheme
    factory = _BUILTIN.get(scheme)
    if factory is None:
        plugins = entry_points(group=ENTRY_POINT_GROUP, name=scheme)
        factory = next((plugin.load() for plugin in plugins), None)
    if factory is None:
        raise InvalidError(f"no store backend for scheme {scheme!r}", url=url)
    return await factory(url)
