"""kubefox.natsio against a real nats-server: messaging, TLS, operator-mode creds, reconnects."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kubefox import natsio
from kubefox.core.nats_options import NatsConnectOptions
from kubefox.natsio import Client, Headers, Payload
from kubefox.security.certificates import (
    CertificateFiles,
    CertificateRotator,
    CertificateSpec,
    PlatformRole,
)
from kubefox.security.embedded import EmbeddedSecretsBackend
from kubefox.security.nats_auth import NatsAuthority, unrestricted
from kubefox.security.nats_jwt import Permissions
from kubefox.security.private_files import write_atomic
from kubefox.store.natsd import EmbeddedNatsServer, NatsTls
from tests.integration.operated_nats import (
    OperatedServer,
    operated_server_fixture,  # noqa: F401 - one server for the module
)
from tests.servers import running_nats_server, start_nats_server

pytestmark = pytest.mark.integration


class Inbox:
    """A handler that keeps what it receives, with a way to wait for the n-th message."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str, bytes, Headers | None]] = []
        self._changed = asyncio.Event()

    def __call__(self, subject: str, reply: str, data: Payload, headers: Headers | None) -> None:
        self.messages.append((subject, reply, bytes(data), headers))
        self._changed.set()

    async def wait_for(self, count: int, within: float = 3.0) -> None:
        async with asyncio.timeout(within):
            while len(self.messages) < count:
                self._changed.clear()
                await self._changed.wait()

    @property
    def data(self) -> list[bytes]:
        return [message[2] for message in self.messages]


class Errors:
    """An ``on_error`` callback that keeps the errors, with a wait for a kind of them."""

    def __init__(self) -> None:
        self.seen: list[Exception] = []

    def __call__(self, exc: Exception) -> None:
        self.seen.append(exc)

    async def wait_for(
        self, kind: type[Exception], text: str = "", within: float = 3.0
    ) -> Exception:
        async with asyncio.timeout(within):
            while True:
                for exc in self.seen:
                    if isinstance(exc, kind) and text in str(exc):
                        return exc
                await asyncio.sleep(0.01)


@pytest.fixture
async def client(nats_url: str) -> AsyncIterator[Client]:
    client = await natsio.connect(NatsConnectOptions(url=nats_url, name="natsio-test"))
    yield client
    await client.close()


@pytest.fixture
async def other(nats_url: str) -> AsyncIterator[Client]:
    client = await natsio.connect(NatsConnectOptions(url=nats_url, name="natsio-other"))
    yield client
    await client.close()


def echo(client: Client) -> natsio.Handler:
    """A responder that answers every request with its own data and headers."""

    def answer(subject: str, reply: str, data: Payload, headers: Headers | None) -> None:
        client.publish(reply, data, headers=headers)

    return answer


# ---- messaging ---------------------------------------------------------------------------


async def test_a_published_message_reaches_a_subscriber(client: Client, other: Client) -> None:
    """Subject, reply subject and data arrive as sent, from another connection."""
    inbox = Inbox()
    other.subscribe("natsio.pubsub.*", inbox)
    await other.flush()

    client.publish("natsio.pubsub.a", b"one", reply="back.here")
    client.publish("natsio.pubsub.b", bytearray(b"two"))
    client.publish("natsio.pubsub.c", memoryview(b"xthreex")[1:-1])
    await inbox.wait_for(3)

    assert inbox.messages == [
        ("natsio.pubsub.a", "back.here", b"one", None),
        ("natsio.pubsub.b", "", b"two", None),
        ("natsio.pubsub.c", "", b"three", None),
    ]


class _Writes:
    """Counts the client's socket writes (the write policy is what these tests are about)."""

    def __init__(self, client: Client) -> None:
        transport = client._transport  # private: the socket writes are the subject here
        assert transport is not None
        self.count = 0
        write = transport.write

        def counted(data: Any) -> None:
            self.count += 1
            write(data)

        transport.write = counted  # type: ignore[method-assign]


async def test_an_alone_publish_on_a_quiet_connection_leaves_at_once(
    client: Client, other: Client
) -> None:
    """``at_once`` writes before the loop turns; right after, a busy connection gathers again."""
    inbox = Inbox()
    other.subscribe("natsio.alone.*", inbox)
    await other.flush()
    await asyncio.sleep(2 * natsio.client.QUIET_NS / 1e9)
    writes = _Writes(client)

    client.publish("natsio.alone.a", b"one", at_once=True)
    assert writes.count == 1  # on the socket already, no turn of the loop waited for
    client.publish("natsio.alone.b", b"two", at_once=True)  # busy: just written
    client.publish("natsio.alone.c", b"three")
    assert writes.count == 1
    await inbox.wait_for(3)

    assert writes.count == 2  # the two later ones in one write at the turn's end
    assert inbox.data == [b"one", b"two", b"three"]


