"""What the admin API answers, for the OpenAPI document (schemathesis checks every answer
against these in ``make test``). Entity shapes are derived from the stored records, so a
field added to a record shows up here; other answers declare the fields clients rely on
and allow more."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, create_model

from tollway.governance.entities import CustomerRecord, KeyRecord, TeamRecord


def _public(record: type[BaseModel], name: str, **extra: Any) -> type[BaseModel]:
    fields: dict[str, Any] = {
        n: (f.annotation, f) for n, f in record.model_fields.items() if n != "key_hash"
    }
    model: type[BaseModel] = create_model(
        name, __config__=ConfigDict(extra="forbid"), **fields, **extra
    )
    return model


CustomerOut = _public(CustomerRecord, "Customer")
TeamOut = _public(TeamRecord, "Team")
KeyOut = _public(KeyRecord, "VirtualKey")
KeyWithSecret = _public(KeyRecord, "VirtualKeyWithSecret", key=(str, ...))


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class BudgetStatusOut(_Open):
    budget_id: str
    scope: str
    max_limit: str
    top_up: str
    spent: str
    reserved: str
    remaining: str
    window_start: str
    resets_at: str | None


class KeyStatusOut(_Open):
    id: str
    name: str
    usable: bool
    request_now: dict[str, Any]  # can it make a request now, and how large (admin/budgets.py)
    budgets: list[BudgetStatusOut]
    rate_limit: dict[str, Any] | None
    in_flight: int


class BudgetEventOut(_Open):
    action: str
    amount: str
    actor: str
    at: str


class ProviderKeyOut(_Open):
    name: str
    weight: float
    value: str  # "<redacted>", or the env.NAME reference


class ProviderOut(_Open):
    name: str
    type: str
    base_url: str | None
    timeout_s: float
    models: list[str]
    keys: list[ProviderKeyOut]


class LogPageOut(_Open):
    data: list[dict[str, Any]]
    next_cursor: str | None


def ok(model: Any, status: int = 200, *, many: bool = False) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for a success answering ``model`` (a list of them if ``many``)."""
    return {status: {"model": list[model] if many else model, "description": "Success"}}
