"""Events and their parts: component keys, context completeness, child and reply events."""

from __future__ import annotations

import pytest

from kubefox.core.events import (
    TYPE_HTTP,
    TYPE_KUBEFOX,
    Category,
    Component,
    ComponentType,
    Event,
    EventContext,
    SpanContext,
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
