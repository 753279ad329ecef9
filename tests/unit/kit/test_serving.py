"""A running Kit: dispatch by route id, answers, errors, back-pressure and shutdown."""

from __future__ import annotations

import asyncio
import json

import pytest
from structlog.testing import capture_logs

from kubefox.core import codec
from kubefox.core.codec import encode_matched
from kubefox.core.events import Category, Event, MatchedEvent
from kubefox.kit import (
    BrokerUnavailableError,
    DeadlineExceededError,
    InvalidError,
    Kit,
    Kontext,
    KubeFoxError,
    NotFoundError,
    Response,
)
from tests.unit.kit import apps
from tests.unit.kit.fakes import MAX_SIZE, FakeTransport, request_event, serving, settings


def _matched(route_id: int = -1, *, ttl: float = 5.0, **kwargs: object) -> MatchedEvent:
    return MatchedEvent(event=request_event(ttl=ttl), route_id=route_id, **kwargs)  # type: ignore[arg-type]


async def _settle() -> None:
    """Let every task that can run, run: to show that one cannot (it waits on something)."""
    for _ in range(10):
        await asyncio.sleep(0)


def _error(reply: Event) -> KubeFoxError:
    assert reply.type == "io.kubefox.error", reply
    return codec.error_from_event(reply)


def _routed_kit() -> Kit:
    kit = Kit()

    @kit.route("Path(`/zero`)")
    async def zero(k: Kontext) -> Response:
        return k.text("zero")

    @kit.route("Path(`/one`)")
    async def one(k: Kontext) -> Response:
        return k.text("one", status=201, headers={"x-route": "1"})

    @kit.default
    async def default(k: Kontext) -> Response:
        return k.text(f"default {k.env_str('who')}")

    return kit


@pytest.mark.parametrize(("route_id", "text"), [(0, "zero"), (1, "one"), (-1, "default World")])
async def test_events_are_dispatched_by_route_id(route_id: int, text: str) -> None:
    """Route ids select the handler declared with that id; -1 selects the default handler."""
    transport = FakeTransport()
    async with serving(_routed_kit(), transport):
        reply = await transport.call(_matched(route_id, env={"who": "World"}))

    assert reply.content == text.encode()


async def test_response_event_answers_the_request() -> None:
    """The reply is a RESPONSE to the request, from this instance, with status and headers."""
    transport = FakeTransport()
    matched = _matched(1)
    async with serving(_routed_kit(), transport):
        reply = await transport.call(matched)

    request = matched.event
    assert reply.category is Category.RESPONSE
    assert reply.parent_id == request.id
    assert reply.context == request.context
    assert reply.target == request.source
    assert reply.source.name == "frontend"
    assert reply.source.id == "inst1"
    assert reply.source.hash == settings().hash
    assert reply.values["statusCode"] == 201
    assert reply.values["status"] == "201 Created"
    assert reply.values["header"] == {"X-Route": ["1"]}
    assert reply.content_type == "text/plain; charset=UTF-8"
    assert 0 < reply.ttl <= request.ttl


@pytest.mark.parametrize(
    ("kit", "route_id", "cause"),
    [
        (Kit(), -1, "default handler not found"),
        (_routed_kit(), 2, "invalid route id"),
        (_routed_kit(), -2, "invalid route id"),
    ],
)
async def test_unknown_route_is_not_found(kit: Kit, route_id: int, cause: str) -> None:
    """No default handler or an unknown route id is answered with NotFound."""
    transport = FakeTransport()
    async with serving(kit, transport):
        reply = await transport.call(_matched(route_id))

    error = _error(reply)
    assert isinstance(error, NotFoundError)
    assert str(error) == f"not found: {cause}"


