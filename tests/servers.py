"""Real servers for tests: a plain module, so fixtures and tests can both use it.

A server that cannot start fails the test that asked for it (``pytest.fail``),
never skips it: an integration run without its servers has tested nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubefox.core.errors import UnavailableError
from kubefox.store.natsd import EmbeddedNatsServer


def start_nats_server(data_dir: Path, **options: Any) -> EmbeddedNatsServer:
    """Start an embedded nats-server (JetStream on, free loopback port) in ``data_dir``."""
    server = EmbeddedNatsServer(data_dir, **options)
    try:
        server.start_sync()
    except UnavailableError as exc:
        pytest.fail(f"cannot start nats-server: {exc}")
    return server


@contextlib.contextmanager
def running_nats_server(data_dir: Path, **options: Any) -> Iterator[EmbeddedNatsServer]:
    """An embedded nats-server for the duration of the ``with`` block."""
    server = start_nats_server(data_dir, **options)
    try:
        yield server
    finally:
        server.stop_sync()
