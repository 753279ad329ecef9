"""Events: the unit of work that flows between components, and its parts.

Every field of upstream KubeFox's event is here (ids, parent, trace context,
type, category, create time, TTL, context, source, target, params, values,
content). Events are ``msgspec.Struct`` value objects rather than dataclasses:
they are built, encoded and decoded on every hop, and msgspec structs are
several times cheaper to create and (de)serialise, which is the hot path's
dominant cost. They are frozen; change one with :func:`msgspec.structs.replace`
or a named method, never by mutation.

``params`` and ``values`` hold loosely typed values (see :mod:`kubefox.core.values`):
strings, numbers, booleans, null, arrays of strings or numbers, and maps of
string to array of strings (headers, query).
"""

from __future__ import annotations

import enum
import os
import threading
import time
from typing import Any

import msgspec

#: Event types of upstream KubeFox (``io.kubefox.*``).
TYPE_HTTP = "io.kubefox.http"
TYPE_KUBEFOX = "io.kubefox.kubefox"
TYPE_CRON = "io.kubefox.cron"
TYPE_DAPR = "io.kubefox.dapr"
TYPE_KUBERNETES = "io.kubefox.kubernetes"
TYPE_ACK = "io.kubefox.ack"
TYPE_BOOTSTRAP = "io.kubefox.bootstrap"
TYPE_ERROR = "io.kubefox.error"
TYPE_HEALTH = "io.kubefox.health"
TYPE_METRICS = "io.kubefox.metrics"
TYPE_NACK = "io.kubefox.nack"
TYPE_REGISTER = "io.kubefox.register"
TYPE_REJECTED = "io.kubefox.rejected"
TYPE_TELEMETRY = "io.kubefox.telemetry"
TYPE_UNKNOWN = "io.kubefox.unknown"

#: Well-known keys of ``Event.values`` (upstream names).
VAL_URL = "url"
VAL_HOST = "host"
VAL_PATH = "path"
VAL_QUERY = "queryParam"
VAL_HEADER = "header"
VAL_METHOD = "method"
VAL_STATUS = "status"
VAL_STATUS_CODE = "statusCode"
VAL_PATH_SUFFIX = "pathSuffix"
VAL_SPEC = "spec"

#: Content type of error events and text replies, as upstream writes them.
CONTENT_TYPE_JSON = "application/json; charset=UTF-8"
CONTENT_TYPE_TEXT = "text/plain; charset=UTF-8"
CONTENT_TYPE_HTML = "text/html; charset=UTF-8"


class Category(enum.IntEnum):
    """What an event is for; the numbers are upstream's protobuf values."""

    UNKNOWN = 0
    MESSAGE = 1
    REQUEST = 2
    RESPONSE = 3


class ComponentType(enum.StrEnum):
    """Kinds of event senders and receivers."""

    KUBEFOX = "KubeFox"
    HTTP_ADAPTER = "HTTPAdapter"
    BROKER = "Broker"
    NATS = "NATS"
    PLATFORM = "Platform"


