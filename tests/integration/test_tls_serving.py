"""httpsrv and the API serving TLS from the platform CA: who may connect, and rotation under load.

The certificates come from a real embedded CA; httpsrv routes through a real
nats-server to a frontend played by a nats-py subscription; the API runs over
real JetStream buckets. Rotation runs a ``CertificateRotator`` with a lifetime
of seconds while requests keep coming, on kept-alive and on fresh connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import httpx
import nats
import pytest
from cryptography import x509
from nats.aio.client import Client
from nats.aio.msg import Msg
from starlette.applications import Starlette

from kubefox.adapters.http import HttpServer, HttpsrvSettings
from kubefox.api import ApiServer, ApiSettings, create_app
from kubefox.core import codec, subjects
from kubefox.core.errors import InvalidError
from kubefox.core.events import CONTENT_TYPE_TEXT
from kubefox.router import ResourceView
from kubefox.security.certificates import (
    CertificateFiles,
    CertificateRotator,
    CertificateSpec,
    PlatformRole,
)
from kubefox.security.embedded import EmbeddedSecretsBackend
from kubefox.serving import ServerTls
from kubefox.store.jetstream import JetStreamStore
from kubefox.store.jetstream_objects import JetStreamArtifactStore
from kubefox.store.typed import TypedStore
from tests.unit.adapters.hello import (
    APP,
    DEPLOYMENT,
    FRONTEND,
    GREETING,
    NAMESPACE,
    platform_resource,
    write_hello_world,
)

pytestmark = pytest.mark.integration

HELLO = f"/qa/hello?kf-dep={DEPLOYMENT}&kf-ve=qa"
#: Lifetime of the certificates rotated under load: renewed every ~2 s (2/3 of it).
SHORT_TTL = timedelta(seconds=3)


class Serving(Protocol):
    started: asyncio.Event

    async def run(self) -> None: ...

    def stop(self) -> None: ...


def serial_of(der: bytes | None) -> str:
    assert der is not None
    return format(x509.load_der_x509_certificate(der).serial_number, "x")


def file_serial(files: CertificateFiles) -> str:
    return format(
        x509.load_pem_x509_certificates(files.cert_file.read_bytes())[0].serial_number, "x"
    )


def handshake_serial(url: str, context: ssl.SSLContext) -> str:
    """The serial of the certificate a fresh TLS handshake with ``url`` gets."""
    host, _, port = url.removeprefix("https://").rpartition(":")
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        return serial_of(tls.getpeercert(binary_form=True))


def response_serial(response: httpx.Response) -> str:
    """The serial of the certificate the connection that carried ``response`` got."""
    ssl_object = response.extensions["network_stream"].get_extra_info("ssl_object")
    return serial_of(ssl_object.getpeercert(binary_form=True))


def chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it was raised from or during, innermost last."""
    found = [exc]
    while (inner := found[-1].__cause__ or found[-1].__context__) is not None:
        found.append(inner)
    return found


def trusting(files: CertificateFiles) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(files.ca_file))