async def test_a_lone_request_leaves_at_once_and_concurrent_ones_are_gathered(
    client: Client, other: Client
) -> None:
    """A request with no other in flight skips the turn; many in flight share one write."""
    other.subscribe("natsio.lone", echo(other))
    await other.flush()
    await client.request("natsio.lone", b"warm", timeout=2)  # the inbox subscription exists
    await asyncio.sleep(2 * natsio.client.QUIET_NS / 1e9)
    writes = _Writes(client)

    lone = asyncio.create_task(client.request("natsio.lone", b"lone", timeout=2))
    await asyncio.sleep(0)  # the task's first step: the request is sent
    assert writes.count == 1
    assert bytes((await lone).data) == b"lone"

    calls = [client.request("natsio.lone", str(n).encode(), timeout=2) for n in range(5)]
    answers = await asyncio.gather(*calls)

    assert [bytes(answer.data) for answer in answers] == [b"0", b"1", b"2", b"3", b"4"]
    assert writes.count <= 3  # the lone first at most, then the rest gathered


async def test_a_queue_group_shares_the_messages(client: Client, other: Client) -> None:
    """Each message goes to one member of the group; a plain subscriber gets them all."""
    first, second, everything = Inbox(), Inbox(), Inbox()
    client.subscribe("natsio.queue", first, queue="workers")
    other.subscribe("natsio.queue", second, queue="workers")
    other.subscribe("natsio.queue", everything)
    await client.flush()
    await other.flush()

    for number in range(200):
        client.publish("natsio.queue", str(number).encode())
    await everything.wait_for(200)
    await client.flush()
    await other.flush()

    assert len(first.messages) + len(second.messages) == 200
    assert first.messages
    assert second.messages
    assert sorted(first.data + second.data) == sorted(everything.data)


async def test_headers_travel_with_the_message(client: Client, other: Client) -> None:
    inbox = Inbox()
    other.subscribe("natsio.headers", inbox)
    await other.flush()

    client.publish("natsio.headers", b"body", headers={"Kf-Type": "io.kubefox.http", "X": "a:b"})
    client.publish("natsio.headers", b"", headers={"Only": "headers"})
    await inbox.wait_for(2)

    assert inbox.messages[0][2:] == (b"body", {"Kf-Type": "io.kubefox.http", "X": "a:b"})
    assert inbox.messages[1][2:] == (b"", {"Only": "headers"})


async def test_unsubscribe_stops_the_deliveries(client: Client) -> None:
    inbox = Inbox()
    sub = client.subscribe("natsio.unsub", inbox)
    await client.flush()
    client.publish("natsio.unsub", b"1")
    await inbox.wait_for(1)

    sub.unsubscribe()
    sub.unsubscribe()  # idempotent
    client.publish("natsio.unsub", b"2")
    await client.flush()

    assert not sub.active
    assert inbox.data == [b"1"]


async def test_a_request_gets_the_reply(client: Client, other: Client) -> None:
    """Many requests at once, each gets its own reply, headers included."""
    other.subscribe("natsio.echo", echo(other), queue="echo")
    await other.flush()

    replies = await asyncio.gather(
        *(client.request("natsio.echo", f"{n}".encode(), timeout=2) for n in range(50))
    )
    with_headers = await client.request("natsio.echo", b"h", timeout=2, headers={"A": "1"})

    assert [bytes(reply.data) for reply in replies] == [f"{n}".encode() for n in range(50)]
    assert with_headers.headers == {"A": "1"}
    assert with_headers.subject.startswith("_INBOX.")


