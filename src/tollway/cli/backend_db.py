"""The CLI's backend on the database itself, for when no gateway runs on it.

Budget figures are the settled spend as stored (in-flight reservations live in a running
gateway); a reset or top-up is recorded so the next gateway start applies it.
"""

from __future__ import annotations

import functools
import getpass
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tollway.accounting.pricing import PriceBook
from tollway.admin.budgets import status_json
from tollway.admin.logs import render_log, render_usage
from tollway.admin.ops import CustomerInput, EntityOps, KeyInput, TeamInput
from tollway.audit import store as audit_sql
from tollway.audit.log import record_admin_change
from tollway.config import Config
from tollway.errors import InvalidRequest, NotFound
from tollway.pipeline.admit import Admission
from tollway.pipeline.registry import Registry
from tollway.storage import open_store, queries
from tollway.storage.base import Store
from tollway.storage.queries import GroupBy, LogFilter
from tollway.storage.records import Batch, BudgetEvent

Doc = dict[str, Any]
_INPUTS: dict[str, type[CustomerInput]] = {
    "virtual_key": KeyInput,
    "team": TeamInput,
    "customer": CustomerInput,
}


def _public(record: Any, secret: str | None = None) -> Doc:
    doc: Doc = record.model_dump(mode="json", exclude={"key_hash"})
    if secret is not None:
        doc["key"] = secret
    return doc


class DbBackend:
    """``await DbBackend.open(url)``; the same documents the admin API answers with."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.actor = f"cli:{getpass.getuser()}"
        self.ops = EntityOps(store, functools.partial(record_admin_change, store, self.actor))

    @classmethod
    async def open(cls, url: str) -> DbBackend:
        store = open_store(url)
        await store.open()
        return cls(store)

    def _input(self, kind: str, fields: Doc) -> Any:
        try:
            return _INPUTS[kind].model_validate(fields)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None

    async def create(self, kind: str, fields: Doc) -> Doc:
        record, secret = await self.ops.create(kind, self._input(kind, fields))
        return _public(record, secret)

    async def list_all(self, kind: str) -> list[Doc]:
        return [_public(r) for r in await self.ops.list(kind)]

    async def get(self, kind: str, ref: str) -> Doc:
        return _public(await self.ops.get(kind, ref))

    async def update(self, kind: str, ref: str, fields: Doc) -> Doc:
        return _public(await self.ops.update(kind, ref, self._input(kind, fields)))

    async def delete(self, kind: str, ref: str) -> None:
        await self.ops.delete(kind, ref)

    async def revoke(self, ref: str) -> Doc:
        return _public(await self.ops.revoke_key(ref))

    async def rotate(self, ref: str) -> Doc:
        record, secret = await self.ops.rotate_key(ref)
        return _public(record, secret)

    async def _admission(self) -> tuple[Admission, Registry]:
        registry = Registry(self.store)
        await registry.refresh(force=True)
        admission = Admission(registry, PriceBook(), Config())
        await admission.load(self.store)
        for key in registry.snapshot.keys.values():
            admission.plan(key)  # registers every budget of every key
        return admission, registry

    async def key_status(self, ref: str, model: str, body_bytes: int) -> Doc:
        from tollway.admin.budgets import request_now

        key = await self.ops.get("virtual_key", ref)
        admission, _registry = await self._admission()
        now = request_now(admission, key, model, body_bytes)
        return {
            "id": key.id,
            "name": key.name,
            "usable": key.usable(datetime.now(UTC)) is None and now["can_request"],
            "request_now": now,
            "budgets": [status_json(s) for s in admission.statuses(key)],
            "rate_limit": key.rate_limit.model_dump() if key.rate_limit else None,
            "note": "settled spend as stored; in-flight reservations live in the gateway",
        }

    async def budgets(self) -> list[Doc]:
        admission, _registry = await self._admission()
        return [status_json(s) for s in admission.ledger.snapshot(datetime.now(UTC))]

    async def _change(self, budget_id: str, action: str, amount: Decimal | None, actor: str) -> Doc:
        admission, _registry = await self._admission()
        now = datetime.now(UTC)
        try:
            before = admission.ledger.status(budget_id, now)
        except KeyError:
            raise NotFound(f"no budget {budget_id!r}; see `tollway budgets list`") from None
        if action == "reset":
            admission.ledger.reset(budget_id, now)
            amount = before.spent
        else:
            assert amount is not None
            admission.ledger.top_up(budget_id, amount, now)
        start = before.window_start.timestamp()
        event = BudgetEvent(budget_id, action, amount, actor, time.time(), start)
        await self.store.add_budget_event(event)
        await self.store.write_batch(Batch(spend=admission.dirty_spend()))
        after = status_json(admission.ledger.status(budget_id, now))
        await record_admin_change(self.store, f"{self.actor}:{actor}", action, "budget",
                                  budget_id, status_json(before), after)  # fmt: skip
        return after

    async def reset(self, budget_id: str, actor: str) -> Doc:
        return await self._change(budget_id, "reset", None, actor)

    async def top_up(self, budget_id: str, amount: Decimal, actor: str) -> Doc:
        return await self._change(budget_id, "top_up", amount, actor)

    async def usage(self, group_by: str, where: LogFilter) -> Doc:
        group: GroupBy = group_by  # type: ignore[assignment]
        groups = await queries.usage(self.store, group, where)
        return {
            "group_by": group_by,
            "data": [render_usage(g) for g in groups],
            "total": render_usage(queries.total(groups)),
        }

    async def logs(self, where: LogFilter, limit: int) -> list[Doc]:
        page = await queries.list_logs(self.store, where, limit=limit)
        return [render_log(r) for r in page.records]

    async def sessions(self, key: str | None, limit: int) -> list[Doc]:
        return await audit_sql.sessions(self.store, key, limit)

    async def session(self, session_id: str) -> Doc:
        doc = await audit_sql.session(self.store, session_id)
        if doc is None:
            raise NotFound(f"no session {session_id!r}")
        return doc

    async def audit_verify(self) -> Doc:
        from tollway.audit.verify import verify_store

        return await verify_store(self.store)

    async def audit_entries(self, since: int, limit: int) -> list[Doc]:
        out: list[Doc] = []
        async for entry in audit_sql.entries(self.store, since):
            out.append(entry.public())
            if len(out) >= limit:
                break
        return out

    async def audit_public_key(self) -> Doc:
        from tollway.audit.signing import key_id, public_pem, stored_public

        key = await stored_public(self.store)
        if key is None:
            raise NotFound("no audit signing key yet (it is made on the first start)")
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {"key_id": key_id(raw), "pem": public_pem(key)}

    async def close(self) -> None:
        await self.store.close()
