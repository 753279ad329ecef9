"""Fixtures shared by every tier: a clean environment and real servers.

Never import from this module; shared helpers live in plain modules
(``tests/fakes.py``, ``tests/contracts/``, ``tests/servers.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from kubefox.store.natsd import EmbeddedNatsServer
from tests.servers import running_nats_server


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings classes read KUBEFOX_* variables; no test sees the developer's."""
    for name in list(os.environ):
        if name.startswith("KUBEFOX_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNatsServer]:
    """A real nats-server with JetStream on a free loopback port, for the whole session."""
    with running_nats_server(tmp_path_factory.mktemp("nats")) as server:
        yield server


@pytest.fixture(scope="session")
def nats_url(nats_server: EmbeddedNatsServer) -> str:
    """The session nats-server's client URL."""
    return nats_server.url