async def test_kubefox_errors_are_passed_on() -> None:
    """A handler raising a KubeFoxError answers with that error, code and cause."""
    kit = Kit()

    @kit.default
    async def default(k: Kontext) -> Response:
        raise NotFoundError("no such greeting", greeting="hola")

    transport = FakeTransport()
    async with serving(kit, transport):
        error = _error(await transport.call(_matched()))

    assert type(error) is NotFoundError
    assert error.cause == "no such greeting"
    assert error.details == {"greeting": "hola"}


async def test_unexpected_exception_is_a_clean_500_and_serving_goes_on() -> None:
    """Any other exception is logged with its traceback and answered without internals."""
    kit = Kit()
    calls = 0

    @kit.default
    async def default(k: Kontext) -> Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("secret database password in here")
        return k.text("fine")

    transport = FakeTransport()
    with capture_logs() as logs:
        async with serving(kit, transport):
            matched = _matched()
            failed = await transport.call(matched)
            succeeded = await transport.call(_matched())

    error = _error(failed)
    assert type(error) is KubeFoxError
    assert error.http_status == 500
    assert str(error) == f"unexpected error: handler failed (event {matched.event.id})"
    assert b"secret" not in failed.content
    assert succeeded.content == b"fine"
    logged = [e for e in logs if e["event"] == "handler.failed"]
    assert logged[0]["event_id"] == matched.event.id
    assert logged[0]["exc_info"] is True


async def test_handler_returning_none_is_unexpected() -> None:
    """A handler that returns no Response is answered with an Unexpected error."""
    kit = Kit()

    @kit.default
    async def default(k: Kontext) -> Response:
        return None  # type: ignore[return-value]

    transport = FakeTransport()
    async with serving(kit, transport):
        error = _error(await transport.call(_matched()))

    assert str(error) == "unexpected error: handler returned no response"


async def test_handler_past_its_deadline_is_cut_off() -> None:
    """A handler still running at the event's deadline is cancelled and answered with 504."""
    kit = Kit()
    cancelled = asyncio.Event()

    @kit.default
    async def default(k: Kontext) -> Response:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return k.text("never")

    transport = FakeTransport()
    async with serving(kit, transport):
        error = _error(await transport.call(_matched(ttl=0.05)))

    assert isinstance(error, DeadlineExceededError)
    assert cancelled.is_set()


async def test_handlers_in_flight_are_cut_off_each_at_its_own_deadline() -> None:
    """A later event with a shorter TTL is cut off first, and one answering in time is not."""
    kit = Kit()

    @kit.default
    async def default(k: Kontext) -> Response:
        if k.body == b"quick":
            return k.text("in time")
        await asyncio.Event().wait()
        return k.text("never")

    transport = FakeTransport()
    loop = asyncio.get_running_loop()
    start = loop.time()
    answered_after: dict[bytes, float] = {}

    async def call(ttl: float, body: bytes) -> Event:
        reply = await transport.call(MatchedEvent(event=request_event(ttl=ttl, content=body)))
        answered_after[body] = loop.time() - start
        return reply

    async with serving(kit, transport), asyncio.TaskGroup() as tasks:
        slow = tasks.create_task(call(0.3, b"slow"))
        fast = tasks.create_task(call(0.05, b"fast"))
        quick = tasks.create_task(call(5.0, b"quick"))

    assert isinstance(_error(fast.result()), DeadlineExceededError)
    assert isinstance(_error(slow.result()), DeadlineExceededError)
    assert answered_after[b"fast"] < 0.3 <= answered_after[b"slow"]
    assert quick.result().content == b"in time"


async def test_event_without_time_left_is_refused() -> None:
    """An event whose TTL is already spent is answered with 504 without running a handler."""
    kit = Kit()
    ran = False

    @kit.default
    async def default(k: Kontext) -> Response:
        nonlocal ran
        ran = True
        return k.text("late")

    transport = FakeTransport()
    async with serving(kit, transport):
        error = _error(await transport.call(_matched(ttl=0)))

    assert isinstance(error, DeadlineExceededError)
    assert not ran