@contextlib.asynccontextmanager
async def running(server: Serving) -> AsyncIterator[None]:
    """Run ``server`` until the block ends; fail the test if it cannot start."""
    task = asyncio.create_task(server.run())
    started = asyncio.create_task(server.started.wait())
    done, _ = await asyncio.wait({task, started}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    if started not in done:
        started.cancel()
        if task in done:
            task.result()  # raises why it stopped
        task.cancel()
        pytest.fail("the server did not start within 10s")
    try:
        yield
    finally:
        server.stop()
        await asyncio.wait_for(task, timeout=10)


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def ca(tmp_path: Path) -> EmbeddedSecretsBackend:
    """The embedded platform CA, in a state directory of the test's own."""
    return EmbeddedSecretsBackend(tmp_path / "state")


async def issued(
    ca: EmbeddedSecretsBackend, tmp_path: Path, role: PlatformRole
) -> CertificateFiles:
    files = CertificateFiles.at(tmp_path / "state" / "tls", role.value)
    await CertificateRotator(ca, CertificateSpec.for_role(role), files).ensure()
    return files


@pytest.fixture
async def nats_client(nats_url: str) -> AsyncIterator[Client]:
    client = await nats.connect(nats_url)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def httpsrv_settings(nats_url: str, nats_client: Client) -> AsyncIterator[HttpsrvSettings]:
    """httpsrv settings over hello-world resources in a fresh bucket; the frontend answers."""
    platform = f"t{uuid.uuid4().hex[:12]}"
    bucket = f"test-{uuid.uuid4().hex}"
    store = await JetStreamStore.open(nats_client, bucket=bucket)
    await write_hello_world(
        TypedStore(store, namespace=NAMESPACE), platform=platform_resource(platform)
    )

    async def greet(msg: Msg) -> None:
        matched = codec.decode_matched(msg.data)
        reply = matched.event.reply(
            source=FRONTEND,
            content=GREETING.encode(),
            content_type=CONTENT_TYPE_TEXT,
            values={"statusCode": 200},
        )
        await msg.respond(codec.encode(reply))

    subscription = await nats_client.subscribe(
        subjects.for_component(platform, FRONTEND),
        queue=subjects.component_queue(platform, APP, FRONTEND.name, FRONTEND.hash),
        cb=greet,
    )
    await nats_client.flush()
    try:
        yield HttpsrvSettings(
            platform=platform, nats_url=nats_url, bucket=bucket, timeout=5.0, shutdown_grace=5.0
        )
    finally:
        await subscription.unsubscribe()


@contextlib.asynccontextmanager
async def api_server(nats_url: str, tls: ServerTls | None) -> AsyncIterator[ApiServer]:
    """The API over fresh JetStream buckets, serving until the block ends."""
    suffix = uuid.uuid4().hex
    store = await JetStreamStore.connect(nats_url, bucket=f"api-{suffix}")
    artifacts = await JetStreamArtifactStore.connect(nats_url, bucket=f"art-{suffix}")
    view = ResourceView(store, namespace=NAMESPACE)
    follower = asyncio.create_task(view.run())
    closing = asyncio.Event()
    settings = ApiSettings(shutdown_grace=1.0)
    app = create_app(
        store=store,
        artifacts=artifacts,
        view=view,
        platform="demo",
        namespace=NAMESPACE,
        settings=settings,
        closing=closing,
    )
    server = ApiServer(settings, app, closing=closing, tls=tls)
    try:
        await view.wait_ready()
        async with running(server):
            yield server
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        await artifacts.aclose()
        await store.aclose()


# -- presenting the CA's certificate ---------------------------------------------------------


async def test_httpsrv_serves_https_from_the_ca_and_plain_http_beside_it(
    ca: EmbeddedSecretsBackend, tmp_path: Path, httpsrv_settings: HttpsrvSettings
) -> None:
    """With a certificate, httpsrv answers on two ports: HTTPS with the CA's leaf, and HTTP."""
    files = await issued(ca, tmp_path, PlatformRole.HTTPSRV)
    settings = httpsrv_settings.model_copy(
        update={"tls_cert_file": files.cert_file, "tls_key_file": files.key_file}
    )
    server = HttpServer(settings)
    async with (
        running(server),
        httpx.AsyncClient(verify=trusting(files), timeout=10) as client,
    ):
        assert server.https_url is not None
        secure = await client.get(server.https_url + HELLO)
        plain = await client.get(server.url + HELLO)

    assert (secure.status_code, secure.text) == (200, GREETING)
    assert (plain.status_code, plain.text) == (200, GREETING)
    assert server.https_url.startswith("https://127.0.0.1:")
    assert server.url.startswith("http://127.0.0.1:")
    assert response_serial(secure) == file_serial(files)
    assert "network_stream" not in plain.extensions or (
        plain.extensions["network_stream"].get_extra_info("ssl_object") is None
    )


async def test_httpsrv_without_a_certificate_serves_plain_http_only(
    httpsrv_settings: HttpsrvSettings,
) -> None:
    """No certificate files, no context: one plain listener and no HTTPS URL."""
    server = HttpServer(httpsrv_settings)
    async with running(server), httpx.AsyncClient(timeout=10) as client:
        response = await client.get(server.url + HELLO)

    assert server.https_url is None
    assert response.status_code == 200


async def test_the_api_with_a_certificate_serves_https_only(
    ca: EmbeddedSecretsBackend, tmp_path: Path, nats_url: str
) -> None:
    """The API presents the CA's leaf; a plain HTTP request to its port gets no answer."""
    files = await issued(ca, tmp_path, PlatformRole.API)
    async with (
        api_server(nats_url, ServerTls.from_files(files)) as server,
        httpx.AsyncClient(verify=trusting(files), timeout=10) as client,
    ):
        secure = await client.get(f"{server.url}/openapi.json")
        with pytest.raises(httpx.TransportError):
            await client.get(server.url.replace("https://", "http://") + "/openapi.json")

    assert server.url.startswith("https://127.0.0.1:")
    assert secure.status_code == 200
    assert response_serial(secure) == file_serial(files)


async def test_the_api_reads_its_certificate_files_from_its_settings(
    ca: EmbeddedSecretsBackend, tmp_path: Path
) -> None:
    """KUBEFOX_API_TLS_CERT_FILE/KEY_FILE are enough for HTTPS; both or neither."""
    files = await issued(ca, tmp_path, PlatformRole.API)
    settings = ApiSettings(tls_cert_file=files.cert_file, tls_key_file=files.key_file)
    server = ApiServer(settings, Starlette(), closing=asyncio.Event())

    assert server.tls is not None
    with pytest.raises(ValueError, match="both or neither"):
        ApiSettings(tls_cert_file=files.cert_file)


async def test_a_certificate_that_does_not_load_is_invalid(tmp_path: Path) -> None:
    """Missing files are an InvalidError naming them, before anything listens."""
    with pytest.raises(InvalidError, match="cannot load the TLS certificate"):
        ServerTls(tmp_path / "missing.crt", tmp_path / "missing.key")


# -- who may connect ------------------------------------------------------------------------


async def test_clients_without_the_ca_are_refused_by_httpsrv_and_the_api(
    ca: EmbeddedSecretsBackend, tmp_path: Path, httpsrv_settings: HttpsrvSettings, nats_url: str
) -> None:
    """The system trust store, or another platform's CA, does not vouch for these servers."""
    http_files = await issued(ca, tmp_path, PlatformRole.HTTPSRV)
    api_files = await issued(ca, tmp_path, PlatformRole.API)
    other = EmbeddedSecretsBackend(tmp_path / "other")
    other_bundle = tmp_path / "other.pem"
    other_bundle.write_text(await other.ca_bundle())
    settings = httpsrv_settings.model_copy(
        update={"tls_cert_file": http_files.cert_file, "tls_key_file": http_files.key_file}
    )
    server = HttpServer(settings)
    untrusting = [ssl.create_default_context(), ssl.create_default_context(cafile=other_bundle)]
    async with running(server), api_server(nats_url, ServerTls.from_files(api_files)) as api:
        assert server.https_url is not None
        for url in (server.https_url + HELLO, f"{api.url}/openapi.json"):
            for context in untrusting:
                async with httpx.AsyncClient(verify=context, timeout=10) as client:
                    with pytest.raises(httpx.ConnectError) as refused:
                        await client.get(url)
                assert any(
                    isinstance(e, ssl.SSLCertVerificationError) for e in chain(refused.value)
                )
        for base in (server.https_url, api.url):
            with pytest.raises(ssl.SSLCertVerificationError):
                await asyncio.to_thread(handshake_serial, base, untrusting[0])
        # ...and the servers still serve those that trust the CA.
        async with httpx.AsyncClient(verify=trusting(http_files), timeout=10) as client:
            after = await client.get(server.https_url + HELLO)

    assert after.status_code == 200


# -- rotation -----------------------------------------------------------------------------


class Load:
    """Requests in a loop until stopped: on kept-alive connections and on fresh ones."""

    def __init__(self, url: str, context: ssl.SSLContext) -> None:
        self.url = url
        self.context = context
        self.answered = 0
        self.failures: list[BaseException | str] = []
        #: Serials presented to the connections that carried the fresh-connection requests.
        self.serials: list[str] = []
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self, *, kept_alive: int = 4, fresh: int = 2) -> None:
        async with (
            httpx.AsyncClient(verify=self.context, timeout=10) as pooled,
            asyncio.TaskGroup() as tasks,
        ):
            for _ in range(kept_alive):
                tasks.create_task(self._loop(pooled, record_serial=False))
            for _ in range(fresh):
                tasks.create_task(self._fresh_loop())

    async def _fresh_loop(self) -> None:
        # No keep-alive: every request is a new connection and a new handshake.
        limits = httpx.Limits(max_keepalive_connections=0)
        while not self._stop.is_set():
            async with httpx.AsyncClient(verify=self.context, timeout=10, limits=limits) as client:
                await self._one(client, record_serial=True)

    async def _loop(self, client: httpx.AsyncClient, *, record_serial: bool) -> None:
        while not self._stop.is_set():
            await self._one(client, record_serial=record_serial)

    async def _one(self, client: httpx.AsyncClient, *, record_serial: bool) -> None:
        try:
            response = await client.get(self.url)
        except Exception as exc:  # noqa: BLE001 - every failure is the finding
            self.failures.append(exc)
            return
        if response.status_code != 200:
            self.failures.append(f"{response.status_code}: {response.text}")
            return
        self.answered += 1
        if record_serial:
            self.serials.append(response_serial(response))


