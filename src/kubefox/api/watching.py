"""The watch stream: store changes as newline-delimited JSON or server-sent events.

A client asks ``GET /api/v1/watch?fromRevision=N`` and gets every change
after revision ``N`` (from 0: the current state first), one JSON object per
line, or per SSE event when it accepts ``text/event-stream`` (then the SSE
``id`` is the revision, so a reconnecting ``EventSource`` resumes with
``Last-Event-ID``). The stream ends when ``timeoutSeconds`` is spent, when the
server stops, or when the client goes away: the response listens for the
disconnect itself, because an idle watch never writes and so would never
notice a client that left.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

#: Media type of the newline-delimited JSON stream.
NDJSON = "application/x-ndjson"
#: Media type of the server-sent event stream.
SSE = "text/event-stream"


class WatchResponse(StreamingResponse):
    """A stream that ends as soon as the client disconnects, even while idle."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streaming = asyncio.ensure_future(self.stream_response(send))
        listening = asyncio.ensure_future(self.listen_for_disconnect(receive))
        try:
            await asyncio.wait({streaming, listening}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (streaming, listening):
                task.cancel()
            for task in (streaming, listening):
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await task


async def bounded(
    changes: AsyncIterator[dict[str, Any]],
    *,
    timeout: float | None,  # noqa: ASYNC109 - the stream's lifetime, not one I/O call
    closing: asyncio.Event,
) -> AsyncIterator[dict[str, Any]]:
    """``changes`` until ``timeout`` seconds have passed or ``closing`` is set."""
    deadline = None if timeout is None else time.monotonic() + timeout
    stopping = asyncio.ensure_future(closing.wait())
    step: asyncio.Future[dict[str, Any]] | None = None
    try:
        while True:
            step = asyncio.ensure_future(anext(changes))
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, _ = await asyncio.wait(
                {step, stopping}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            if step not in done:
                return
            try:
                change = step.result()
            except StopAsyncIteration:
                return
            yield change
    finally:
        for task in (step, stopping):
            if task is not None and not task.done():
                task.cancel()
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await task
        aclose = getattr(changes, "aclose", None)
        if aclose is not None:
            await aclose()


async def encode(changes: AsyncIterator[dict[str, Any]], *, sse: bool) -> AsyncIterator[bytes]:
    """Each change as one NDJSON line, or as one SSE event."""
    async for change in changes:
        data = json.dumps(change, ensure_ascii=False, separators=(",", ":"))
        if sse:
            yield f"id: {change['revision']}\nevent: {change['type']}\ndata: {data}\n\n".encode()
        else:
            yield f"{data}\n".encode()
