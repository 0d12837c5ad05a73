"""SQLite store: one connection on one thread (as datasette does), WAL journal."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from tollway.errors import ChunksSwept
from tollway.storage.schema import added_columns, attempt_migrations, content_migrations, ddl
from tollway.storage.sql import Guard, SQLStore, Statement

T = TypeVar("T")


def _private(path: Path) -> None:
    """The database holds request bodies: create it 0600 (SQLite gives its -wal and -shm
    files the database's mode), and take group and other access from an older one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if p.exists() and p.stat().st_mode & 0o077:
            with contextlib.suppress(PermissionError):  # not ours: leave it as it is
                p.chmod(0o600)


class SQLiteStore(SQLStore):
    """``SQLiteStore("sqlite:///path/to/tollway.db")``; all I/O on a single thread."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = url.removeprefix("sqlite:///").removeprefix("sqlite://") or "tollway.db"
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tollway-sqlite")
        self._conn: sqlite3.Connection | None = None

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._with_conn, fn)

    def _with_conn(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            if self.path != ":memory:":
                _private(Path(self.path))
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=5000")
            self._conn = conn
        return fn(self._conn)

    async def open(self) -> None:
        def create(conn: sqlite3.Connection) -> None:
            for statement in ddl("sqlite"):
                conn.execute(statement)
            existing = {row[1] for row in conn.execute("PRAGMA table_info(requests)")}
            for statement in added_columns(existing, "sqlite"):
                conn.execute(statement)
            existing = {row[1] for row in conn.execute("PRAGMA table_info(attempts)")}
            for statement in attempt_migrations(existing):
                conn.execute(statement)
            existing = {row[1] for row in conn.execute("PRAGMA table_info(contents)")}
            for statement in content_migrations(existing):
                conn.execute(statement)

        await self._call(create)

    async def close(self) -> None:
        def shut(conn: sqlite3.Connection) -> None:
            conn.close()

        if self._conn is not None:
            await self._call(shut)
            self._conn = None
        self._executor.shutdown(wait=True)

    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        def run(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            return [dict(row) for row in conn.execute(sql, tuple(params))]

        return await self._call(run)

    async def _run(self, statements: list[Statement], guard: Guard | None = None) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if guard is not None:
                    row = conn.execute(guard[0]).fetchone()
                    if row is None or str(row[0]) != guard[1]:
                        raise ChunksSwept(int(row[0]) if row else 0)
                for sql, rows in statements:
                    conn.executemany(sql, rows)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

        await self._call(run)