async def rotate_under_load(
    ca: EmbeddedSecretsBackend,
    files: CertificateFiles,
    tls: ServerTls,
    *,
    role: PlatformRole,
    base_url: str,
    path: str,
    rotations: int = 3,
) -> tuple[Load, CertificateRotator, list[str]]:
    """Rotate ``files`` ``rotations`` times with a short lifetime while ``path`` is under load.

    The load goes on until the first short-lived certificate has expired, so a
    server that kept presenting it would fail new handshakes.
    """
    enough = asyncio.Event()

    async def reload(rotated: CertificateFiles) -> None:
        await tls.on_rotated(rotated)
        if rotator.rotations > rotations:
            enough.set()

    rotator = CertificateRotator(
        ca, CertificateSpec.for_role(role, ttl=SHORT_TTL), files, on_rotated=reload
    )
    await rotator.rotate()  # now serving a 3 s certificate: the next renewal is ~2 s away
    first = x509.load_pem_x509_certificates(files.cert_file.read_bytes())[0]
    handshakes = [file_serial(files)]
    load = Load(base_url + path, trusting(files))
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(load.run())
        renewing = tasks.create_task(rotator.run())
        async with asyncio.timeout(30):
            await enough.wait()
        # Past the first certificate's end: only a rotated one can be presented now.
        expired_in = (first.not_valid_after_utc - datetime.now(UTC)).total_seconds()
        await asyncio.sleep(max(expired_in, 0) + 0.3)
        rotator.stop()
        load.stop()
        await renewing
    handshakes.append(await asyncio.to_thread(handshake_serial, base_url, load.context))
    return load, rotator, handshakes