async def test_a_request_nobody_listens_to_fails_at_once(client: Client) -> None:
    """The server's no-responders status is its own error, well before the timeout."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(natsio.NoRespondersError, match=r"natsio\.nobody"):
        await client.request("natsio.nobody", b"?", timeout=5)
    assert loop.time() - started < 1


async def test_a_request_without_reply_times_out(client: Client, other: Client) -> None:
    """A subscriber that never answers: RequestTimeoutError, which is also a TimeoutError."""
    other.subscribe("natsio.silent", Inbox())
    await other.flush()
    with pytest.raises(natsio.RequestTimeoutError) as raised:
        await client.request("natsio.silent", b"?", timeout=0.2)
    assert isinstance(raised.value, TimeoutError)


async def test_a_request_uses_the_inbox_prefix(nats_url: str) -> None:
    """Operator-mode permissions allow a component only its own inbox prefix."""
    options = NatsConnectOptions(url=nats_url, inbox_prefix="_INBOX.kubefox.comp")
    async with _connected(options) as client:
        client.subscribe("natsio.prefixed", echo(client))
        await client.flush()
        reply = await client.request("natsio.prefixed", b"x", timeout=2)
    assert reply.subject.startswith("_INBOX.kubefox.comp.")


async def test_a_message_above_max_payload_is_refused(tmp_path: Path) -> None:
    """The client checks the server's max_payload itself, headers included, and says so."""
    with running_nats_server(tmp_path, max_payload=1024) as server:
        async with _connected(NatsConnectOptions(url=server.url)) as client:
            assert client.max_payload == 1024
            client.publish("natsio.big", b"x" * 1024)
            with pytest.raises(natsio.MaxPayloadError, match="1025 bytes") as raised:
                client.publish("natsio.big", b"x" * 1025)
            assert isinstance(raised.value, ValueError)
            with pytest.raises(natsio.MaxPayloadError):
                client.publish("natsio.big", b"x" * 1020, headers={"A": "b"})
            with pytest.raises(natsio.MaxPayloadError):
                await client.request("natsio.big", b"x" * 2048, timeout=1)
            await client.flush()  # the connection is still fine


async def test_a_big_payload_arrives_whole(client: Client, other: Client) -> None:
    """4 MiB through many socket reads, the same bytes out."""
    inbox = Inbox()
    other.subscribe("natsio.large", inbox)
    await other.flush()
    payload = os.urandom(4 * 1024 * 1024)
    client.publish("natsio.large", payload)
    await client.wait_writable()
    await inbox.wait_for(1, within=10)
    assert inbox.data == [payload]


async def test_a_handler_error_is_reported_and_the_rest_delivered(nats_url: str) -> None:
    errors = Errors()
    inbox = Inbox()

    def broken(subject: str, reply: str, data: Payload, headers: Headers | None) -> None:
        raise RuntimeError(f"broken on {bytes(data)!r}")

    async with _connected(NatsConnectOptions(url=nats_url), on_error=errors) as client:
        client.subscribe("natsio.broken", broken)
        client.subscribe("natsio.broken", inbox)
        await client.flush()
        client.publish("natsio.broken", b"1")
        client.publish("natsio.broken", b"2")
        await inbox.wait_for(2)

    assert [str(exc) for exc in errors.seen] == ["broken on b'1'", "broken on b'2'"]


async def test_drain_delivers_what_was_sent_then_closes(client: Client, other: Client) -> None:
    """What reached the server before the drain is delivered; then the client is closed."""
    inbox = Inbox()
    other.subscribe("natsio.drain", inbox)
    await other.flush()
    for number in range(100):
        client.publish("natsio.drain", b"%d" % number)
    await client.flush()

    await other.drain()

    assert len(inbox.messages) == 100
    assert other.is_closed
    assert not other.is_connected
    with pytest.raises(natsio.ConnectionClosedError):
        other.publish("natsio.drain", b"late")
    with pytest.raises(natsio.ConnectionClosedError):
        await other.flush()
    await other.close()  # idempotent


async def test_close_fails_pending_requests(client: Client, other: Client) -> None:
    other.subscribe("natsio.pending", Inbox())
    await other.flush()
    pending = asyncio.ensure_future(client.request("natsio.pending", b"?", timeout=5))
    await asyncio.sleep(0.05)
    await client.close()
    with pytest.raises(natsio.ConnectionClosedError):
        await pending


async def test_no_server_is_a_connect_error(tmp_path: Path) -> None:
    """A refused TCP connection to every server of the list: ConnectError from the last one."""
    with running_nats_server(tmp_path) as server:
        url = server.url
    with pytest.raises(natsio.ConnectError) as raised:
        await natsio.connect(NatsConnectOptions(url=f"{url},{url}"), connect_timeout=1)
    assert isinstance(raised.value.__cause__, OSError)


# ---- reconnects --------------------------------------------------------------------------


