"""nats-server serving TLS from the platform CA: who may connect, and rotation without drops."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import nats
import pytest
from cryptography import x509
from nats.aio.client import Client
from nats.aio.msg import Msg

from kubefox.security.certificates import (
    CertificateFiles,
    CertificateRotator,
    CertificateSpec,
    PlatformRole,
)
from kubefox.security.embedded import EmbeddedSecretsBackend
from kubefox.store.natsd import EmbeddedNatsServer, NatsTls

pytestmark = pytest.mark.integration


def served_serial(port: int, ca_file: Path, server_name: str = "localhost") -> str:
    """The serial of the certificate a fresh TLS handshake with the server gets (hex)."""
    context = ssl.create_default_context(cafile=str(ca_file))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.recv(4096)  # nats-server speaks first, in clear: its INFO line
        with context.wrap_socket(raw, server_hostname=server_name) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return format(x509.load_der_x509_certificate(der).serial_number, "x")


async def connect(url: str, context: ssl.SSLContext) -> Client:
    async def quiet(exc: Exception) -> None:
        pass

    return await nats.connect(
        url,
        tls=context,
        tls_hostname="localhost",
        allow_reconnect=False,
        connect_timeout=3,
        error_cb=quiet,
    )


@pytest.fixture
async def ca(tmp_path: Path) -> EmbeddedSecretsBackend:
    return EmbeddedSecretsBackend(tmp_path / "state")


@pytest.fixture
def files(tmp_path: Path) -> CertificateFiles:
    return CertificateFiles.at(tmp_path / "state" / "tls", "nats")


@pytest.fixture
async def tls_server(
    tmp_path: Path, ca: EmbeddedSecretsBackend, files: CertificateFiles
) -> AsyncIterator[EmbeddedNatsServer]:
    await CertificateRotator(ca, CertificateSpec.for_role(PlatformRole.NATS), files).ensure()
    server = EmbeddedNatsServer(
        tmp_path / "nats", tls=NatsTls(cert_file=files.cert_file, key_file=files.key_file)
    )
    async with server:
        yield server


async def test_a_client_that_trusts_the_ca_connects_over_tls(
    tls_server: EmbeddedNatsServer, files: CertificateFiles
) -> None:
    """The CA bundle is all a client needs; the url says tls://."""
    client = await connect(tls_server.url, ssl.create_default_context(cafile=str(files.ca_file)))
    try:
        sub = await client.subscribe("hello")
        await client.publish("hello", b"world")
        assert (await sub.next_msg(timeout=2)).data == b"world"
    finally:
        await client.close()

    assert tls_server.url.startswith("tls://")


async def test_a_client_without_the_ca_is_refused(tls_server: EmbeddedNatsServer) -> None:
    """The system trust store does not know the platform CA: certificate verification fails."""
    with pytest.raises(ssl.SSLCertVerificationError):
        await connect(tls_server.url, ssl.create_default_context())


async def test_a_client_trusting_another_ca_is_refused(
    tls_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    """A CA of another platform does not vouch for this server."""
    other = EmbeddedSecretsBackend(tmp_path / "other")
    bundle = tmp_path / "other.pem"
    bundle.write_text(await other.ca_bundle())

    with pytest.raises(ssl.SSLCertVerificationError):
        await connect(tls_server.url, ssl.create_default_context(cafile=str(bundle)))


async def test_a_plain_client_is_refused(tls_server: EmbeddedNatsServer) -> None:
    """TLS is required: a client that will not speak it never gets in."""
    plain = tls_server.url.replace("tls://", "nats://")
    with pytest.raises((ssl.SSLError, OSError, nats.errors.Error)):
        await nats.connect(
            plain, allow_reconnect=False, connect_timeout=2, tls=ssl.create_default_context()
        )


async def test_rotation_reloads_the_server_without_dropping_clients(
    tls_server: EmbeddedNatsServer, ca: EmbeddedSecretsBackend, files: CertificateFiles
) -> None:
    """The rotator renews at 2/3 of a short lifetime and reloads nats-server; requests in
    flight on old connections never fail, and new handshakes get the new certificate."""
    context = ssl.create_default_context(cafile=str(files.ca_file))
    old_serial = served_serial(tls_server.port, files.ca_file)
    responder = await connect(tls_server.url, context)
    requester = await connect(tls_server.url, context)

    async def echo(msg: Msg) -> None:
        await msg.respond(msg.data)

    await responder.subscribe("echo", cb=echo)
    rotated = asyncio.Event()

    async def reload(rotated_files: CertificateFiles) -> None:
        await tls_server.reload()
        rotated.set()

    rotator = CertificateRotator(
        ca,
        CertificateSpec.for_role(PlatformRole.NATS, ttl=timedelta(seconds=3)),
        files,
        on_rotated=reload,
    )
    await rotator.rotate()  # start from a 3 s certificate: the next renewal is ~2 s away
    first_rotation_serial = served_serial(tls_server.port, files.ca_file)
    rotated.clear()
    failures: list[BaseException] = []
    answered = 0

    async def load() -> None:
        nonlocal answered
        while not rotated.is_set():
            try:
                reply = await requester.request("echo", b"ping", timeout=2)
                assert reply.data == b"ping"
                answered += 1
            except Exception as exc:  # noqa: BLE001 - every failure is the finding
                failures.append(exc)
            await asyncio.sleep(0.005)

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(rotator.run())
            group.create_task(load())
            async with asyncio.timeout(10):
                await rotated.wait()
            rotator.stop()
        new_serial = served_serial(tls_server.port, files.ca_file)
        late = await connect(tls_server.url, context)
        await late.close()
        assert (await requester.request("echo", b"after", timeout=2)).data == b"after"
    finally:
        await requester.close()
        await responder.close()

    assert failures == []
    assert answered > 10
    assert rotator.rotations == 2
    assert len({old_serial, first_rotation_serial, new_serial}) == 3
    assert new_serial == format(
        x509.load_pem_x509_certificates(files.cert_file.read_bytes())[0].serial_number, "x"
    )


async def test_reload_of_a_stopped_server_is_unavailable(tmp_path: Path) -> None:
    """reload() needs a running server."""
    from kubefox.core.errors import UnavailableError

    with pytest.raises(UnavailableError):
        await EmbeddedNatsServer(tmp_path).reload()
