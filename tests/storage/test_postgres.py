"""The same log scenarios as ``test_queries.py``, on the PostgreSQL at 127.0.0.1:5432.

A fresh database is created for the session and dropped at its end; each test starts
from empty tables. Skipped only when nothing listens on 127.0.0.1:5432.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from test_queries import (
    check_big_totals,
    check_filters,
    check_get_log,
    check_pagination,
    check_retention_and_settings,
    check_usage,
    make_record,
)

from tollway.observability.writer import LogWriter
from tollway.storage.postgres import PostgresStore
from tollway.storage.records import ContentRecord

pytestmark = pytest.mark.postgres
SERVER = "postgresql://postgres@127.0.0.1:5432"
TABLES = "requests, attempts, contents, meta, entities, budget_spend, budget_events"


def _listening() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
    except OSError:
        return False
    return True


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(f"{SERVER}/test")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    if not _listening():
        pytest.skip("no PostgreSQL listening on 127.0.0.1:5432 (CI runs these tests)")
    name = f"tollway_test_{secrets.token_hex(6)}"
    asyncio.run(_admin(f"CREATE DATABASE {name}"))
    try:
        yield f"{SERVER}/{name}"
    finally:
        asyncio.run(_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[PostgresStore]:
    s = PostgresStore(pg_url)
    await s.open()
    await s._run([(f"TRUNCATE {TABLES}", [()])])
    try:
        yield s
    finally:
        await s.close()


async def test_filters(store: PostgresStore) -> None:
    await check_filters(store)


async def test_pagination_is_stable(store: PostgresStore) -> None:
    await check_pagination(store)


async def test_usage_sums_are_exact(store: PostgresStore) -> None:
    await check_usage(store)


async def test_usage_totals_past_64_bits(store: PostgresStore) -> None:
    await check_big_totals(store)


async def test_get_log_with_content(store: PostgresStore) -> None:
    await check_get_log(store)


async def test_retention_and_stored_prices(store: PostgresStore) -> None:
    await check_retention_and_settings(store)


async def test_writer_loses_nothing(store: PostgresStore) -> None:
    writer = LogWriter(store, queue_size=5_000, flush_interval=0.01, spend_source=list)
    writer.start()
    for i in range(3_000):
        body = ContentRecord(f"w{i:05d}", 1e9 + i, b"q", b"r") if i % 10 == 0 else None
        writer.submit(make_record(f"w{i:05d}", 1e9 + i, "k"), body)
        if i % 100 == 0:
            await asyncio.sleep(0)
    await writer.stop()
    rows = await store.query("SELECT COUNT(*) AS n FROM requests")
    contents = await store.query("SELECT COUNT(*) AS n FROM contents")
    assert rows[0]["n"] == 3_000 == writer.written and writer.dropped_records == 0
    assert contents[0]["n"] + writer.dropped_contents == 300