async def test_malformed_event_is_answered_with_invalid() -> None:
    """Bytes that are not a matched event get an Invalid error, and serving goes on."""
    transport = FakeTransport()
    async with serving(apps.backend(), transport):
        reply_to, future = transport.inbox()
        await transport.deliver(b"\xc1 not msgpack", reply_to)
        rejected = codec.decode(await asyncio.wait_for(future, 2.0))
        accepted = await transport.call(_matched(env={"who": "Universe"}))

    assert isinstance(_error(rejected), InvalidError)
    assert accepted.content == b"Universe"


async def test_in_flight_events_are_bounded() -> None:
    """With max_in_flight events running, receiving waits until one finishes."""
    kit = Kit()
    gate = asyncio.Event()
    started: asyncio.Queue[str] = asyncio.Queue()

    @kit.default
    async def default(k: Kontext) -> Response:
        await started.put(k.event.id)
        await gate.wait()
        return k.text("done")

    transport = FakeTransport()
    async with serving(kit, transport, settings(max_in_flight=2)):
        calls = [asyncio.create_task(transport.call(_matched())) for _ in range(2)]
        first_two = {await started.get(), await started.get()}
        blocked = asyncio.create_task(transport.call(_matched()))
        await _settle()
        assert not blocked.done()
        assert started.empty()

        gate.set()
        replies = await asyncio.wait_for(asyncio.gather(*calls, blocked), 2.0)

    assert len(first_two) == 2
    assert [r.content for r in replies] == [b"done"] * 3


async def test_stop_drains_in_flight_handlers() -> None:
    """Stopping stops receiving, lets a running handler finish and answer, then deregisters."""
    kit = Kit()
    gate = asyncio.Event()
    started = asyncio.Event()

    @kit.default
    async def default(k: Kontext) -> Response:
        started.set()
        await gate.wait()
        return k.text("finished")

    transport = FakeTransport()
    run = asyncio.create_task(kit.run(settings(), transport=transport))
    await asyncio.wait_for(transport.registered.wait(), 2.0)
    call = asyncio.create_task(transport.call(_matched()))
    await asyncio.wait_for(started.wait(), 2.0)

    kit.stop()
    await asyncio.wait_for(transport.unsubscribed.wait(), 2.0)
    assert not run.done()
    assert transport.registry  # still registered while draining
    gate.set()
    reply = await asyncio.wait_for(call, 2.0)
    await asyncio.wait_for(run, 2.0)

    assert reply.content == b"finished"
    assert transport.registry == {}
    assert transport.close_count == 1


async def test_stop_cancels_handlers_after_the_shutdown_grace() -> None:
    """A handler still running when the shutdown grace ends is cancelled; run returns."""
    kit = Kit()
    started = asyncio.Event()
    cancelled = asyncio.Event()

    @kit.default
    async def default(k: Kontext) -> Response:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return k.text("never")

    transport = FakeTransport()
    run = asyncio.create_task(kit.run(settings(shutdown_grace=0.05), transport=transport))
    await asyncio.wait_for(transport.registered.wait(), 2.0)
    reply_to, _ = transport.inbox()
    await transport.deliver(encode_matched(_matched(), max_size=MAX_SIZE), reply_to)
    await asyncio.wait_for(started.wait(), 2.0)

    kit.stop()
    await asyncio.wait_for(run, 2.0)

    assert cancelled.is_set()
    assert transport.deregistered.is_set()


async def test_stop_is_idempotent() -> None:
    """stop() before run, twice while running and after the end is harmless."""
    kit = apps.backend()
    transport = FakeTransport()
    kit.stop()

    run = asyncio.create_task(kit.run(settings(), transport=transport))
    await asyncio.wait_for(transport.registered.wait(), 2.0)
    kit.stop()
    kit.stop()
    await asyncio.wait_for(run, 2.0)
    kit.stop()

    assert transport.close_count == 1


