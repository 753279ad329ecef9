"""Calls from a handler to its dependencies: the events sent and how replies come back."""

from __future__ import annotations

import re

import pytest

from kubefox.core import codec
from kubefox.core.events import Category, Component, Event, MatchedEvent
from kubefox.kit import (
    DeadlineExceededError,
    Dependency,
    InvalidError,
    Kit,
    Kontext,
    NotFoundError,
    Response,
    UnauthorizedError,
    UnavailableError,
)
from tests.unit.kit import apps
from tests.unit.kit.fakes import FakeTransport, Responder, kontext, request_event, serving, settings

BACKEND = Dependency(name="backend")


def _answer(text: str, **values: object) -> Responder:
    async def responder(subject: str, event: Event) -> bytes:
        reply = event.reply(
            source=Component(type="KubeFox", app="hello-world", name="backend", hash="b", id="x"),
            content=text.encode(),
            content_type="text/plain; charset=UTF-8",
            values=dict(values),
        )
        return codec.encode(reply)

    return responder


async def test_request_sends_a_child_event_to_the_broker_subject() -> None:
    """The request goes to this instance's brk subject, as a child of the incoming event."""
    transport = FakeTransport(_answer("World"))
    incoming = request_event(ttl=5.0)
    k = kontext(incoming, transport=transport, dependencies=(BACKEND,))

    reply = await k.request(BACKEND)

    subject, sent, timeout = transport.requests[0]
    s = settings()
    assert subject == f"kf.demo.brk.hello-world.frontend.{s.hash}.inst1"
    assert sent.category is Category.REQUEST
    assert sent.type == "io.kubefox.kubefox"
    assert sent.parent_id == incoming.id
    assert sent.context == incoming.context
    assert sent.source == Component(
        type="KubeFox", app="hello-world", name="frontend", hash=s.hash, id="inst1"
    )
    assert sent.target == Component(type="KubeFox", name="backend")
    assert sent.target.is_name_only
    assert 4.0e9 < sent.ttl <= 5.0e9
    assert 4.0 < timeout <= 5.0
    assert sent.values == {}
    assert sent.content == b""
    assert reply.text == "World"
    assert reply.status_code == 200


async def test_timeout_shortens_the_wait_and_the_ttl() -> None:
    """``timeout`` caps both how long we wait and the TTL the dependency gets."""
    transport = FakeTransport(_answer("ok"))
    k = kontext(request_event(), transport=transport, dependencies=(BACKEND,))

    await k.request(BACKEND, timeout=0.5)

    _, sent, timeout = transport.requests[0]
    assert timeout <= 0.5
    assert sent.ttl <= 0.5e9


async def test_request_to_an_http_adapter_is_an_http_event() -> None:
    """Adapters are sent io.kubefox.http events with the method, path, query and headers given."""
    adapter = Kit().http_adapter("hasura")
    transport = FakeTransport(_answer("{}"))
    k = kontext(request_event(), transport=transport, dependencies=(adapter,))

    await k.request(
        adapter,
        method="post",
        path="/v1/graphql",
        query={"a": "1"},
        headers={"x-hasura-role": "admin"},
        json={"query": "{ heroes { name } }"},
    )

    _, sent, _ = transport.requests[0]
    assert sent.type == "io.kubefox.http"
    assert sent.target == Component(type="HTTPAdapter", name="hasura")
    assert sent.values == {
        "method": "POST",
        "path": "/v1/graphql",
        "queryParam": {"a": ["1"]},
        "header": {"X-Hasura-Role": ["admin"]},
    }
    assert sent.content_type == "application/json; charset=UTF-8"
    assert sent.content == b'{"query":"{ heroes { name } }"}'


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        ("hi", None, ("text/plain; charset=UTF-8", b"hi")),
        (b"\x01", None, ("application/octet-stream", b"\x01")),
        (b"<a/>", "application/xml", ("application/xml", b"<a/>")),
    ],
)
async def test_request_bodies(
    body: str | bytes, content_type: str | None, expected: tuple[str, bytes]
) -> None:
    """Text bodies are UTF-8 text, bytes are octets unless a content type is given."""
    transport = FakeTransport(_answer(""))
    k = kontext(request_event(), transport=transport, dependencies=(BACKEND,))

    await k.request(BACKEND, body=body, content_type=content_type)

    _, sent, _ = transport.requests[0]
    assert (sent.content_type, sent.content) == expected


async def test_body_and_json_together_are_refused() -> None:
    """Passing both a body and JSON is a mistake, caught before sending."""
    transport = FakeTransport(_answer(""))
    k = kontext(request_event(), transport=transport, dependencies=(BACKEND,))

    with pytest.raises(InvalidError):
        await k.request(BACKEND, body="a", json={"a": 1})
    assert transport.requests == []


