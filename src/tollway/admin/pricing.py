"""Model prices: list, resolve, and override at run time (``/api/pricing``).

An override set here is stored (setting ``pricing``) and re-applied at every start by
``apply_stored_prices``, after the config file's ``pricing``, so the API has the last
word. Prices are USD per million tokens, as decimal strings or numbers.
"""

from __future__ import annotations

import asyncio
import json
import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from tollway.accounting.pricing import PriceBook
from tollway.errors import ConfigError, NotFound
from tollway.storage.base import Store

if TYPE_CHECKING:
    from tollway.services import Services

log = logging.getLogger("tollway.pricing")
SETTING = "pricing"

ModelName = Annotated[str, Path(description="model id, e.g. claude-sonnet-4-5")]
Rate = Annotated[Decimal | None, Field(default=None, ge=0, allow_inf_nan=False)]


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


class PriceInput(_RatesInput):
    """Fields to set; absent ones keep the model's current price (a new model needs
    ``input`` and ``output``; its cache prices default to ``input``)."""

    provider: str | None = None
    note: str | None = None
    assumption: str | None = None
    long_context: LongContextInput | None = None


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
            prices.set_override(model, fields)
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
        """Every price entry (globs included), USD per million tokens."""
        book = services.prices
        overridden = set(services.config.pricing) | set(await stored_prices(services.store))
        return {
            "as_of": book.as_of,
            "source": book.source,
            "unit": "USD per 1,000,000 tokens",
            "data": [
                {**price.as_dict(), "overridden": name in overridden}
                for name, price in book.models().items()
            ],
        }

    @router.get("/pricing/{model:path}")
    async def get_price(model: ModelName) -> dict[str, Any]:
        """The price ``model`` resolves to (dated ids, provider prefixes and globs)."""
        price = services.prices.lookup(model)
        if price is None:
            raise NotFound(
                f"no price for model {model!r}: its requests are recorded as cost_unknown; "
                f"set one with PUT /api/pricing/{model}"
            )
        return {"requested": model, **price.as_dict()}

    @router.put("/pricing/{model:path}", response_model=None)
    async def put_price(
        model: ModelName, body: Annotated[PriceInput, Body()]
    ) -> dict[str, Any] | JSONResponse:
        """Set an override: merged over the current price, stored, applied at once."""
        fields = body.model_dump(exclude_unset=True)
        if isinstance(fields.get("long_context"), dict):
            fields["long_context"] = {
                k: v for k, v in fields["long_context"].items() if v is not None
            }
        fields = {k: v for k, v in fields.items() if v is not None or k == "long_context"}
        key = model.strip().lower()
        async with lock:  # read-modify-write of the stored overrides
            stored = await stored_prices(services.store)
            merged = {**stored.get(key, {}), **_stored_doc(fields)}
            try:
                price = services.prices.set_override(key, merged)
            except ConfigError as exc:
                detail = [{"type": "value_error", "loc": ["body"], "msg": str(exc)}]
                return JSONResponse({"detail": detail}, status_code=422)
            stored[key] = merged
            await services.store.put_setting(SETTING, json.dumps(stored, sort_keys=True))
        return {"requested": model, **price.as_dict()}

    return router
