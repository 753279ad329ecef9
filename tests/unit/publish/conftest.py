"""Every publishing test runs git without the developer's configuration."""

from __future__ import annotations

import pytest

from tests.unit.publish.gitrepos import isolate_git


@pytest.fixture(autouse=True)
def _isolated_git(monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_git(monkeypatch)
