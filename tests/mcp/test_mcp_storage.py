"""The tool-call table on SQLite and PostgreSQL: writes, filters, content retention."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from tollway.storage.base import Store
from tollway.storage.postgres import PostgresStore
from tollway.storage.sqlite import SQLiteStore
from tollway.storage.tool_calls import ToolCallRecord, list_tool_calls

SERVER = "postgresql://postgres@127.0.0.1:5432"


def _record(n: int, started: float, key: str = "alice", session: str = "s1") -> ToolCallRecord:
    return ToolCallRecord(
        id=f"mcp_{n}", started_at=started, latency_ms=1.5, vk_id=f"vk_{key}", vk_name=key,
        team_id=None, customer_id=None, mcp_session_id=session, agent_session_id="cc-1",
        endpoint="/mcp", server="files", tool="read", exposed_name="files__read",
        outcome="ok", error_message=None, arguments='{"path":"a"}', result='{"content":[]}',
        arguments_bytes=12, result_bytes=14, cost=Decimal("0.000001"),
    )  # fmt: skip


async def _execute(sql: str) -> None:
    conn = await asyncpg.connect(f"{SERVER}/test")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _admin(sql: str) -> None:
    """On a thread of its own: the store fixture asks for this from inside a running loop."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(_execute(sql))).result()


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    name = f"tollway_mcp_{secrets.token_hex(6)}"
    _admin(f"CREATE DATABASE {name}")
    try:
        yield f"{SERVER}/{name}"
    finally:
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        s: SQLiteStore | PostgresStore = SQLiteStore(f"sqlite:///{tmp_path / 't.db'}")
    else:
        s = PostgresStore(request.getfixturevalue("pg_url"))
    await s.open()
    if isinstance(s, PostgresStore):
        await s._run([("TRUNCATE mcp_tool_calls", [()])])
    try:
        yield s
    finally:
        await s.close()


async def test_rows_round_trip_and_filter(store: Store) -> None:
    await store.write_tool_calls([_record(1, 100.0), _record(2, 200.0, "bob", "s2"),
                                  _record(3, 300.0)])  # fmt: skip
    await store.write_tool_calls([_record(1, 100.0)])  # a retried batch adds nothing
    rows = await list_tool_calls(store)
    assert [r["id"] for r in rows] == ["mcp_3", "mcp_2", "mcp_1"]
    assert rows[0]["cost"] == "0.000001" and rows[0]["arguments"] == '{"path":"a"}'
    assert [r["id"] for r in await list_tool_calls(store, key="alice")] == ["mcp_3", "mcp_1"]
    assert [r["id"] for r in await list_tool_calls(store, key="vk_bob")] == ["mcp_2"]
    assert [r["id"] for r in await list_tool_calls(store, session="s2")] == ["mcp_2"]
    assert len(await list_tool_calls(store, session="cc-1")) == 3
    assert [r["id"] for r in await list_tool_calls(store, limit=1)] == ["mcp_3"]


async def test_retention_clears_old_content_only(store: Store) -> None:
    await store.write_tool_calls([_record(1, 100.0), _record(2, 200.0)])
    await store.purge_tool_call_content(150.0)
    old, new = sorted(await list_tool_calls(store), key=lambda r: r["started_at"])
    assert old["arguments"] is None and old["result"] is None
    assert old["arguments_bytes"] == 12 and old["outcome"] == "ok"  # the record stays
    assert new["arguments"] == '{"path":"a"}' and new["result"] == '{"content":[]}'