async def test_the_client_reconnects_after_the_server_restarts(tmp_path: Path) -> None:
    """Down: callbacks and the event say so, publishes wait in the buffer. Up: all is back."""
    server = start_nats_server(tmp_path)
    down, up = asyncio.Event(), asyncio.Event()
    inbox = Inbox()
    try:
        async with _connected(
            NatsConnectOptions(url=server.url),
            reconnect_wait=0.05,
            on_disconnected=down.set,
            on_reconnected=up.set,
        ) as client:
            client.subscribe("natsio.restart", inbox)
            client.subscribe("natsio.restart.echo", echo(client))
            await client.flush()

            await server.stop()
            await asyncio.wait_for(down.wait(), 5)
            assert (client.is_connected, client.connected.is_set()) == (False, False)
            client.publish("natsio.restart", b"while down")
            late = client.subscribe("natsio.restart", inbox)  # made on the reconnect

            await server.start()
            await asyncio.wait_for(up.wait(), 10)
            assert (client.is_connected, client.connected.is_set()) == (True, True)
            await inbox.wait_for(2)
            reply = await client.request("natsio.restart.echo", b"again", timeout=2)
            assert late.active
    finally:
        server.stop_sync()

    assert inbox.data == [b"while down", b"while down"]
    assert bytes(reply.data) == b"again"


async def test_a_server_that_stops_answering_is_dropped_and_found_again(tmp_path: Path) -> None:
    """Unanswered PINGs: the connection is stale, dropped, and made again once it answers."""
    server = start_nats_server(tmp_path)
    down, up = asyncio.Event(), asyncio.Event()
    errors = Errors()
    pid = server.pid
    assert pid is not None
    try:
        async with _connected(
            NatsConnectOptions(url=server.url),
            ping_interval=0.1,
            max_outstanding_pings=2,
            reconnect_wait=0.05,
            connect_timeout=0.5,
            on_error=errors,
            on_disconnected=down.set,
            on_reconnected=up.set,
        ) as client:
            os.kill(pid, signal.SIGSTOP)
            try:
                await asyncio.wait_for(down.wait(), 5)
            finally:
                os.kill(pid, signal.SIGCONT)
            await asyncio.wait_for(up.wait(), 10)
            await client.flush()
    finally:
        server.stop_sync()
    stale = await errors.wait_for(natsio.ConnectionClosedError)
    assert "stale connection" in str(stale)


async def test_publishes_beyond_the_reconnect_buffer_are_refused(tmp_path: Path) -> None:
    server = start_nats_server(tmp_path)
    down = asyncio.Event()
    try:
        async with _connected(
            NatsConnectOptions(url=server.url),
            reconnect_buffer_size=100,
            reconnect_wait=0.05,
            on_disconnected=down.set,
        ) as client:
            await server.stop()
            await asyncio.wait_for(down.wait(), 5)
            client.publish("natsio.buffer", b"x" * 50)
            with pytest.raises(natsio.OutboundBufferFullError):
                client.publish("natsio.buffer", b"x" * 50)
    finally:
        server.stop_sync()


# ---- TLS ---------------------------------------------------------------------------------


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[EmbeddedNatsServer, Path]]:
    ca = EmbeddedSecretsBackend(tmp_path / "state")
    files = CertificateFiles.at(tmp_path / "state" / "tls", "nats")
    await CertificateRotator(ca, CertificateSpec.for_role(PlatformRole.NATS), files).ensure()
    server = EmbeddedNatsServer(
        tmp_path / "nats", tls=NatsTls(cert_file=files.cert_file, key_file=files.key_file)
    )
    async with server:
        yield server, files.ca_file


async def test_tls_with_the_platform_ca(tls_server: tuple[EmbeddedNatsServer, Path]) -> None:
    """The server requires TLS; trusting its CA is all the client needs."""
    server, ca_file = tls_server
    options = NatsConnectOptions(url=server.url, ca_file=ca_file)
    async with _connected(options) as client:
        client.subscribe("natsio.tls", echo(client))
        await client.flush()
        reply = await client.request("natsio.tls", b"secret", timeout=2)
        assert client.server_info.get("tls_required") is True
    assert bytes(reply.data) == b"secret"


async def test_tls_upgrades_a_nats_url_too(tls_server: tuple[EmbeddedNatsServer, Path]) -> None:
    """The server's INFO, not the scheme, decides: nats:// to a TLS server still speaks TLS."""
    server, ca_file = tls_server
    url = server.url.replace("tls://", "nats://")
    async with _connected(NatsConnectOptions(url=url, ca_file=ca_file)) as client:
        await client.flush()


