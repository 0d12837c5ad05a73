"""Read endpoints the web dashboard needs, under ``/api/dashboard`` (admin token as
everywhere): the overview, per-key budget status with "can it make a request now",
agent sessions, and editing one provider without re-entering its secret keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tollway.admin.budgets import status_json
from tollway.admin.logs import render_usage
from tollway.admin.providers import redacted
from tollway.config import ProviderConfig
from tollway.dashboard import queries as dq
from tollway.errors import InvalidRequest, NotFound
from tollway.governance.entities import CustomerRecord, KeyRecord, TeamRecord
from tollway.governance.ledger import BudgetStatus
from tollway.pipeline.registry import Snapshot
from tollway.storage import queries
from tollway.storage.queries import LogFilter

if TYPE_CHECKING:
    from tollway.services import Services

_TOP = 5


class ProviderKeyEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "default"
    weight: float = Field(default=1.0, gt=0)
    value: str | None = Field(
        default=None, description="the secret or env.NAME; omit to keep the stored value"
    )


class ProviderEdit(BaseModel):
    """One provider; a key without ``value`` keeps the value stored under its name."""

    model_config = ConfigDict(extra="forbid")
    type: str | None = None
    base_url: str | None = None
    timeout_s: float | None = Field(default=None, gt=0)
    models: list[str] = Field(default_factory=list)
    keys: list[ProviderKeyEdit] = Field(default_factory=list)


def _month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _blocked(key: KeyRecord, statuses: list[BudgetStatus], now: datetime) -> str | None:
    """Why the key cannot start a request now, or None."""
    why = key.usable(now)
    if why:
        return why
    for s in statuses:
        if s.remaining <= 0:
            return f"budget {s.scope} exhausted: spent ${s.spent} of ${s.limit + s.credit}"
    return None


def _owner(scope: str, snap: Snapshot) -> str:
    """A budget scope (``vk:<id>``, ``team:<id>``, ``pc:<key id>:<provider>``) by name."""
    kind, _, rest = scope.partition(":")
    if kind == "pc":
        key_id, _, provider = rest.rpartition(":")
        key = snap.keys.get(key_id)
        return f"key {key.name if key else key_id} · provider {provider}"
    owners: dict[str, Mapping[str, KeyRecord | TeamRecord | CustomerRecord]] = {
        "vk": snap.keys, "team": snap.teams, "customer": snap.customers}  # fmt: skip
    owner = owners.get(kind, {}).get(rest)
    label = {"vk": "key"}.get(kind, kind)
    return f"{label} {owner.name}" if owner is not None else scope


def _budget(s: BudgetStatus, snap: Snapshot) -> dict[str, Any]:
    doc = status_json(s)
    doc["owner"] = _owner(s.scope, snap)
    return doc


def _series(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**r, "cost": queries.usd(r.pop("cost_pico"))} for r in rows]


def dashboard_routes(services: Services) -> APIRouter:
    router = APIRouter(prefix="/api/dashboard", tags=["dashboard"])

    @router.get("/overview")
    async def overview(
        days: Annotated[int, Query(ge=1, le=366, description="days of daily series")] = 14,
    ) -> dict[str, Any]:
        """Spend today and this month (UTC), budgets, daily spend by team, key and model,
        top spenders this month, and the last 24 hours' traffic."""
        store = services.store
        now = datetime.now(UTC)
        today, month = _day_start(now).timestamp(), _month_start(now).timestamp()
        since = (_day_start(now) - timedelta(days=days - 1)).timestamp()
        spend = {}
        for label, start in (("today", today), ("month", month)):
            total = queries.total(await queries.usage(store, "day", LogFilter(since=start)))
            spend[label] = render_usage(total)
        top = {}
        for group in ("key", "team", "customer", "model"):
            groups = await queries.usage(store, group, LogFilter(since=month))
            top[group] = [render_usage(g) for g in groups if g["group"] is not None][:_TOP]
        snap = services.registry.snapshot
        for key in snap.keys.values():
            services.admission.plan(key)
        return {
            "now": now.isoformat(),
            "today_start": queries.iso(today),
            "month_start": queries.iso(month),
            "spend": spend,
            "budgets": [_budget(s, snap) for s in services.admission.ledger.snapshot(now)],
            "series": {
                by: _series(await dq.daily(store, by, since)) for by in ("team", "key", "model")
            },  # fmt: skip
            "series_from": queries.iso(since),
            "top": top,
            "traffic_24h": await dq.traffic(store, (now - timedelta(hours=24)).timestamp()),
            "first_run": not await dq.any_request(store),
            "keys": len(services.registry.snapshot.keys),
        }

    @router.get("/budgets")
    async def key_budgets() -> list[dict[str, Any]]:
        """Every key: its budgets (own, provider, team, customer) and whether it can start
        a request now (active, not expired, every budget with money left, a free slot)."""
        now = datetime.now(UTC)
        out = []
        snap = services.registry.snapshot
        for key in sorted(snap.keys.values(), key=lambda k: k.name):
            statuses = services.admission.statuses(key)
            blocked = _blocked(key, statuses, now)
            in_flight = services.slots.in_flight(f"vk:{key.id}")
            cap = key.rate_limit.concurrency_max if key.rate_limit else None
            if blocked is None and cap is not None and in_flight >= cap:
                blocked = f"all {cap} concurrent request slots are in use"
            out.append({
                "id": key.id, "name": key.name, "key_hint": key.key_hint,
                "revoked": key.revoked_at is not None, "can_request": blocked is None,
                "blocked_because": blocked, "in_flight": in_flight,
                "budgets": [_budget(s, snap) for s in statuses],
            })  # fmt: skip
        return out

    @router.get("/sessions")
    async def sessions(
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        since: Annotated[str | None, Query(alias="from", description="ISO 8601")] = None,
    ) -> dict[str, Any]:
        """Agent sessions (X-Claude-Code-Session-Id, Codex session-id), newest first."""
        try:
            start = queries.parse_time(since)
        except ValueError as exc:
            raise InvalidRequest(f"from: {exc}") from None
        rows = await dq.sessions(services.store, limit, start)
        return {"data": [{**r, "first_at": queries.iso(r["first_at"]),
                          "last_at": queries.iso(r["last_at"]),
                          "cost": queries.usd(r.pop("cost_pico"))} for r in rows]}  # fmt: skip

    @router.put("/providers/{name}")
    async def put_provider(name: str, body: ProviderEdit) -> list[dict[str, Any]]:
        """Create or replace one provider; keys sent without a value keep theirs."""
        current = services.config.providers
        old = {k.name: k.value for k in current[name].keys} if name in current else {}
        keys = []
        for k in body.keys:
            value = k.value if k.value else old.get(k.name)
            if not value:
                raise InvalidRequest(f"keys: key {k.name!r} needs a value (or env.NAME)")
            keys.append({"name": k.name, "weight": k.weight, "value": value})
        doc = current[name].model_dump(exclude={"keys"}) if name in current else {}
        doc.update(body.model_dump(exclude_none=True, exclude={"keys"}), keys=keys)
        try:
            provider = ProviderConfig.model_validate(doc)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "provider"
            raise InvalidRequest(f"{field}: {first['msg']}") from None
        await services.replace_providers({**current, name: provider})
        cfg = services.config
        return [redacted(n, p, cfg.provider_type(n)) for n, p in cfg.providers.items()]

    @router.delete("/providers/{name}")
    async def delete_provider(name: str) -> list[dict[str, Any]]:
        current = dict(services.config.providers)
        if current.pop(name, None) is None:
            raise NotFound(f"no provider {name!r}")
        await services.replace_providers(current)
        cfg = services.config
        return [redacted(n, p, cfg.provider_type(n)) for n, p in cfg.providers.items()]

    return router
