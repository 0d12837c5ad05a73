"""Budget status, reset and one-off top-up (each recorded with who did it)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, field_validator

from tollway.admin.schemas import BudgetEventOut, BudgetStatusOut, KeyStatusOut, ok
from tollway.errors import NotFound
from tollway.governance.ledger import BudgetStatus, money
from tollway.limits import Money
from tollway.storage.records import BudgetEvent

if TYPE_CHECKING:
    from tollway.governance.entities import KeyRecord
    from tollway.pipeline.admit import Admission
    from tollway.services import Services


class TopUp(BaseModel):
    amount: Money = Field(description="USD added to the current window only")
    actor: str = Field(default="admin", description="who did it, for the record")

    @field_validator("amount")
    @classmethod
    def _positive(cls, v: Decimal) -> Decimal:
        if v <= 0:
            raise ValueError("Input should be greater than 0 (USD)")
        return v


class Reset(BaseModel):
    actor: str = "admin"


def status_json(s: BudgetStatus) -> dict[str, Any]:
    return {
        "budget_id": s.budget_id,
        "scope": s.scope,
        "max_limit": str(s.limit),
        "top_up": str(s.credit),
        "spent": str(s.spent),
        "reserved": str(s.reserved),
        "remaining": str(s.remaining),
        "window_start": s.window_start.isoformat(),
        "resets_at": s.window_end.isoformat() if s.window_end else None,
    }


REFERENCE_MODEL = "claude-opus-4-8"  # with 80,000 bytes: a Claude Code request


def request_now(
    admission: Admission, key: KeyRecord, model: str, body_bytes: int
) -> dict[str, Any]:
    """Whether the key can make a request (of ``model``, ``body_bytes``) now, how large."""
    room = admission.headroom(key)
    fit = admission.largest_output(key, model, body_bytes)
    doc: dict[str, Any] = {
        "can_request": fit is not None,
        "max_cost": str(room.usd) if room.usd is not None else None,
        "limited_by": room.limited_by,
        "shrink_to_fit": room.shrink,
        "model": model,
        "body_bytes": body_bytes,
        "max_output_tokens": fit[0] if fit else 0,
        "worst_case": str(fit[1]) if fit and fit[1] is not None else None,
    }
    if fit is None:
        doc["why"] = (
            f"the {room.limited_by} has {money(room.usd or Decimal(0))} left, less than such a "
            "request's prompt bound plus 1,024 output tokens"
        )
    return doc


def budget_routes(services: Services) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["budgets"])
    ledger = services.admission.ledger

    def _status(budget_id: str) -> BudgetStatus:
        for key in services.registry.snapshot.keys.values():
            services.admission.plan(key)  # registers every budget of every key
        try:
            return ledger.status(budget_id, datetime.now(UTC))
        except KeyError:
            raise NotFound(f"no budget {budget_id!r}; list them with GET /api/budgets") from None

    @router.get("/budgets", response_model=None, responses=ok(BudgetStatusOut, many=True))
    async def list_budgets() -> list[dict[str, Any]]:
        for key in services.registry.snapshot.keys.values():
            services.admission.plan(key)
        return [status_json(s) for s in ledger.snapshot(datetime.now(UTC))]

    @router.get("/virtual-keys/{key_id}/status", response_model=None, responses=ok(KeyStatusOut))
    async def key_status(
        key_id: str, model: str = REFERENCE_MODEL, body_bytes: int = Query(80_000, ge=0)
    ) -> dict[str, Any]:
        """``usable``: the key can make a request now; ``request_now`` says how large: for
        ``model`` and a body of ``body_bytes`` (by default a Claude Code request), the
        largest output cap it would be admitted with."""
        snap = services.registry.snapshot
        key = snap.keys.get(key_id) or next(
            (k for k in snap.keys.values() if k.name == key_id), None
        )
        if key is None:
            raise NotFound(f"no virtual key with id or name {key_id!r}")
        now_doc = request_now(services.admission, key, model, body_bytes)
        return {
            "id": key.id,
            "name": key.name,
            "usable": key.usable(datetime.now(UTC)) is None and now_doc["can_request"],
            "request_now": now_doc,
            "budgets": [status_json(s) for s in services.admission.statuses(key)],
            "rate_limit": key.rate_limit.model_dump() if key.rate_limit else None,
            "in_flight": services.slots.in_flight(f"vk:{key.id}"),
        }

    @router.post(
        "/budgets/{budget_id:path}/reset", response_model=None, responses=ok(BudgetStatusOut)
    )
    async def reset(budget_id: str, body: Reset | None = None) -> dict[str, Any]:
        status = _status(budget_id)
        services.admission.reset(budget_id, datetime.now(UTC))
        await services.store.add_budget_event(BudgetEvent(
            budget_id, "reset", status.spent, (body or Reset()).actor, time.time(),
            status.window_start.timestamp()))  # fmt: skip
        await services.writer.flush()
        after = status_json(_status(budget_id))
        actor = f"admin-api:{(body or Reset()).actor}"
        await services.audit.admin_change(actor, "reset", "budget", budget_id,
                                          status_json(status), after)  # fmt: skip
        return after

    @router.post(
        "/budgets/{budget_id:path}/top-up", response_model=None, responses=ok(BudgetStatusOut)
    )
    async def top_up(budget_id: str, body: TopUp) -> dict[str, Any]:
        status = _status(budget_id)
        ledger.top_up(budget_id, body.amount, datetime.now(UTC))
        await services.store.add_budget_event(BudgetEvent(
            budget_id, "top_up", body.amount, body.actor, time.time(),
            status.window_start.timestamp()))  # fmt: skip
        after = status_json(_status(budget_id))
        await services.audit.admin_change(f"admin-api:{body.actor}", "top_up", "budget",
                                          budget_id, status_json(status), after)  # fmt: skip
        return after

    @router.get(
        "/budgets/{budget_id:path}/events",
        response_model=None,
        responses=ok(BudgetEventOut, many=True),
    )
    async def events(budget_id: str) -> list[dict[str, Any]]:
        return [
            {"action": e.action, "amount": str(e.amount), "actor": e.actor,
             "at": datetime.fromtimestamp(e.at, UTC).isoformat()}
            for e in await services.store.budget_events(budget_id)
        ]  # fmt: skip

    return router