async def test_tls_without_the_ca_is_refused(tls_server: tuple[EmbeddedNatsServer, Path]) -> None:
    """The system trust store does not know the platform CA: verification fails."""
    server, _ = tls_server
    with pytest.raises(natsio.ConnectError) as raised:
        await natsio.connect(NatsConnectOptions(url=server.url), connect_timeout=2)
    assert isinstance(raised.value.__cause__, ssl.SSLCertVerificationError)


# ---- operator mode: creds and permissions ------------------------------------------------

ACCOUNT = "acme-natsio"


@dataclasses.dataclass
class Operated:
    url: str
    authority: NatsAuthority
    directory: Path

    def creds_file(self, name: str, text: str) -> Path:
        path = self.directory / f"{name}.creds"
        write_atomic(path, text.encode())
        return path


@dataclasses.dataclass
class _ClaimsReply:
    data: bytes


class _Claims:
    """NatsAuthority.push's client, over natsio."""

    def __init__(self, client: Client) -> None:
        self._client = client

    async def request(
        self,
        subject: str,
        payload: bytes = b"",
        timeout: float = 0.5,  # noqa: ASYNC109 - the ClaimsClient protocol
    ) -> _ClaimsReply:
        reply = await self._client.request(subject, payload, timeout=timeout)
        return _ClaimsReply(bytes(reply.data))


@pytest.fixture
async def operated(operated_server: OperatedServer) -> Operated:
    """The authority, and the test account pushed by a system user connected with natsio."""
    directory, url = operated_server.directory, operated_server.server.url
    authority = await NatsAuthority.load_or_create(EmbeddedSecretsBackend(directory / "state"))
    operated = Operated(url, authority, directory)
    system_creds = operated.creds_file("system", authority.system_user())
    async with _connected(NatsConnectOptions(url=url, creds_file=system_creds)) as system:
        await authority.push(_Claims(system), ACCOUNT)
    return operated


async def test_creds_authenticate_in_operator_mode(operated: Operated) -> None:
    """A user JWT and the signed nonce get in; messages flow within the account."""
    credential = await operated.authority.issue_user(ACCOUNT, "worker", unrestricted())
    options = NatsConnectOptions(
        url=operated.url, creds_file=operated.creds_file("worker", credential.creds)
    )
    async with _connected(options) as client:
        client.subscribe("natsio.creds", echo(client))
        await client.flush()
        reply = await client.request("natsio.creds", b"in", timeout=2)
        assert client.server_info.get("auth_required") is True
    assert bytes(reply.data) == b"in"


async def test_no_creds_in_operator_mode_is_an_authorization_error(operated: Operated) -> None:
    with pytest.raises(natsio.AuthorizationError, match="Authorization Violation"):
        await natsio.connect(NatsConnectOptions(url=operated.url), connect_timeout=2)


async def test_a_permissions_violation_is_reported_with_its_text(operated: Operated) -> None:
    """-ERR 'Permissions Violation ...' reaches on_error; the connection stays up."""
    permissions = Permissions(
        publish_allow=("natsio.allowed.>", "_INBOX.>"),
        subscribe_allow=("natsio.allowed.>", "_INBOX.>"),
    )
    credential = await operated.authority.issue_user(ACCOUNT, "limited", permissions)
    options = NatsConnectOptions(
        url=operated.url, creds_file=operated.creds_file("limited", credential.creds)
    )
    errors = Errors()
    inbox = Inbox()
    async with _connected(options, on_error=errors) as client:
        client.subscribe("natsio.allowed.x", inbox)
        await client.flush()

        client.publish("natsio.secret", b"no")
        violation = await errors.wait_for(natsio.PermissionsViolationError)
        assert isinstance(violation, natsio.PermissionsViolationError)
        assert violation.text == 'Permissions Violation for Publish to "natsio.secret"'

        client.subscribe("natsio.forbidden", Inbox())
        await client.flush()
        await errors.wait_for(natsio.PermissionsViolationError, "Subscription to")

        client.publish("natsio.allowed.x", b"yes")
        await inbox.wait_for(1)
        assert client.is_connected


# ---- helpers -----------------------------------------------------------------------------


class _connected:  # noqa: N801 - reads as a context manager function
    """``async with _connected(options, **settings) as client``: connect, then close."""

    def __init__(self, options: NatsConnectOptions, **settings: Any) -> None:
        self._options = options
        self._settings = settings
        self._client: Client | None = None

    async def __aenter__(self) -> Client:
        self._client = await natsio.connect(self._options, **self._settings)
        return self._client

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._client is not None
        await self._client.close()
