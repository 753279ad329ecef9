"""A nats-server in operator mode for a test module, and clients that record its refusals.

Import :func:`operated_server_fixture` into a test module to get one server per module;
the operator's keys live in its state directory, so each test can reload the
:class:`NatsAuthority` from there.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import nats
import nats.errors
import pytest
from nats.aio.client import Client
from nats.aio.subscription import Subscription

from kubefox.security.embedded import EmbeddedSecretsBackend
from kubefox.security.nats_auth import NatsAuthority, UserCredential
from kubefox.security.private_files import write_atomic
from kubefox.store.natsd import EmbeddedNatsServer, NatsOperator


@dataclass
class Operated:
    server: EmbeddedNatsServer
    authority: NatsAuthority
    system: Client
    directory: Path


class Conn:
    """A client and the errors the server sent it."""

    def __init__(self, client: Client, errors: asyncio.Queue[Exception]) -> None:
        self.client = client
        self.errors = errors

    async def violation(self, within: float = 3.0) -> str:
        async with asyncio.timeout(within):
            while True:
                error = str(await self.errors.get())
                if "permissions violation" in error.lower():
                    return error


async def refused(operated: Operated, credential: UserCredential) -> str:
    """Try to connect with ``credential``; return the server's refusal."""
    path = operated.directory / f"{credential.public_key}.creds"
    write_atomic(path, credential.creds.encode())
    client = Client()
    try:
        await client.connect(
            operated.server.url,
            user_credentials=str(path),
            allow_reconnect=False,
            connect_timeout=3,
            error_cb=_ignore,
        )
    except nats.errors.Error as exc:
        return str(exc)
    finally:
        # nats-py leaves the socket of a refused connection open: close it here
        await client.close()
        if client._transport is not None:
            client._transport.close()  # type: ignore[no-untyped-call]
    pytest.fail("the server accepted the credential")


async def _ignore(exc: Exception) -> None:
    pass


async def connect(
    operated: Operated, credential: UserCredential | str, *, inbox_prefix: str = "_INBOX"
) -> Conn:
    text = credential if isinstance(credential, str) else credential.creds
    name = "system" if isinstance(credential, str) else credential.public_key
    path = operated.directory / f"{name}.creds"
    write_atomic(path, text.encode())
    errors: asyncio.Queue[Exception] = asyncio.Queue()

    async def on_error(exc: Exception) -> None:
        errors.put_nowait(exc)

    client = await nats.connect(
        operated.server.url,
        user_credentials=str(path),
        inbox_prefix=inbox_prefix,
        allow_reconnect=False,
        connect_timeout=3,
        error_cb=on_error,
    )
    return Conn(client, errors)


@dataclass(frozen=True)
class OperatedServer:
    server: EmbeddedNatsServer
    directory: Path


@pytest.fixture(scope="module", name="operated_server")
def operated_server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatedServer]:
    """One nats-server in operator mode for the module; the operator's keys live in its state."""
    directory = tmp_path_factory.mktemp("operator")
    authority = asyncio.run(
        NatsAuthority.load_or_create(EmbeddedSecretsBackend(directory / "state"))
    )
    operator = NatsOperator(
        operator_jwt=authority.operator_jwt,
        system_account=authority.system_account,
        system_account_jwt=authority.system_account_jwt(),
    )
    with EmbeddedNatsServer(directory / "nats", operator=operator) as server:
        yield OperatedServer(server, directory)


@contextlib.asynccontextmanager
async def closing(*conns: Conn) -> AsyncIterator[None]:
    try:
        yield
    finally:
        for conn in conns:
            await conn.client.close()


async def nothing_arrives(sub: Subscription) -> bool:
    try:
        await sub.next_msg(timeout=0.3)
    except nats.errors.TimeoutError:
        return True
    return False
