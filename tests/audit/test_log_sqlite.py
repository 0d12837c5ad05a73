"""The audit scenarios on SQLite (the same set runs on PostgreSQL: test_log_postgres.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from audit_scenarios import check_sessions_join_actions, check_tampering_is_found

from tollway.storage.sqlite import SQLiteStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(f"sqlite:///{tmp_path / 'audit.db'}")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def test_sessions_join_actions(store: SQLiteStore) -> None:
    await check_sessions_join_actions(store)


async def test_tampering_is_found(store: SQLiteStore) -> None:
    await check_tampering_is_found(store)
