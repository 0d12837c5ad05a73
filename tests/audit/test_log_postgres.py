"""The audit scenarios of test_log_sqlite.py on the PostgreSQL at 127.0.0.1:5432 (db test)."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from audit_scenarios import check_sessions_join_actions, check_tampering_is_found
from cryptography.fernet import Fernet

from tollway.storage.postgres import PostgresStore

pytestmark = pytest.mark.postgres
SERVER = "postgresql://postgres@127.0.0.1:5432"


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


@pytest.fixture(scope="module")
def audit_pg_url() -> Iterator[str]:
    if not _listening():
        pytest.skip("no PostgreSQL listening on 127.0.0.1:5432 (CI runs these tests)")
    name = f"tollway_audit_{secrets.token_hex(6)}"
    asyncio.run(_admin(f"CREATE DATABASE {name}"))
    try:
        yield f"{SERVER}/{name}"
    finally:
        asyncio.run(_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
async def store(audit_pg_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[PostgresStore]:
    # PostgreSQL has no key file beside it: the secret box's key comes from the environment.
    monkeypatch.setenv("TOLLWAY_SECRET_KEY", Fernet.generate_key().decode())
    s = PostgresStore(audit_pg_url)
    await s.open()
    await s.execute([("TRUNCATE requests, agent_actions, audit_log, audit_checkpoints, meta",
                      [()])])  # fmt: skip
    try:
        yield s
    finally:
        await s.close()


async def test_sessions_join_actions(store: PostgresStore) -> None:
    await check_sessions_join_actions(store)


async def test_tampering_is_found(store: PostgresStore) -> None:
    await check_tampering_is_found(store)
