"""Model prices: list, resolve, and override at run time (``/api/pricing``).

An override set here is stored (setting ``pricing``) and re-applied at every start by
``apply_stored_prices``, after the config file's ``pricing``, so the API has the last
word. Prices are USD per million tokens (tool fees USD per use), as decimal strings or
numbers. Every price says where it came from (``source``: layer, name, URL, checked date,
version) and the layer that won.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from tollway.accounting.genai import GENAI_PRICES_VERSION
from tollway.accounting.pricing import PriceBook
from tollway.errors import ConfigError, InvalidField, NotFound
from tollway.storage.base import Store

if TYPE_CHECKING:
    from tollway.services import Services

log = logging.getLogger("tollway.pricing")
SETTING = "pricing"

ModelName = Annotated[str, Path(description="model id, e.g. claude-sonnet-4-5")]
Rate = Annotated[Decimal | None, Field(default=None, ge=0, le=10**6, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _RatesInput(_Strict):
    """USD per million tokens, by kind."""

    input: Rate
    output: Rate
    cache_write_5m: Rate
    cache_write_1h: Rate
    cache_read: Rate
    reasoning: Rate


class LongContextInput(_RatesInput):
    above_input_tokens: int = Field(gt=0, description="the tier applies above this prompt size")


class ServiceTierInput(_RatesInput):
    """A service tier's rates (OpenAI ``priority``/``flex``, Anthropic ``fast``)."""

    long_context: LongContextInput | None = None


Fee = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]


class PriceInput(_RatesInput):
    """Fields to set; absent ones keep the model's current price (a new model needs
    ``input`` and ``output``; its cache prices default to ``input``). ``service_tiers``
    and ``tool_fees`` merge by name; a tier or fee set to null is removed."""

    provider: str | None = None
    note: str | None = None
    assumption: str | None = None
    long_context: LongContextInput | None = None
    service_tiers: dict[str, ServiceTierInput | None] | None = None
    tool_fees: dict[str, Fee | None] | None = Field(
        default=None, description="USD per use: web_search, file_search, code_execution, request"
    )
    context_window: int | None = Field(default=None, gt=0)


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    """Drop unset (None) rates; keep the explicit nulls that remove a tier, a fee or the
    long-context tier."""
    out: dict[str, Any] = {}
    for k, v in fields.items():
        if k == "long_context" and isinstance(v, dict):
            out[k] = {f: x for f, x in v.items() if x is not None}
        elif k == "service_tiers" and isinstance(v, dict):
            out[k] = {t: _clean(x) if isinstance(x, dict) else None for t, x in v.items()}
        elif v is not None or k in ("long_context", "service_tiers", "tool_fees"):
            out[k] = v
    return out


def _merge(stored: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """A new override over the stored one; tiers and fees merge by name."""
    merged = {**stored, **fields}
    for k in ("service_tiers", "tool_fees"):
        old, new = stored.get(k), fields.get(k)
        if isinstance(old, dict) and isinstance(new, dict):
            merged[k] = {**old, **new}
    return merged


def _stored_doc(fields: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe: Decimals as strings, so nothing passes through a float."""
    return {
        k: _stored_doc(v) if isinstance(v, dict) else str(v) if isinstance(v, Decimal) else v
        for k, v in fields.items()
    }


async def stored_prices(store: Store) -> dict[str, dict[str, Any]]:
    text = await store.get_setting(SETTING)
    doc = json.loads(text) if text else {}
    return doc if isinstance(doc, dict) else {}


async def apply_stored_prices(store: Store, prices: PriceBook) -> int:
    """Re-apply the overrides set through the API; returns how many were applied.

    One that no longer validates is skipped with a warning rather than stopping the start.
    """
    applied = 0
    for model, fields in (await stored_prices(store)).items():
        try:
            prices.set_override(model, fields, layer="api")
        except ConfigError as exc:
            log.warning("stored price override for %r skipped: %s", model, exc)
            continue
        applied += 1
    return applied


def pricing_routes(services: Services) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["pricing"])
    lock = asyncio.Lock()

    @router.get("/pricing")
    async def list_prices() -> dict[str, Any]:
        """Every price: the maintained base for the configured providers, Tollway's own
        entries (globs included) and overrides, each with its source and winning layer."""
        book = services.prices
        overridden = book.overridden()
        return {
            "as_of": book.as_of,
            "base": {"package": "genai-prices", "version": GENAI_PRICES_VERSION,
                     "checked": book.base_checked},
            "source": book.source,
            "unit": "USD per 1,000,000 tokens",
            "layers": ["api", "config", "tollway", "genai-prices", "tollway globs"],
            "fallback": book.fallback.as_dict() if book.fallback else None,
            "data": [
                {**price.as_dict(), "key": name, "overridden": name in overridden,
                 "layer": price.source.layer}
                for name, price in book.models(patterns=True, base=True).items()
            ],
        }  # fmt: skip

    @router.get("/pricing/{model:path}")
    async def get_price(
        model: ModelName,
        provider: Annotated[str | None, Query(description="a configured provider name")] = None,
        at: Annotated[datetime | None, Query(description="price at this time (ISO 8601)")] = None,
    ) -> dict[str, Any]:
        """The price ``model`` resolves to (dated ids, provider prefixes and globs), by
        ``provider`` (else inferred from the model) at ``at`` (else now)."""
        when = at if at is None or at.tzinfo else at.replace(tzinfo=UTC)
        price = services.prices.lookup(model, provider, at=when)
        if price is None:
            fallback = services.prices.fallback
            what = (
                "charged at gateway.fallback_price and marked estimated"
                if fallback is not None
                else "refused under a budget (set gateway.fallback_price to charge a "
                "fallback instead)"
            )
            raise NotFound(
                f"no price for model {model!r}: its requests are {what}, or recorded as "
                f"cost_unknown without a budget; set one with PUT /api/pricing/{model}"
            )
        return {"requested": model, "layer": price.source.layer, **price.as_dict()}

    @router.put("/pricing/{model:path}")
    async def put_price(model: ModelName, body: Annotated[PriceInput, Body()]) -> dict[str, Any]:
        """Set an override: merged over the current price, stored, applied at once."""
        fields = _clean(body.model_dump(exclude_unset=True))
        key = model.strip().lower()
        async with lock:  # read-modify-write of the stored overrides
            stored = await stored_prices(services.store)
            merged = _merge(stored.get(key, {}), _stored_doc(fields))
            try:
                price = services.prices.set_override(key, merged, layer="api")
            except ConfigError as exc:
                raise InvalidField("body", str(exc)) from None
            stored[key] = merged
            await services.store.put_setting(SETTING, json.dumps(stored, sort_keys=True))
        return {"requested": model, "layer": price.source.layer, **price.as_dict()}

    return router
