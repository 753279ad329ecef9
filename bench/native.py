"""``python -m bench.native backend|frontend|frontend-aiohttp [BACKEND_URL]``: no platform.

The native baseline of the e2e scenario: the same two services as
``examples/hello-world``, written directly as Starlette apps and served the
way httpsrv is served (uvicorn, uvloop, httptools, no access log). The
frontend negotiates JSON, HTML or text on ``Accept`` like ``k.accepts`` and
calls the backend over one pooled client with enough kept-alive connections
for the load, as a careful engineer would write it: ``httpx.AsyncClient``
(``frontend``, the baseline the issue names) or ``aiohttp.ClientSession``
(``frontend-aiohttp``, a faster client, so the comparison does not rest on
httpx's own cost alone).

Each process binds port 0 itself and prints ``{"url": ...}`` once it serves.
"""

from __future__ import annotations

import html
import json
import socket
import sys
from collections.abc import Awaitable, Callable

import aiohttp
import httpx
import uvicorn
import uvloop
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

WHO = "World"
# As many kept-alive connections as requests in flight (wrk's 50, with room).
_POOL = httpx.Limits(max_connections=128, max_keepalive_connections=128)


def backend_app() -> Starlette:
    async def say_who(request: Request) -> Response:
        return PlainTextResponse(WHO)

    return Starlette(routes=[Route("/{path:path}", say_who)])


Fetch = Callable[[], Awaitable[str]]
Close = Callable[[], Awaitable[None]]


def httpx_client(backend_url: str) -> tuple[Fetch, Close]:
    client = httpx.AsyncClient(base_url=backend_url, limits=_POOL, timeout=30.0)

    async def fetch() -> str:
        reply = await client.get("/")
        reply.raise_for_status()
        return reply.text

    return fetch, client.aclose


def aiohttp_client(backend_url: str) -> tuple[Fetch, Close]:
    session = aiohttp.ClientSession(
        base_url=backend_url,
        connector=aiohttp.TCPConnector(limit=_POOL.max_connections or 0),
        timeout=aiohttp.ClientTimeout(total=30.0),
    )

    async def fetch() -> str:
        async with session.get("/") as reply:
            reply.raise_for_status()
            return await reply.text()

    return fetch, session.close


def frontend_app(fetch: Fetch) -> Starlette:
    async def hello(request: Request) -> Response:
        msg = f"👋 Hello {await fetch()}!"
        accept = request.headers.get("accept", "").lower()
        vary = {"Vary": "Accept"}
        if "application/json" in accept:
            return JSONResponse({"msg": msg}, headers=vary)
        if "text/html" in accept:
            page = (
                "<!DOCTYPE html><html><head><title>Hello KubeFox</title></head>"
                f"<body><h1>{html.escape(msg)}</h1></body></html>"
            )
            return HTMLResponse(page, headers=vary)
        return PlainTextResponse(msg, headers=vary)

    return Starlette(routes=[Route("/{sub}/hello", hello)])


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, sock: socket.socket) -> None:
        super().__init__(config)
        self._sock = sock

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        host, port = self._sock.getsockname()[:2]
        sys.stdout.write(json.dumps({"url": f"http://{host}:{port}"}) + "\n")
        sys.stdout.flush()


async def serve(role: str, backend_url: str | None) -> None:
    close: Close | None = None
    if role == "backend":
        app = backend_app()
    else:
        if backend_url is None:
            raise SystemExit(f"usage: python -m bench.native {role} BACKEND_URL")
        client = aiohttp_client if role == "frontend-aiohttp" else httpx_client
        fetch, close = client(backend_url)
        app = frontend_app(fetch)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    # The same server configuration as httpsrv's (kubefox.adapters.http.server).
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        ws="none",
        lifespan="off",
        interface="asgi3",
        access_log=False,
        log_config=None,
        log_level="warning",
        server_header=False,
        proxy_headers=False,
        backlog=2048,
    )
    server = _Server(config, sock)
    try:
        await server.serve(sockets=[sock])
    finally:
        if close is not None:
            await close()
        sock.close()


def main() -> None:
    role = sys.argv[1]
    uvloop.run(serve(role, sys.argv[2] if len(sys.argv) > 2 else None))


if __name__ == "__main__":
    main()