async def test_a_kit_runs_once_at_a_time() -> None:
    """Running a Kit that is already running is refused."""
    kit = apps.backend()
    async with serving(kit, FakeTransport()):
        with pytest.raises(RuntimeError, match="already running"):
            await kit.run(settings(), transport=FakeTransport())


async def test_registration_record() -> None:
    """The instance registers its identity, pid, times and definition under its key."""
    kit = apps.backend()
    transport = FakeTransport()
    s = settings(name="backend")
    async with serving(kit, transport, s):
        key = f"demo.hello-world.backend.{s.hash}.inst1"
        record = json.loads(transport.registry[key])

    assert set(record) == {
        "platform",
        "app",
        "name",
        "hash",
        "id",
        "pid",
        "startedAt",
        "heartbeatAt",
        "definition",
    }
    assert (record["platform"], record["app"], record["name"]) == ("demo", "hello-world", "backend")
    assert (record["hash"], record["id"]) == (s.hash, "inst1")
    assert isinstance(record["pid"], int)
    assert record["startedAt"].endswith("Z")
    assert record["definition"] == kit.definition()
    assert transport.registry == {}


async def test_subscribes_to_its_component_subject_in_its_queue_group() -> None:
    """Replicas of one component version share the cmp subject and a queue group."""
    transport = FakeTransport()
    async with serving(apps.backend(), transport, settings(name="backend", hash="abc")):
        pass

    assert transport.subject == "kf.demo.cmp.hello-world.backend.abc"
    assert transport.queue == "hello-world-backend-abc"


async def test_short_connection_loss_is_survived() -> None:
    """A connection that comes back within the platform grace keeps the Kit serving."""
    transport = FakeTransport()
    async with serving(apps.backend(), transport, settings(platform_grace=5.0)) as run:
        transport.disconnect()
        await asyncio.wait_for(transport.awaiting_connection.wait(), 2.0)
        transport.reconnect()
        reply = await transport.call(_matched(env={"who": "again"}))

        assert not run.done()
    assert reply.content == b"again"


async def test_connection_lost_longer_than_grace_ends_the_run() -> None:
    """A connection lost longer than the platform grace ends run with BrokerUnavailable."""
    transport = FakeTransport()
    run = asyncio.create_task(
        apps.backend().run(settings(platform_grace=0.05), transport=transport)
    )
    await asyncio.wait_for(transport.registered.wait(), 2.0)

    transport.disconnect()

    with pytest.raises(BrokerUnavailableError, match=r"lost for more than 0\.05s"):
        await asyncio.wait_for(run, 2.0)
    assert transport.close_count == 1


async def test_cancelling_run_cancels_handlers_and_closes_the_transport() -> None:
    """A run cancelled from outside leaves no handler running and the transport closed."""
    kit = Kit()
    started = asyncio.Event()
    cancelled = asyncio.Event()

    @kit.default
    async def default(k: Kontext) -> Response:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return k.text("never")

    transport = FakeTransport()
    run = asyncio.create_task(kit.run(settings(), transport=transport))
    await asyncio.wait_for(transport.registered.wait(), 2.0)
    reply_to, _ = transport.inbox()
    await transport.deliver(encode_matched(_matched(), max_size=MAX_SIZE), reply_to)
    await asyncio.wait_for(started.wait(), 2.0)

    run.cancel()

    with pytest.raises(asyncio.CancelledError):
        await run
    assert cancelled.is_set()
    assert transport.close_count == 1


async def test_a_handlers_own_timeout_error_is_unexpected() -> None:
    """A TimeoutError that is not the event's deadline is a handler bug: a clean 500."""
    kit = Kit()

    @kit.default
    async def default(k: Kontext) -> Response:
        raise TimeoutError("some client library timed out")

    transport = FakeTransport()
    async with serving(kit, transport):
        error = _error(await transport.call(_matched()))

    assert type(error) is KubeFoxError
    assert error.cause.startswith("handler failed (event ")
