"""The same log scenarios as ``test_queries.py``, on the PostgreSQL at 127.0.0.1:5432.

A fresh database is created for the session and dropped at its end; each test starts
from empty tables. Skipped only when nothing listens on 127.0.0.1:5432.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_content import (
    _STEP,
    check_fixed_rate_load_drops_nothing,
    check_long_session_reads_back,
    check_purge_removes_chunks_only_when_unused,
    check_random_conversation,
    check_sweep_racing_a_writer,
)
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
TABLES = "requests, attempts, contents, content_chunks, meta, entities, budget_spend, budget_events"


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


async def _fresh(url: str) -> PostgresStore:
    s = PostgresStore(url)
    await s.open()
    await s._run([(f"TRUNCATE {TABLES}", [()])])
    await s._run([("INSERT INTO meta (key, value) VALUES ('content_sweep', '0')", [()])])
    return s


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[PostgresStore]:
    s = await _fresh(pg_url)
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
    assert contents[0]["n"] == 300 and writer.dropped_contents == 0


async def test_long_claude_code_session_reads_back(store: PostgresStore, tmp_path: Path) -> None:
    await check_long_session_reads_back(store, tmp_path)


async def test_purge_removes_chunks_only_when_unused(store: PostgresStore, tmp_path: Path) -> None:
    await check_purge_removes_chunks_only_when_unused(store, tmp_path)


async def test_sweep_racing_a_writer(store: PostgresStore, tmp_path: Path) -> None:
    await check_sweep_racing_a_writer(store, tmp_path)


async def test_fixed_rate_load_drops_nothing(store: PostgresStore, tmp_path: Path) -> None:
    await check_fixed_rate_load_drops_nothing(store, tmp_path)


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(_STEP, min_size=1, max_size=20), flush_every=st.integers(1, 6))
def test_random_conversations_read_back_byte_for_byte(
    pg_url: str, tmp_path: Path, steps: list[Any], flush_every: int
) -> None:
    async def go() -> None:
        s = await _fresh(pg_url)
        try:
            await check_random_conversation(s, tmp_path, steps, flush_every)
        finally:
            await s.close()

    asyncio.run(go())
