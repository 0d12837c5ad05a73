"""SQL shared by the SQLite and PostgreSQL stores; each backend supplies execution."""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from tollway.storage.records import Batch, BudgetEvent, RequestRecord, SpendRecord
from tollway.storage.schema import COST_KINDS, REQUEST_COLUMNS, TOKEN_KINDS, to_pico
from tollway.storage.tool_calls import INSERT_TOOL_CALL, PURGE_TOOL_CALL_CONTENT, ToolCallRecord

Statement = tuple[str, list[tuple[Any, ...]]]
Guard = tuple[str, str]  # a query run first in the transaction, and the value it must give

_INSERT_REQUEST = (
    f"INSERT INTO requests ({', '.join(REQUEST_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in REQUEST_COLUMNS)}) ON CONFLICT (id) DO NOTHING"
)
_INSERT_ATTEMPT = (
    "INSERT INTO attempts (request_id, idx, started_at, provider, key_name, model, status, "
    "latency_ms, error_type, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
_INSERT_CONTENT = (
    "INSERT INTO contents (request_id, created_at, request_body, response_body, scope) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (request_id) DO NOTHING"
)
# A chunk sent again after a sweep carries the new generation, which that sweep spares.
_UPSERT_CHUNK = (
    "INSERT INTO content_chunks (scope, digest, gen, created_at, data) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (scope, digest) DO UPDATE SET gen = excluded.gen "
    "WHERE content_chunks.gen < excluded.gen"
)
SWEEP_GEN = "SELECT value FROM meta WHERE key = 'content_sweep'"
_UPSERT_SPEND = (
    "INSERT INTO budget_spend (budget_id, scope, window_start, spent, updated_at) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (budget_id, window_start) "
    "DO UPDATE SET spent = excluded.spent, updated_at = excluded.updated_at"
)


def request_row(r: RequestRecord) -> tuple[Any, ...]:
    head = (
        r.id, r.started_at, r.latency_ms, r.ttft_ms, r.vk_id, r.vk_name, r.team_id,
        r.team_name, r.customer_id, r.customer_name, r.user_id, r.session_id, r.client,
        r.surface, r.provider, r.requested_model, r.served_model, r.status, r.error_type,
        r.error_message, int(r.stream), int(r.partial), r.retries, r.fallback_index,
        int(r.cache_hit),
    )  # fmt: skip
    tokens = tuple(getattr(r, k) for k in TOKEN_KINDS)
    costs = tuple(to_pico(getattr(r, f"cost_{k}")) for k in COST_KINDS)
    priced = (int(r.cost_estimated), int(r.simulated), r.web_searches, r.price_version,
              r.service_tier, r.routing_rule, r.translation)  # fmt: skip
    return (*head, *tokens, *costs, int(r.cost_unknown), r.endpoint, *priced)


class SQLStore(ABC):
    """Shared statements; subclasses run them (``?`` placeholders throughout)."""

    url: str

    @abstractmethod
    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...

    @abstractmethod
    async def _run(self, statements: list[Statement], guard: Guard | None = None) -> None:
        """Run every statement with each of its rows, in one transaction; with ``guard``,
        first check its query's value (else ChunksSwept, nothing written)."""

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return await self._fetch(sql, params)

    async def execute(self, statements: list[Statement]) -> None:
        """Run each statement with each of its rows, all in one transaction."""
        await self._run(statements)

    async def revision(self) -> int:
        rows = await self._fetch("SELECT value FROM meta WHERE key = 'revision'")
        return int(rows[0]["value"]) if rows else 0

    def _bump(self) -> Statement:
        return (
            "INSERT INTO meta (key, value) VALUES ('revision', '1') ON CONFLICT (key) "
            "DO UPDATE SET value = CAST(CAST(meta.value AS INTEGER) + 1 AS TEXT)",
            [()],
        )

    async def list_entities(self, kind: str) -> list[dict[str, Any]]:
        rows = await self._fetch("SELECT doc FROM entities WHERE kind = ? ORDER BY name", (kind,))
        return [json.loads(r["doc"]) for r in rows]

    async def get_entity(self, kind: str, entity_id: str) -> dict[str, Any] | None:
        rows = await self._fetch(
            "SELECT doc FROM entities WHERE kind = ? AND id = ?", (kind, entity_id)
        )
        return json.loads(rows[0]["doc"]) if rows else None

    async def put_entity(self, kind: str, doc: dict[str, Any]) -> None:
        sql = (
            "INSERT INTO entities (kind, id, name, key_hash, doc, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kind, id) DO UPDATE SET "
            "name = excluded.name, key_hash = excluded.key_hash, doc = excluded.doc, "
            "updated_at = excluded.updated_at"
        )
        row = (kind, doc["id"], doc["name"], doc.get("key_hash"), json.dumps(doc), time.time())
        await self._run([(sql, [row]), self._bump()])

    async def delete_entity(self, kind: str, entity_id: str) -> bool:
        existed = await self.get_entity(kind, entity_id) is not None
        sql = "DELETE FROM entities WHERE kind = ? AND id = ?"
        await self._run([(sql, [(kind, entity_id)]), self._bump()])
        return existed

    async def get_setting(self, key: str) -> str | None:
        rows = await self._fetch("SELECT value FROM meta WHERE key = ?", (f"setting:{key}",))
        return str(rows[0]["value"]) if rows else None

    async def put_setting(self, key: str, value: str) -> None:
        sql = (
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        )
        await self._run([(sql, [(f"setting:{key}", value)]), self._bump()])

    async def load_spend(self, since: float) -> list[SpendRecord]:
        rows = await self._fetch(
            "SELECT budget_id, scope, window_start, spent FROM budget_spend "
            "WHERE window_start >= ? ORDER BY window_start",
            (since,),
        )
        return [
            SpendRecord(r["budget_id"], r["scope"], float(r["window_start"]), Decimal(r["spent"]))
            for r in rows
        ]

    async def write_batch(self, batch: Batch) -> None:
        now = time.time()
        statements: list[Statement] = []
        if batch.requests:
            statements.append((_INSERT_REQUEST, [request_row(r) for r in batch.requests]))
            attempts = [
                (a.request_id, a.index, a.started_at, a.provider, a.key_name, a.model,
                 a.status, a.latency_ms, a.error_type, a.reason)
                for r in batch.requests
                for a in r.attempts
            ]  # fmt: skip
            if attempts:
                statements.append((_INSERT_ATTEMPT, attempts))
        guard: Guard | None = None
        if batch.contents:
            chunks = [(c.scope, d, batch.chunk_gen, c.created_at, data)
                      for c in batch.contents for d, data in c.chunks]  # fmt: skip
            if chunks:
                statements.append((_UPSERT_CHUNK, chunks))
            contents = [(c.request_id, c.created_at, c.request_body, c.response_body, c.scope)
                        for c in batch.contents]  # fmt: skip
            statements.append((_INSERT_CONTENT, contents))
            guard = (SWEEP_GEN, str(batch.chunk_gen))
        if batch.spend:
            rows = [(s.budget_id, s.scope, s.window_start, str(s.spent), now) for s in batch.spend]
            statements.append((_UPSERT_SPEND, rows))
        if statements:
            await self._run(statements, guard)

    async def add_budget_event(self, event: BudgetEvent) -> None:
        sql = (
            "INSERT INTO budget_events (budget_id, action, amount, actor, at, window_start) "
            "VALUES (?, ?, ?, ?, ?, ?)"
        )
        row = (event.budget_id, event.action, str(event.amount), event.actor, event.at,
               event.window_start)  # fmt: skip
        await self._run([(sql, [row])])

    async def budget_events(self, budget_id: str | None) -> list[BudgetEvent]:
        sql = "SELECT budget_id, action, amount, actor, at, window_start FROM budget_events"
        params: tuple[Any, ...] = ()
        if budget_id is not None:
            sql += " WHERE budget_id = ?"
            params = (budget_id,)
        rows = await self._fetch(sql + " ORDER BY at", params)
        return [
            BudgetEvent(r["budget_id"], r["action"], Decimal(r["amount"]), r["actor"],
                        float(r["at"]), float(r["window_start"]))
            for r in rows
        ]  # fmt: skip

    async def purge_content(self, before: float) -> int:
        rows = await self._fetch(
            "SELECT COUNT(*) AS n FROM contents WHERE created_at < ?", (before,)
        )
        await self._run([("DELETE FROM contents WHERE created_at < ?", [(before,)])])
        return int(rows[0]["n"])

    async def sweep_generation(self) -> int:
        rows = await self._fetch(SWEEP_GEN)
        return int(rows[0]["value"]) if rows else 0

    async def begin_sweep(self) -> int:
        """Start a chunk sweep: the new generation. Writes that assumed chunks under the old
        one fail their guard from now on and send those chunks again."""
        bump = "UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = ?"
        await self._run([(bump, [("content_sweep",)])])
        return await self.sweep_generation()

    async def delete_chunks(self, scope: str, digests: Sequence[bytes], below_gen: int) -> int:
        """Delete these chunks of ``scope`` unless sent again since generation ``below_gen``."""
        count = "SELECT COUNT(*) AS n FROM content_chunks WHERE scope = ?"
        before = int((await self._fetch(count, (scope,)))[0]["n"])
        sql = "DELETE FROM content_chunks WHERE scope = ? AND digest = ? AND gen < ?"
        await self._run([(sql, [(scope, d, below_gen) for d in digests])])
        return before - int((await self._fetch(count, (scope,)))[0]["n"])

    async def write_tool_calls(self, records: Sequence[ToolCallRecord]) -> None:
        if records:
            await self._run([(INSERT_TOOL_CALL, [r.row() for r in records])])

    async def purge_tool_call_content(self, before: float) -> None:
        await self._run([(PURGE_TOOL_CALL_CONTENT, [(before,)])])
