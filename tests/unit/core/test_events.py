"""Events and their parts: ids, component keys, context completeness, child and reply events."""

from __future__ import annotations

import os
import sys
import threading
import uuid

import pytest

from kubefox.core import events
from kubefox.core.events import (
    TYPE_HTTP,
    TYPE_KUBEFOX,
    Category,
    Component,
    ComponentType,
    Event,
    EventContext,
    SpanContext,
    new_id,
)

HASH = "98c75bd0123456789abcdef012345678"
FRONTEND = Component(
    type=ComponentType.KUBEFOX, app="hello-world", name="frontend", hash=HASH, id="fsgolhxhgu"
)
BACKEND = Component(type=ComponentType.KUBEFOX, app="hello-world", name="backend", hash=HASH)
HTTPSRV = Component(type=ComponentType.HTTP_ADAPTER, name="httpsrv", hash="3baaaee", id="abc")
CONTEXT = EventContext(platform="dev", virtual_environment="qa", app_deployment="hello-world-main")
SPAN = SpanContext(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, flags=1)


def _request() -> Event:
    return Event(
        type=TYPE_HTTP,
        category=Category.REQUEST,
        ttl=30_000_000_000,
        context=CONTEXT,
        parent_span=SPAN,
        source=HTTPSRV,
        target=FRONTEND,
    )


def test_component_short_hash_is_seven_characters() -> None:
    """The short hash is the first seven characters of the hash."""
    assert FRONTEND.short_hash == "98c75bd"


def test_component_group_key_joins_app_name_and_short_hash() -> None:
    """The group key names one set of replicas: ``<app>-<name>-<hash7>``."""
    assert FRONTEND.group_key == "hello-world-frontend-98c75bd"


def test_component_group_key_skips_empty_parts() -> None:
    """Platform components have no app, and the key has no empty segment."""
    assert HTTPSRV.group_key == "httpsrv-3baaaee"


def test_component_key_appends_the_instance_id() -> None:
    """The key names one replica: group key plus instance id."""
    assert FRONTEND.key == "hello-world-frontend-98c75bd-fsgolhxhgu"


def test_component_key_without_id_is_the_group_key() -> None:
    """A component with no instance id is keyed by its group."""
    assert BACKEND.key == BACKEND.group_key


@pytest.mark.parametrize(
    ("component", "expected"),
    [
        (FRONTEND, True),
        (BACKEND, False),
        (Component(type="KubeFox", name="x", hash="h"), False),
        (Component(name="x", hash="h", id="i"), False),
        (Component(), False),
    ],
)
def test_component_is_complete_needs_type_name_hash_and_id(
    component: Component, expected: bool
) -> None:
    """Only a component naming one instance of one version is complete."""
    assert component.is_complete is expected


@pytest.mark.parametrize(
    ("component", "expected"),
    [
        (Component(type="KubeFox", name="backend"), True),
        (Component(type="KubeFox", app="hello-world", name="backend"), True),
        (Component(type="KubeFox", name="backend", hash="h"), False),
        (Component(type="KubeFox", name="backend", id="i"), False),
        (Component(type="KubeFox", name="backend", broker_id="b"), False),
        (Component(name="backend"), False),
    ],
)
def test_component_is_name_only_without_hash_id_or_broker(
    component: Component, expected: bool
) -> None:
    """A name-only component leaves hash, id and broker for the platform to fill in."""
    assert component.is_name_only is expected


def test_event_context_is_complete_needs_platform_ve_and_deployment() -> None:
    """The release manifest is optional; the other three are required."""
    partial = EventContext(platform="dev", virtual_environment="qa")

    assert CONTEXT.is_complete
    assert not partial.is_complete


def test_event_defaults_are_fresh_per_event() -> None:
    """Each new event gets its own id and its own empty maps."""
    first, second = Event(), Event()

    assert first.id != second.id
    assert first.values is not second.values


def test_event_child_inherits_parent_id_context_ttl_span_and_type() -> None:
    """A child points at its parent and carries its context, TTL, trace parent and type."""
    request = _request()

    child = request.child(category=Category.REQUEST, source=FRONTEND, target=BACKEND)

    assert child.parent_id == request.id
    assert child.id != request.id
    assert child.context == CONTEXT
    assert child.ttl == request.ttl
    assert child.parent_span == SPAN
    assert child.type == TYPE_HTTP
    assert (child.category, child.source, child.target) == (Category.REQUEST, FRONTEND, BACKEND)


def test_event_child_overrides_type_ttl_and_span_when_given() -> None:
    """Explicit type, TTL and trace parent win over the inherited ones."""
    request = _request()
    span = SpanContext(trace_id=b"\x03" * 16, span_id=b"\x04" * 8)

    child = request.child(
        category=Category.REQUEST, source=FRONTEND, type=TYPE_KUBEFOX, ttl=5, parent_span=span
    )

    assert (child.type, child.ttl, child.parent_span) == (TYPE_KUBEFOX, 5, span)


def test_event_child_does_not_copy_parent_payload() -> None:
    """Values, params and content belong to the parent only."""
    request = Event(values={"method": "GET"}, params={"p": "1"}, content=b"body")

    child = request.child(category=Category.REQUEST, source=FRONTEND)

    assert (child.values, child.params, child.content) == ({}, {}, b"")


def test_event_reply_targets_the_source_as_a_response() -> None:
    """A reply is a RESPONSE addressed back to whoever sent the event."""
    request = _request()

    reply = request.reply(source=FRONTEND, content=b"hi", content_type="text/plain")

    assert reply.category is Category.RESPONSE
    assert reply.target == HTTPSRV
    assert reply.source == FRONTEND
    assert reply.parent_id == request.id
    assert (reply.content, reply.content_type) == (b"hi", "text/plain")
    assert (reply.context, reply.ttl, reply.type) == (CONTEXT, request.ttl, TYPE_HTTP)


def test_new_ids_are_distinct_version_4_uuids_as_text() -> None:
    """Ids read as ``str(uuid.uuid4())`` does, across several batches of fetched randomness."""
    ids = [new_id() for _ in range(1000)]

    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)


def test_new_ids_format_the_os_randomness_as_uuid_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every random bit but the version and variant ends up in an id, in ``uuid.UUID`` order."""
    pool = os.urandom(16 * 256)
    monkeypatch.setattr(os, "urandom", lambda size: pool[:size])
    events._forget_ids()  # the after-fork hook: the next id starts a batch, from ``pool``

    ids = [new_id() for _ in range(256)]

    expected = [str(uuid.UUID(bytes=pool[i : i + 16], version=4)) for i in range(0, len(pool), 16)]
    assert ids == expected


def test_new_ids_from_many_threads_are_never_shared() -> None:
    """Threads take ids concurrently without a lock and still never get the same one."""
    taken: list[list[str]] = [[] for _ in range(8)]

    def take(into: list[str]) -> None:
        into.extend(new_id() for _ in range(20_000))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter allows
    try:
        threads = [threading.Thread(target=take, args=(into,)) for into in taken]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)

    every = [i for ids in taken for i in ids]
    assert len(set(every)) == len(every) == 8 * 20_000


def test_new_ids_after_a_fork_are_not_the_parents() -> None:
    """A forked child fetches its own randomness instead of repeating the parent's next ids."""
    new_id()  # the parent holds a batch with ids left in it
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child process
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read, "rb") as pipe:
        child = pipe.read().decode()

    assert child != new_id()