async def test_forward_copies_the_incoming_request() -> None:
    """``forward`` sends the incoming method, path, query, headers and body on."""
    incoming = request_event(
        values={
            "method": "PUT",
            "path": "/qa/items/1",
            "queryParam": {"v": ["2"]},
            "header": {"X-A": ["1"]},
        },
        content=b"payload",
        content_type="text/plain",
    )
    transport = FakeTransport(_answer(""))
    k = kontext(incoming, transport=transport, dependencies=(BACKEND,))

    await k.forward(BACKEND, path="/items/1")

    _, sent, _ = transport.requests[0]
    assert sent.values["method"] == "PUT"
    assert sent.values["path"] == "/items/1"
    assert sent.values["queryParam"] == {"v": ["2"]}
    assert sent.values["header"] == {"X-A": ["1"]}
    assert (sent.content, sent.content_type) == (b"payload", "text/plain")


async def test_error_reply_is_raised_as_its_error() -> None:
    """An io.kubefox.error reply is raised as the KubeFoxError it carries."""

    async def refuse(subject: str, event: Event) -> bytes:
        error = NotFoundError("no such item", item="1")
        return codec.encode(codec.error_event(event, error, source=Component(name="backend")))

    k = kontext(request_event(), transport=FakeTransport(refuse), dependencies=(BACKEND,))

    with pytest.raises(NotFoundError, match="no such item") as error:
        await k.request(BACKEND)
    assert error.value.details == {"item": "1"}


async def test_nobody_listening_is_unavailable() -> None:
    """When nothing can take the request, the transport's UnavailableError reaches the caller."""
    k = kontext(request_event(), transport=FakeTransport(), dependencies=(BACKEND,))

    with pytest.raises(UnavailableError):
        await k.request(BACKEND)


async def test_undeclared_dependency_is_refused_before_sending() -> None:
    """Calling a dependency the Kit did not declare fails here, before the broker refuses."""
    transport = FakeTransport(_answer(""))
    k = kontext(request_event(), transport=transport, dependencies=(BACKEND,))
    adapter_named_backend = Kit().http_adapter("backend")

    with pytest.raises(UnauthorizedError, match=re.escape("kit.component('other')")):
        await k.request(Dependency(name="other"))
    with pytest.raises(UnauthorizedError, match="not a declared dependency"):
        await k.request(adapter_named_backend)
    assert transport.requests == []


async def test_no_time_left_is_deadline_exceeded() -> None:
    """A request made after the deadline fails at once, without sending."""
    transport = FakeTransport(_answer(""))
    k = kontext(request_event(), remaining=0.0, transport=transport, dependencies=(BACKEND,))

    with pytest.raises(DeadlineExceededError):
        await k.request(BACKEND)
    assert transport.requests == []


async def test_hello_world_through_a_running_kit() -> None:
    """The frontend route asks the backend and greets in the format the client accepts."""
    kit, _ = apps.frontend()
    backend = apps.backend()
    backend_transport = FakeTransport()

    async def relay(subject: str, event: Event) -> bytes:
        # Play the broker: deliver to the backend with its env, keep the reply path.
        reply = await backend_transport.call(MatchedEvent(event=event, env={"who": "World"}))
        return codec.encode(reply)

    transport = FakeTransport(relay)
    async with (
        serving(backend, backend_transport, settings(name="backend")),
        serving(kit, transport),
    ):
        text = await transport.call(MatchedEvent(event=request_event(), route_id=0))
        as_json = await transport.call(
            MatchedEvent(
                event=request_event(values={"header": {"Accept": ["application/json"]}}),
                route_id=0,
            )
        )

    assert text.content.decode() == "👋 Hello World!"
    assert as_json.content_type == "application/json; charset=UTF-8"
    assert as_json.content.decode() == '{"msg":"👋 Hello World!"}'


async def test_unexpected_failure_in_a_route_does_not_stop_the_kit() -> None:
    """A dependency error the handler does not catch is answered, and the Kit keeps serving."""
    kit = Kit()
    backend = kit.component("backend")

    @kit.default
    async def default(k: Kontext) -> Response:
        reply = await k.request(backend)
        return k.respond(reply)

    transport = FakeTransport()
    async with serving(kit, transport):
        first = await transport.call(MatchedEvent(event=request_event()))
        second = await transport.call(MatchedEvent(event=request_event()))

    assert isinstance(codec.error_from_event(first), UnavailableError)
    assert isinstance(codec.error_from_event(second), UnavailableError)