class Component(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Identity of a sender or receiver: one instance, one version or just a name."""

    type: str = ""
    app: str = ""
    name: str = ""
    hash: str = ""
    id: str = ""
    broker_id: str = ""

    @property
    def short_hash(self) -> str:
        """The first seven characters of the hash, used in names."""
        return self.hash[:7]

    @property
    def group_key(self) -> str:
        """``<app>-<name>-<hash7>`` (non-empty parts only): one set of replicas."""
        return "-".join(part for part in (self.app, self.name, self.short_hash) if part)

    @property
    def key(self) -> str:
        """The group key plus the instance id: one replica."""
        return f"{self.group_key}-{self.id}" if self.id else self.group_key

    @property
    def is_complete(self) -> bool:
        """Type, name, hash and instance id are all known."""
        return bool(self.type and self.name and self.hash and self.id)

    @property
    def is_name_only(self) -> bool:
        """Only type and name are set: the broker fills in the rest."""
        return bool(self.type and self.name) and not (self.hash or self.id or self.broker_id)


class EventContext(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Which platform, virtual environment, deployment and manifest an event belongs to."""

    platform: str = ""
    virtual_environment: str = ""
    app_deployment: str = ""
    release_manifest: str = ""

    @property
    def is_complete(self) -> bool:
        """Platform, virtual environment and app deployment are all set."""
        return bool(self.platform and self.virtual_environment and self.app_deployment)


class SpanContext(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """W3C trace context carried from the sender's span to the receiver."""

    trace_id: bytes = b""
    span_id: bytes = b""
    trace_state: str = ""
    flags: int = 0


class _IdSource:
    """Random (version 4) UUIDs as text, from OS randomness fetched 256 ids at a time.

    ``str(uuid.uuid4())`` asks the kernel for 16 bytes per id, and every event
    gets an id on every hop; a system call is several times the cost of the
    rest on the virtual machines we run on. The ids stay as unpredictable
    (the same ``os.urandom``); only the fetching is batched.
    """

    __slots__ = ("_lock", "_offset", "_pool")

    _BATCH = 256
    _VARIANT = "89ab"  # RFC 4122 variant: the high bits of the 9th byte are 10

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool = b""
        self._offset = 0

    def forget(self) -> None:
        """Drop the fetched bytes (after a fork, so parent and child never share ids)."""
        self._pool = b""
        self._offset = 0

    def __call__(self) -> str:
        with self._lock:
            offset = self._offset
            if offset >= len(self._pool):
                self._pool = os.urandom(16 * self._BATCH)
                offset = 0
            self._offset = offset + 16
            raw = self._pool[offset : offset + 16]
        h = raw.hex()
        variant = self._VARIANT[(raw[8] >> 4) & 3]
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:]}"


#: A new random event id: a version 4 UUID as text, like ``str(uuid.uuid4())``.
new_id = _IdSource()
os.register_at_fork(after_in_child=new_id.forget)


class Event(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One request, response or message.

    ``ttl`` is the remaining time to live in nanoseconds; it shrinks at every
    hop. ``create_time`` is Unix nanoseconds.
    """

    id: str = msgspec.field(default_factory=new_id)
    parent_id: str = ""
    parent_span: SpanContext | None = None
    type: str = ""
    category: Category = Category.UNKNOWN
    create_time: int = msgspec.field(default_factory=time.time_ns)
    ttl: int = 0
    context: EventContext = EventContext()
    source: Component = Component()
    target: Component | None = None
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    values: dict[str, Any] = msgspec.field(default_factory=dict)
    content_type: str = ""
    content: bytes = b""

    def child(
        self,
        *,
        category: Category,
        source: Component,
        target: Component | None = None,
        type: str = "",
        ttl: int | None = None,
        parent_span: SpanContext | None = None,
        content_type: str = "",
        content: bytes = b"",
        values: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Event:
        """A new event caused by this one: parent id, trace, TTL, context and type inherited."""
        return Event(
            parent_id=self.id,
            parent_span=parent_span if parent_span is not None else self.parent_span,
            type=type or self.type,
            category=category,
            ttl=self.ttl if ttl is None else ttl,
            context=self.context,
            source=source,
            target=target,
            params=params if params is not None else {},
            values=values if values is not None else {},
            content_type=content_type,
            content=content,
        )

    def reply(
        self,
        *,
        source: Component,
        content: bytes = b"",
        content_type: str = "",
        values: dict[str, Any] | None = None,
        type: str = "",
    ) -> Event:
        """The RESPONSE to this event, addressed back to its source."""
        return self.child(
            category=Category.RESPONSE,
            source=source,
            target=self.source,
            type=type,
            content=content,
            content_type=content_type,
            values=values,
        )


class MatchedEvent(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What a component receives on its subject: the event, the route it matched, its env.

    ``route_id`` selects the handler (``-1`` is the default handler); ``env``
    holds only the variables the target component declared, already resolved
    from the context's data by the platform (httpsrv or broker).
    """

    event: Event
    route_id: int = -1
    env: dict[str, Any] = msgspec.field(default_factory=dict)
