"""PostgresTelemetryStore against the real PostgreSQL on this machine: the store contract.

The module creates its own database, gives every test a fresh schema in it,
and drops the database at the end. A server that cannot be reached fails the
run: an integration run without PostgreSQL has tested nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from kubefox.core.errors import InvalidError, UnavailableError
from kubefox.telemetry import open_telemetry_store
from kubefox.telemetry.export import store_chunk
from kubefox.telemetry.postgres import PostgresTelemetryStore
from kubefox.telemetry.protocol import Retention, TelemetryStore
from kubefox.telemetry.records import StatusCode
from tests.contracts.telemetry_store import (
    TRACE_A,
    MakeStore,
    TelemetryStoreContract,
    log,
    next_record,
    span,
)
from tests.unit.telemetry.hops import COMPACT_CALL_ATTRIBUTES, compact_chunk

pytestmark = pytest.mark.integration

#: The machine's server (trust authentication); override with TEST_POSTGRES_URL.
ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))


async def _admin(statement: str) -> None:
    try:
        connection = await asyncpg.connect(ADMIN_URL, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"cannot reach PostgreSQL at {ADMIN_URL}: {exc}")
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """A database of its own for this module, dropped afterwards."""
    name = f"kubefox_telemetry_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(ADMIN_URL, name)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def fresh_schema() -> str:
    return f"t_{uuid.uuid4().hex[:16]}"


class TestPostgresTelemetryStore(TelemetryStoreContract):
    @pytest.fixture
    async def make_store(self, database_url: str) -> AsyncIterator[MakeStore]:
        stores: list[TelemetryStore] = []
        schema = fresh_schema()

        async def make(retention: Retention | None = None) -> TelemetryStore:
            # each store of a test gets its own schema, as each SQLite store its own file
            store = await PostgresTelemetryStore.connect(
                database_url,
                schema=f"{schema}_{len(stores)}",
                retention=retention,
                poll_interval=0.05,
            )
            stores.append(store)
            return store

        try:
            yield make
        finally:
            for store in stores:
                await store.aclose()


async def test_open_telemetry_store_takes_the_schema_from_the_url(database_url: str) -> None:
    """postgresql://...?schema=name keeps the tables in that schema, created if missing."""
    schema = fresh_schema()

    store = await open_telemetry_store(f"{database_url}?schema={schema}")
    try:
        await store.put_spans([span(TRACE_A, 1)])
    finally:
        await store.aclose()

    connection = await asyncpg.connect(database_url)
    try:
        count = await connection.fetchval(f'SELECT count(*) FROM "{schema}".spans')  # noqa: S608 - our own name
    finally:
        await connection.close()
    assert count == 1


async def test_a_component_s_compact_spans_are_kept_as_records(database_url: str) -> None:
    """PostgreSQL keeps spans, not chunks: a posted chunk's compact spans are expanded."""
    store = await PostgresTelemetryStore.connect(database_url, schema=fresh_schema())
    try:
        await store_chunk(store, compact_chunk())

        handler, call = (await store.trace_for_event("ev-2")).spans
    finally:
        await store.aclose()
    assert (handler.name, call.name) == ("Path(`/hello`)", "Send REQUEST to backend")
    assert call.parent_span_id == handler.span_id
    assert call.status_code == StatusCode.ERROR
    assert call.attributes == COMPACT_CALL_ATTRIBUTES


async def test_two_processes_share_one_store(database_url: str) -> None:
    """Platform replicas write one store; a follower on another connection sees every write."""
    schema = fresh_schema()
    writer = await PostgresTelemetryStore.connect(database_url, schema=schema)
    reader = await PostgresTelemetryStore.connect(database_url, schema=schema, poll_interval=0.02)
    try:
        await writer.put_logs([log("first")])
        (first,) = await reader.logs()
        async with contextlib.aclosing(reader.follow(after=first.seq)) as records:
            await writer.put_logs([log("second")])

            assert (await next_record(records)).body == "second"
    finally:
        await reader.aclose()
        await writer.aclose()


async def test_a_bad_schema_name_is_invalid(database_url: str) -> None:
    """The schema name is put into SQL, so only plain identifiers are accepted."""
    with pytest.raises(InvalidError):
        await PostgresTelemetryStore.connect(database_url, schema='x"; DROP TABLE y; --')


async def test_an_unreachable_server_is_unavailable() -> None:
    """No server listening: UnavailableError, not an OSError from asyncpg."""
    with pytest.raises(UnavailableError):
        await PostgresTelemetryStore.connect("postgresql://postgres@127.0.0.1:1/postgres")
