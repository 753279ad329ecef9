"""Start an embedded platform for one test, in a temporary state directory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from kubefox.platform import EmbeddedPlatform, PlatformSettings


@asynccontextmanager
async def running_platform(
    state_dir: Path, **overrides: object
) -> AsyncIterator[tuple[EmbeddedPlatform, httpx.AsyncClient]]:
    """The platform and an HTTP client for its httpsrv; everything stops on exit."""
    settings = PlatformSettings.model_validate(
        {"state_dir": state_dir, "shutdown_grace": 3.0, **overrides}
    )
    async with (
        EmbeddedPlatform(settings) as platform,
        httpx.AsyncClient(base_url=platform.http_url, timeout=30.0) as client,
    ):
        yield platform, client
