"""The router tests' platform fixture; the helpers live in :mod:`tests.unit.router.world`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.unit.router.world import Platform, running_platform


@pytest.fixture
async def platform() -> AsyncIterator[Platform]:
    """hello-world (AppDeployment, Environment qa, VirtualEnvironment qa), ready to route."""
    async with running_platform() as running:
        yield running
