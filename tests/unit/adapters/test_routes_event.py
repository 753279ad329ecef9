"""The io.kubefox.routes event through HttpAdapter over a fake NATS requester.

The adapter, router, resource view and matcher are the real ones; only the
transport to the components is faked, so what the report says about routing
(which route each generated request reached, with which params) is what the
platform does. The event end to end, against running components, is in
``tests/e2e/test_test_events.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from kubefox.adapters.http import HttpAdapter
from kubefox.core import codec
from kubefox.core.events import CONTENT_TYPE_TEXT, MatchedEvent
from kubefox.resources import parse_resource
from kubefox.router import ResourceView, Router
from kubefox.store import MemoryStore
from kubefox.store.typed import TypedStore
from tests.unit.adapters.hello import (
    BROKEN_VE,
    DEPLOYMENT,
    FRONTEND,
    NAMESPACE,
    platform_resource,
    write_hello_world,
)
from tests.unit.adapters.test_app import FakeRequester, client_for, greet
from tests.unit.resources.helpers import BACKEND_HASH, FRONTEND_HASH, hello_world_document

ROUTES_DEPLOYMENT = "routes-demo"
SUB_PATH = {"subPath": {"required": True}}
ROUTES = [
    {"id": 0, "rule": "Path(`/{{.Vars.subPath}}/hello`)", "envVarSchema": SUB_PATH},
    {
        "id": 1,
        "rule": "Method(`GET`) && Path(`/{{.Vars.subPath}}/hello`)",
        "envVarSchema": SUB_PATH,
    },
    {
        "id": 2,
        "rule": "Method(`POST`) && Path(`/{{.Vars.subPath}}/items/{id:[0-9]+}`) "
        "&& Query(`q`, `{}`)",
        "envVarSchema": SUB_PATH,
    },
    {"id": 3, "rule": "Path(`/a`) && Path(`/b`)"},
    {"id": 4, "rule": "Type(`io.kubefox.routes`)"},
    {"id": 5, "rule": "Header(`kf-dep`, `x`)"},
]


def routes_demo() -> dict[str, Any]:
    """hello-world with a frontend of six routes: shadowed, parameterised and impossible ones."""
    document = hello_world_document(
        components={
            "backend": {
                "type": "KubeFox",
                "defaultHandler": True,
                "envVarSchema": {"who": {"required": True}},
                "hash": BACKEND_HASH,
            },
            "frontend": {
                "type": "KubeFox",
                "dependencies": {"backend": {"type": "KubeFox"}},
                "routes": ROUTES,
                "hash": FRONTEND_HASH,
            },
        }
    )
    document["metadata"]["name"] = ROUTES_DEPLOYMENT
    return document


@contextlib.asynccontextmanager
async def routing(*, builtin: bool = True) -> AsyncIterator[Router]:
    """A router over hello-world and routes-demo; the built-in events on for the platform."""
    store = MemoryStore()
    typed = TypedStore(store, namespace=NAMESPACE)
    await write_hello_world(typed, platform=platform_resource("demo", builtin=builtin))
    await typed.create(parse_resource(routes_demo()))
    view = ResourceView(store, namespace=NAMESPACE)
    follower = asyncio.create_task(view.run())
    try:
        await view.wait_ready()
        yield Router(view, platform="demo")
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        await store.aclose()


async def items_fail(matched: MatchedEvent) -> bytes:
    """The frontend, except that the items route answers 500."""
    if matched.route_id != 2:
        return await greet(matched)
    reply = matched.event.reply(
        source=FRONTEND,
        content=b"boom",
        content_type=CONTENT_TYPE_TEXT,
        values={"statusCode": 500},
    )
    return codec.encode(reply)


async def send_routes(
    app: HttpAdapter, deployment: str, ve: str = "qa", **query: str
) -> httpx.Response:
    async with client_for(app) as client:
        return await client.get(
            "/", params={"kf-type": "io.kubefox.routes", "kf-dep": deployment, "kf-ve": ve, **query}
        )


async def test_every_route_gets_a_request_through_normal_routing() -> None:
    """hello-world's one route is reached with GET /qa/hello, and the report says 200."""
    requester = FakeRequester()
    async with routing() as router:
        app = HttpAdapter(router, requester, platform="demo", timeout=5.0)
        response = await send_routes(app, DEPLOYMENT)

    assert response.status_code == 200, response.text
    report = response.json()
    assert report["status"] == "passed"
    assert report["summary"] == {
        "routes": 1,
        "2xx": 1,
        "3xx": 0,
        "4xx": 0,
        "5xx": 0,
        "errors": 0,
        "skipped": 0,
        "notTried": 0,
    }
    [route] = report["routes"]
    assert route["component"] == "frontend"
    assert route["rule"] == "Path(`/{{.Vars.subPath}}/hello`)"
    assert route["resolvedRule"] == "Path(`/qa/hello`)"
    assert route["request"] == {"method": "GET", "path": "/qa/hello", "host": "localhost:8080"}
    assert route["outcome"] == "answered"
    assert route["status"] == 200
    assert route["durationMs"] >= 0
    [(subject, matched, _)] = requester.sent
    assert subject.startswith("kf.demo.cmp.hello-world.frontend.")
    assert matched.route_id == 0
    assert matched.event.values["path"] == "/qa/hello"
    assert matched.event.context.virtual_environment == "qa"


