"""Fixtures shared by every tier: a clean environment and real servers.

Never import from this module; shared helpers live in plain modules
(``tests/fakes.py``, ``tests/contracts/``, ``tests/servers.py``).
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings classes read KUBEFOX_* variables; no test sees the developer's."""
    for name in list(os.environ):
        if name.startswith("KUBEFOX_"):
            monkeypatch.delenv(name)
