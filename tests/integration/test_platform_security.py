"""The embedded platform with security on: its nats-server, its roles' users, its tenants.

No component process runs here (``tests/e2e/test_security.py`` covers those);
these tests hold what a client of the platform's nats-server meets.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from kubefox.broker.natsio_transport import NatsioTransport
from kubefox.core import subjects
from kubefox.core.nats_options import NatsConnectOptions
from kubefox.platform import EmbeddedPlatform, PlatformSettings
from kubefox.platform.security import new_identity
from kubefox.security import SecretsSettings
from kubefox.security.certificates import PlatformRole, read_certificate
from kubefox.security.nats_auth import tenant_account, unrestricted
from kubefox.security.private_files import write_atomic
from tests.integration.test_security_openbao import BaoServer, running_bao

pytestmark = pytest.mark.integration


async def _quiet(exc: Exception) -> None:
    pass


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[EmbeddedPlatform]:
    """A platform with the default settings (security on), telemetry off to keep it quick."""
    settings = PlatformSettings.model_validate(
        {"state_dir": tmp_path / "state", "shutdown_grace": 3.0}
    )
    async with EmbeddedPlatform(settings) as running:
        yield running


async def _refused(url: str, tls: ssl.SSLContext | None = None) -> str:
    client = Client()
    try:
        await client.connect(
            url, allow_reconnect=False, connect_timeout=3, error_cb=_quiet, tls=tls
        )
    except (nats.errors.Error, OSError, ssl.SSLError) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        # nats-py's close() waits forever on a connection refused during the TLS
        # handshake: drop the socket instead
        if client._transport is not None:
            client._transport.close()  # type: ignore[no-untyped-call]
    pytest.fail("the server accepted the client")


async def test_a_client_without_the_platform_ca_cannot_connect(
    platform: EmbeddedPlatform,
) -> None:
    """The server speaks only TLS with the platform CA's certificate, and wants a user."""
    admin = await platform.nats_options()
    no_tls = platform.nats.url.replace("tls://", "nats://")
    system_trust = ssl.create_default_context()

    without_ca = await _refused(platform.nats.url, tls=system_trust)
    plain = await _refused(no_tls)
    without_user = await _refused(platform.nats.url, tls=admin.ssl_context())

    assert "CERTIFICATE_VERIFY_FAILED" in without_ca
    assert "CERTIFICATE_VERIFY_FAILED" in plain  # nats-py upgrades to TLS, the CA still counts
    assert "authorization violation" in without_user.lower()
    client = await nats.connect(**admin.nats_py_kwargs())  # the CA and a user: accepted
    await client.close()


async def test_the_ca_bundle_and_role_certificates_live_in_the_state_dir(
    platform: EmbeddedPlatform,
) -> None:
    """certificate() writes a leaf for the role, verifiable with ca_file, before returning."""
    security = platform.security
    rotator = await security.certificate(PlatformRole.API, hostnames=("api.local",))

    info = read_certificate(rotator.files)
    context = ssl.create_default_context(cafile=str(security.ca_file))

    assert info is not None
    assert "api.local" in info.dns_names
    assert rotator.files.cert_file.parent == platform.state_dir / "security" / "tls"
    assert rotator.files.ca_file == security.ca_file
    assert context.cert_store_stats()["x509_ca"] >= 1


async def test_a_platform_roles_refusals_are_logged_and_counted(
    platform: EmbeddedPlatform,
) -> None:
    """A broker publishing as a component is refused; the platform counts it by role."""
    options = await platform.security.nats_options(PlatformRole.BROKER, identity=new_identity())
    transport = await NatsioTransport.connect(options)
    before = platform.security.refusals["broker"]
    try:
        await transport.publish(subjects.broker("demo", "app", "frontend", "abc", "i1"), b"x")
        async with asyncio.timeout(5):
            while platform.security.refusals["broker"] == before:  # noqa: ASYNC110 - a counter
                await asyncio.sleep(0.02)
    finally:
        await transport.close()

    assert platform.security.refusals["broker"] == before + 1
    assert 'kubefox_nats_permission_refusals{role="broker"}' in platform.metrics_text()


async def test_two_tenants_on_one_server_cannot_see_each_other(
    platform: EmbeddedPlatform, tmp_path: Path
) -> None:
    """Another tenant's account, even with every permission, sees no subject and no bucket."""
    security = platform.security
    other = tenant_account("globex")
    await security.authority.push(security._system, other)  # type: ignore[arg-type]
    user = await security.authority.issue_user(other, "globex-admin", unrestricted())
    creds = tmp_path / "globex.creds"
    write_atomic(creds, user.creds.encode())
    globex_options = NatsConnectOptions(
        url=platform.nats.url, ca_file=security.ca_file, creds_file=creds
    )
    globex = await nats.connect(**globex_options.nats_py_kwargs(), error_cb=_quiet)
    default = await nats.connect(**(await platform.nats_options()).nats_py_kwargs())
    try:
        spy = await globex.subscribe(">")
        control = await default.subscribe("kf.>")
        await globex.flush()
        await default.flush()
        await default.publish(subjects.component("demo", "app", "frontend", "abc"), b"secret")
        await default.flush()
        assert (await control.next_msg(timeout=3)).data == b"secret"
        with pytest.raises(nats.errors.TimeoutError):
            await spy.next_msg(timeout=0.5)
        with pytest.raises(nats.js.errors.NotFoundError):  # the platform's buckets are not there
            await globex.jetstream(timeout=2).key_value(platform.settings.bucket)
        await default.subscribe(">", cb=_answer)
        await default.flush()
        with pytest.raises((nats.errors.NoRespondersError, nats.errors.TimeoutError)):
            await globex.request(subjects.component("demo", "app", "x", "y"), b"", timeout=0.5)
    finally:
        await globex.close()
        await default.close()


async def _answer(msg: Msg) -> None:
    if msg.reply:
        await msg.respond(b"default")


@pytest.fixture(scope="module")
def bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaoServer]:
    with running_bao(tmp_path_factory.mktemp("bao")) as server:
        yield server


async def test_openbao_can_be_the_platforms_ca_by_configuration(
    bao: BaoServer, tmp_path: Path
) -> None:
    """secrets.url=openbao://...: nats-server's certificate comes from OpenBao's CA."""
    settings = PlatformSettings.model_validate(
        {
            "state_dir": tmp_path / "state",
            "shutdown_grace": 3.0,
            "telemetry": False,
            "secrets": SecretsSettings(
                url=bao.address.replace("http://", "openbao://"), token=bao.token
            ),
        }
    )
    async with EmbeddedPlatform(settings) as running:
        client = await nats.connect(**(await running.nats_options()).nats_py_kwargs())
        await client.close()
        bundle = running.security.ca_file.read_text()
        served = (running.state_dir / "security" / "tls" / "nats.crt").read_text()

    assert bundle == await _bao_bundle(bao)
    assert served.count("BEGIN CERTIFICATE") >= 1
    assert not (tmp_path / "state" / "security" / "pki").exists()  # no embedded CA made


async def _bao_bundle(bao: BaoServer) -> str:
    from kubefox.security import open_secrets_backend

    backend = await open_secrets_backend(
        SecretsSettings(url=bao.address.replace("http://", "openbao://"), token=bao.token)
    )
    try:
        return await backend.ca_bundle()
    finally:
        await backend.aclose()