async def test_the_report_covers_answers_shadowed_and_impossible_routes() -> None:
    """Per route: answered with its status, or skipped with the reason; 5xx fails the report."""
    requester = FakeRequester(items_fail)
    async with routing() as router:
        app = HttpAdapter(router, requester, platform="demo", timeout=5.0)
        response = await send_routes(app, ROUTES_DEPLOYMENT)

    assert response.status_code == 200, response.text
    report = response.json()
    by_id = {r["routeId"]: r for r in report["routes"]}
    assert report["status"] == "failed"
    assert report["summary"]["2xx"] == 1
    assert report["summary"]["5xx"] == 1
    assert report["summary"]["skipped"] == 4
    assert by_id[0]["outcome"] == "skipped"
    assert "goes to route 1 of frontend" in by_id[0]["reason"]
    assert by_id[1]["status"] == 200
    assert by_id[2]["request"] == {
        "method": "POST",
        "path": "/qa/items/0",
        "host": "localhost:8080",
        "query": {"q": ["1"]},
    }
    assert by_id[2]["status"] == 500
    assert by_id[2]["body"] == "boom"
    assert by_id[3]["reason"] == (
        "no request can be generated: one segment cannot be both `a` and `b`"
    )
    assert "httpsrv answers itself" in by_id[4]["reason"]
    assert "httpsrv removes kf-dep before routing" in by_id[5]["reason"]
    routed = sorted((m.route_id, m.event.params.get("id")) for _, m, _ in requester.sent)
    assert routed == [(1, None), (2, "0")]


async def test_a_route_that_cannot_be_resolved_is_skipped_with_the_missing_var() -> None:
    """In a VE without subPath the route is reported, not dropped, and the problems listed."""
    async with routing() as router:
        app = HttpAdapter(router, FakeRequester(), platform="demo", timeout=5.0)
        response = await send_routes(app, DEPLOYMENT, BROKEN_VE)

    report = response.json()
    [route] = report["routes"]
    assert route["outcome"] == "skipped"
    assert route["reason"] == (
        "the rule cannot be resolved in this context: missing template variables: subPath"
    )
    assert report["problems"]
    assert report["status"] == "passed"


async def test_a_request_past_its_timeout_is_an_error_and_the_rest_continue() -> None:
    """``timeout`` bounds each request; one that hangs fails the report, the next still runs."""

    async def hang_on_items(matched: MatchedEvent) -> bytes:
        if matched.route_id == 2:
            await asyncio.sleep(30)
        return await greet(matched)

    requester = FakeRequester(hang_on_items)
    async with routing() as router:
        app = HttpAdapter(router, requester, platform="demo", timeout=5.0)
        response = await send_routes(app, ROUTES_DEPLOYMENT, timeout="0.2")

    report = response.json()
    by_id = {r["routeId"]: r for r in report["routes"]}
    assert by_id[2]["outcome"] == "error"
    assert by_id[2]["error"] == "no answer within 0.2s"
    assert 150 <= by_id[2]["durationMs"] < 5000
    assert by_id[1]["status"] == 200
    assert report["summary"]["errors"] == 1
    assert report["status"] == "failed"
    assert app.in_flight == 0


async def test_routes_left_when_the_events_time_is_spent_are_skipped() -> None:
    """The whole report fits in the event's time to live; what did not fit says so."""

    async def hang(matched: MatchedEvent) -> bytes:
        await asyncio.sleep(30)
        return await greet(matched)

    async with routing() as router:
        app = HttpAdapter(router, FakeRequester(hang), platform="demo", timeout=0.3)
        response = await send_routes(app, ROUTES_DEPLOYMENT)

    report = response.json()
    by_id = {r["routeId"]: r for r in report["routes"]}
    assert by_id[1]["outcome"] == "error"
    assert by_id[2]["outcome"] == "skipped"
    assert by_id[2]["reason"] == "the event's 0.3s were spent before this route's turn"


async def test_limit_caps_the_routes_tried_and_counts_the_rest() -> None:
    """``limit=2``: two routes in the report, four counted as not tried."""
    async with routing() as router:
        app = HttpAdapter(router, FakeRequester(), platform="demo", timeout=5.0)
        response = await send_routes(app, ROUTES_DEPLOYMENT, limit="2")

    report = response.json()
    assert [r["routeId"] for r in report["routes"]] == [0, 1]
    assert report["summary"]["routes"] == 6
    assert report["summary"]["notTried"] == 4


async def test_bad_options_are_a_400_naming_the_option() -> None:
    """A wrong limit or timeout is refused before anything is sent."""
    requester = FakeRequester()
    async with routing() as router:
        app = HttpAdapter(router, requester, platform="demo", timeout=5.0)
        limit = await send_routes(app, DEPLOYMENT, limit="0")
        timeout = await send_routes(app, DEPLOYMENT, timeout="60")
        nan = await send_routes(app, DEPLOYMENT, timeout="nan")

    assert limit.status_code == 400
    assert limit.text == (
        "invalid: io.kubefox.routes: limit must be a whole number from 1 to 500, not '0'"
    )
    assert timeout.status_code == 400
    assert "timeout must be a number of seconds above 0 and at most 5" in timeout.text
    assert nan.status_code == 400
    assert requester.sent == []


async def test_with_the_builtin_events_off_the_routes_event_is_routed_as_usual() -> None:
    """No report: the event finds no route (404) and nothing is generated."""
    requester = FakeRequester()
    async with routing(builtin=False) as router:
        app = HttpAdapter(router, requester, platform="demo", timeout=5.0)
        response = await send_routes(app, DEPLOYMENT)

    assert response.status_code == 404
    assert requester.sent == []
