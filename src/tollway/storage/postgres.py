"""PostgreSQL store on an asyncpg pool; the SQL is shared with SQLite."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import asyncpg

from tollway.errors import ChunksSwept
from tollway.storage.schema import added_columns, attempt_migrations, content_migrations, ddl
from tollway.storage.sql import Guard, SQLStore, Statement

_PLACEHOLDER = re.compile(r"\?")


def _numbered(sql: str) -> str:
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _m: f"${next(counter)}", sql)


class PostgresStore(SQLStore):
    """``PostgresStore("postgresql://user@127.0.0.1:5432/db")``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: Any = None
        self._sql: dict[str, str] = {}

    def _pg(self, sql: str) -> str:
        cached = self._sql.get(sql)
        if cached is None:
            cached = self._sql[sql] = _numbered(
                sql.replace("CAST(CAST(meta.value AS INTEGER)", "CAST(CAST(meta.value AS BIGINT)")
            )
        return cached

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(self.url, min_size=1, max_size=4)
        async with self._pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock(7243)")
            try:
                for statement in ddl("postgres"):
                    await conn.execute(statement)
                rows = await conn.fetch(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = 'requests'"
                )
                for statement in added_columns({r["column_name"] for r in rows}, "postgres"):
                    await conn.execute(statement)
                rows = await conn.fetch(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = 'attempts'"
                )
                for statement in attempt_migrations({r["column_name"] for r in rows}):
                    await conn.execute(statement)
                rows = await conn.fetch(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = 'contents'"
                )
                for statement in content_migrations({r["column_name"] for r in rows}):
                    await conn.execute(statement)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(7243)")

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(self._pg(sql), *params)
        return [dict(r) for r in rows]

    async def _run(self, statements: list[Statement], guard: Guard | None = None) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            if guard is not None:
                # FOR SHARE: a sweep's update of this row waits for this write to commit.
                value = await conn.fetchval(guard[0] + " FOR SHARE")
                if value is None or str(value) != guard[1]:
                    raise ChunksSwept(int(value or 0))
            for sql, rows in statements:
                await conn.executemany(self._pg(sql), rows)
