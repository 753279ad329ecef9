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
import time
from collections.abc import Iterator
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


_ID_BATCH = 256
# Applied to a batch of 16-byte ids read as one big integer: the version (4) in
# the high nibble of byte 6, the RFC 4122 variant (binary 10) in the high bits
# of byte 8, every other bit random; what ``uuid.UUID(bytes=..., version=4)`` does.
_ID_KEEP = int.from_bytes(bytes.fromhex("ffffffffffff0fff3fffffffffffffff") * _ID_BATCH)
_ID_SET = int.from_bytes(bytes.fromhex("00000000000040008000000000000000") * _ID_BATCH)
# The text of a batch: ids of 36 characters, each followed by a space. The 32
# hex digits of every id go to the non-dash positions of its slot.
_ID_TEMPLATE = b"xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx " * _ID_BATCH
_ID_SLOT = 37
_ID_DIGITS = tuple(enumerate(i for i in range(36) if i not in {8, 13, 18, 23}))


def _id_batch() -> list[str]:
    """256 random (version 4) UUIDs as text, from one read of OS randomness.

    Formatted all at once in C (one slice assignment per digit position, 32 in
    all): about a third of the cost of formatting each id on its own.
    """
    size = 16 * _ID_BATCH
    bits = (int.from_bytes(os.urandom(size)) & _ID_KEEP) | _ID_SET
    digits = bits.to_bytes(size).hex().encode()
    text = bytearray(_ID_TEMPLATE)
    for digit, position in _ID_DIGITS:
        text[position::_ID_SLOT] = digits[digit::32]
    return text.decode().split()


# Ids handed out one by one. Taking the next item of a list iterator is a single
# C call under the GIL, so two threads never get the same id and no lock is
# needed (a lock cost as much as the rest of new_id on the hot path). Threads
# that both find it exhausted each install a fresh batch: some ids of the batch
# replaced that way go unused, and still no id is handed out twice.
_ids: Iterator[str] = iter(())


def new_id() -> str:
    """A new random event id: a version 4 UUID as text, like ``str(uuid.uuid4())``.

    ``str(uuid.uuid4())`` asks the kernel for 16 bytes per id, and every event
    gets an id on every hop; a system call is several times the cost of the
    rest on the virtual machines we run on. The ids stay as unpredictable
    (the same ``os.urandom``); only the fetching and formatting are batched.
    """
    try:
        return next(_ids)
    except StopIteration:
        return _refill()


def _refill() -> str:
    global _ids  # noqa: PLW0603 - the one shared id source of this process
    ids = iter(_id_batch())
    _ids = ids
    return next(ids)


def _forget_ids() -> None:
    """Drop the fetched ids after a fork, so that parent and child never share one."""
    global _ids  # noqa: PLW0603 - see _refill
    _ids = iter(())


os.register_at_fork(after_in_child=_forget_ids)


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
