"""Price values: rates, long-context tiers, service tiers, tool fees and where they came from.

Prices are USD per million tokens (tool fees USD per use), held as ``Decimal`` and parsed
from strings so that no binary float ever touches money.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

RATE_FIELDS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read", "reasoning")
_ZERO = Decimal(0)


def per_token(per_million: Decimal) -> Decimal:
    """The exact price of one token, given the price of a million."""
    return per_million.scaleb(-6)


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per million tokens of each kind; ``reasoning`` is None when billed as output."""

    input: Decimal
    output: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    cache_read: Decimal
    reasoning: Decimal | None = None

    @property
    def dearest_input(self) -> Decimal:
        """The highest rate any prompt token can be billed at (usually a 1-hour cache write)."""
        return max(self.input, self.cache_write_5m, self.cache_write_1h, self.cache_read)

    @property
    def dearest_output(self) -> Decimal:
        if self.reasoning is None:
            return self.output
        return max(self.output, self.reasoning)

    def as_strings(self) -> dict[str, str]:
        out = {name: str(getattr(self, name)) for name in RATE_FIELDS[:-1]}
        if self.reasoning is not None:
            out["reasoning"] = str(self.reasoning)
        return out

    def maximum(self, other: Rates) -> Rates:
        """Field by field, the dearer of two sets of rates."""
        reasoning = self.reasoning
        if other.reasoning is not None:
            reasoning = other.reasoning if reasoning is None else max(reasoning, other.reasoning)
        return Rates(
            input=max(self.input, other.input),
            output=max(self.output, other.output),
            cache_write_5m=max(self.cache_write_5m, other.cache_write_5m),
            cache_write_1h=max(self.cache_write_1h, other.cache_write_1h),
            cache_read=max(self.cache_read, other.cache_read),
            reasoning=reasoning,
        )


ZERO_RATES = Rates(_ZERO, _ZERO, _ZERO, _ZERO, _ZERO)


@dataclass(frozen=True, slots=True)
class LongContextTier:
    """Rates for a whole request whose prompt exceeds ``above_input_tokens``."""

    above_input_tokens: int
    rates: Rates


@dataclass(frozen=True, slots=True)
class PriceSource:
    """Where a price came from and which layer won.

    ``layer`` is one of ``genai-prices`` (the maintained base), ``tollway`` (the packaged
    additions file), ``config`` (the config file's ``pricing:``), ``api`` (set through
    ``/api/pricing``), ``fallback`` (``gateway.fallback_price``, for models without a
    price) or ``simulated``. ``version`` is what a request record keeps.
    """

    layer: str
    name: str
    url: str | None = None
    checked: str | None = None
    version: str = ""
    base: PriceSource | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "layer": self.layer,
            "name": self.name,
            "url": self.url,
            "checked": self.checked,
            "version": self.version,
        }
        if self.base is not None:
            out["base"] = self.base.as_dict()
        return out


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """The price of one model at one moment. ``model`` is the entry that matched.

    ``assumption`` is set when the price is inferred rather than published; ``estimated``
    when it is the configured fallback for a model without a price. ``service_tiers`` maps
    a tier as the response reports it (OpenAI ``service_tier`` ``priority``/``flex``,
    Anthropic ``speed`` ``fast``) to that tier's price. ``tool_fees`` is USD per use of a
    server-side tool (``web_search``, ``file_search``, ``code_execution``) or per
    ``request``. ``context_window`` is the most prompt tokens the model accepts.

        price.for_tier(usage.service_tier).rates_for(usage.prompt_tokens)
        price.worst_rates().dearest_input   # for a worst-case reservation
    """

    model: str
    provider: str
    rates: Rates
    long_context: LongContextTier | None = None
    assumption: str | None = None
    note: str | None = None
    service_tiers: Mapping[str, ModelPrice] = field(default_factory=dict)
    tool_fees: Mapping[str, Decimal] = field(default_factory=dict)
    context_window: int | None = None
    source: PriceSource = field(default_factory=lambda: PriceSource("tollway", "Tollway"))
    estimated: bool = False

    @property
    def version(self) -> str:
        return self.source.version

    def rates_for(self, prompt_tokens: int) -> Rates:
        """Rates for a request with this many prompt tokens (input + cache read + write)."""
        tier = self.long_context
        if tier is not None and prompt_tokens > tier.above_input_tokens:
            return tier.rates
        return self.rates

    def for_tier(self, tier: str | None) -> ModelPrice:
        """The price at a service tier; the standard price for None or an unpriced tier."""
        if tier is None:
            return self
        return self.service_tiers.get(tier, self)

    def worst_rates(self) -> Rates:
        """Field by field, the dearest rate over every long-context and service tier."""
        worst = self.rates
        for price in (self, *self.service_tiers.values()):
            worst = worst.maximum(price.rates)
            if price.long_context is not None:
                worst = worst.maximum(price.long_context.rates)
        return worst

    @property
    def dearest_input_rate(self) -> Decimal:
        return self.worst_rates().dearest_input

    @property
    def dearest_output_rate(self) -> Decimal:
        return self.worst_rates().dearest_output

    def tier_multipliers(self) -> dict[str, Decimal]:
        """Per service tier, its dearest rate over the standard one (2 for OpenAI priority)."""
        base = max(self.rates.dearest_input, self.rates.dearest_output)
        if base == 0:
            return {name: Decimal(1) for name in self.service_tiers}
        return {
            name: max(t.rates.dearest_input, t.rates.dearest_output) / base
            for name, t in self.service_tiers.items()
        }

    def with_source(self, source: PriceSource) -> ModelPrice:
        return replace(self, source=source)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (prices as strings) for the admin API and the CLI."""
        out: dict[str, Any] = {"model": self.model, "provider": self.provider}
        out.update(self.rates.as_strings())
        if self.long_context is not None:
            tier = {"above_input_tokens": self.long_context.above_input_tokens}
            out["long_context"] = tier | self.long_context.rates.as_strings()
        if self.service_tiers:
            out["service_tiers"] = {
                name: {k: v for k, v in t.as_dict().items() if k in (*RATE_FIELDS, "long_context")}
                for name, t in self.service_tiers.items()
            }
        if self.tool_fees:
            out["tool_fees"] = {name: str(fee) for name, fee in self.tool_fees.items()}
        if self.context_window is not None:
            out["context_window"] = self.context_window
        for text in ("assumption", "note"):
            if getattr(self, text) is not None:
                out[text] = getattr(self, text)
        out["estimated"] = self.estimated
        out["source"] = self.source.as_dict()
        return out


def zero_price(model: str, provider: str) -> ModelPrice:
    """The simulated provider's price: nothing, for every kind and tier."""
    source = PriceSource("simulated", "simulated provider (no upstream call)", version="simulated")
    return ModelPrice(model=model, provider=provider, rates=ZERO_RATES, source=source)