async def test_httpsrv_rotates_its_certificate_under_load_without_a_failed_request(
    ca: EmbeddedSecretsBackend, tmp_path: Path, httpsrv_settings: HttpsrvSettings
) -> None:
    """Several renewals of a 3 s certificate, past its expiry, while requests keep coming:
    none fails, fresh connections see the serial change, and the last one is presented."""
    files = await issued(ca, tmp_path, PlatformRole.HTTPSRV)
    tls = ServerTls.from_files(files)
    server = HttpServer(httpsrv_settings, tls=tls)
    async with running(server):
        assert server.https_url is not None
        load, rotator, handshakes = await rotate_under_load(
            ca, files, tls, role=PlatformRole.HTTPSRV, base_url=server.https_url, path=HELLO
        )

    assert load.failures == []
    assert load.answered > 20
    assert rotator.rotations >= 4
    assert tls.reloads == rotator.rotations
    assert len(set(load.serials)) >= 3
    assert handshakes[0] != handshakes[-1] == file_serial(files)


async def test_the_api_rotates_its_certificate_under_load_without_a_failed_request(
    ca: EmbeddedSecretsBackend, tmp_path: Path, nats_url: str
) -> None:
    """The same for the API: its one HTTPS listener keeps one context, reloaded in place."""
    files = await issued(ca, tmp_path, PlatformRole.API)
    tls = ServerTls.from_files(files)
    async with api_server(nats_url, tls) as server:
        load, rotator, handshakes = await rotate_under_load(
            ca, files, tls, role=PlatformRole.API, base_url=server.url, path="/openapi.json"
        )

    assert load.failures == []
    assert load.answered > 20
    assert tls.reloads == rotator.rotations >= 4
    assert len(set(load.serials)) >= 3
    assert handshakes[0] != handshakes[-1] == file_serial(files)


async def test_files_rotated_elsewhere_are_followed_by_watching(
    ca: EmbeddedSecretsBackend, tmp_path: Path
) -> None:
    """watch() reloads once the certificate file changes (another process renewed it)."""
    files = await issued(ca, tmp_path, PlatformRole.HTTPSRV)
    tls = ServerTls.from_files(files)
    watching = asyncio.create_task(tls.watch(interval=0.05))
    try:
        await CertificateRotator(ca, CertificateSpec.for_role(PlatformRole.HTTPSRV), files).rotate()
        for _ in range(200):  # 10 s at most
            if tls.reloads:
                break
            await asyncio.sleep(0.05)
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching

    assert tls.reloads == 1
    assert not tls.changed()


async def test_a_pair_that_does_not_load_keeps_the_old_certificate(
    ca: EmbeddedSecretsBackend, tmp_path: Path, httpsrv_settings: HttpsrvSettings
) -> None:
    """A key that does not match its certificate is refused; the server keeps presenting the
    certificate it had, and new handshakes still succeed."""
    files = await issued(ca, tmp_path, PlatformRole.HTTPSRV)
    before = file_serial(files)
    tls = ServerTls.from_files(files)
    other = await issued(ca, tmp_path, PlatformRole.API)
    files.key_file.write_bytes(other.key_file.read_bytes())  # the wrong key
    files.cert_file.write_bytes(files.cert_file.read_bytes())

    server = HttpServer(httpsrv_settings, tls=tls)
    async with running(server):
        assert server.https_url is not None
        reloaded = tls.reload()
        serial = await asyncio.to_thread(handshake_serial, server.https_url, trusting(files))

    assert reloaded is False
    assert serial == before
