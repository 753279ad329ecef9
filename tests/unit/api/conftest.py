"""The API fixture; the helpers live in :mod:`tests.unit.api.bench`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.unit.api.bench import Api, running_api


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    """The API over empty in-memory stores."""
    async with running_api() as running:
        yield running
