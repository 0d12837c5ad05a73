"""The base price layer: the pinned ``genai-prices`` package and its bundled data.

Only the data snapshot shipped inside the package is read (no network, ever: the package's
auto-update is never started). Its prices become Tollway ``ModelPrice`` values resolved for
one moment, because the data holds start-dated prices (Anthropic dropped Sonnet 4.6's
long-context tier on 2026-03-13) and daily off-peak windows.

Tollway names providers freely (``groq`` is an OpenAI-compatible provider of type
``openai``); ``genai_provider_id`` maps a Tollway provider to a genai-prices provider id,
first by the explicit table ``GENAI_PROVIDER_IDS``, then by the base URL against the
package's own API URL patterns. A provider that maps to nothing gets no base prices.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from genai_prices import data_snapshot
from genai_prices import types as gp

GENAI_PRICES_VERSION = importlib.metadata.version("genai-prices")

# Tollway provider name (or type) -> genai-prices provider id. Names not here are matched
# by base URL; see ``genai_provider_id``.
GENAI_PROVIDER_IDS: Mapping[str, str] = {
    "anthropic": "anthropic",
    "openai": "openai",
    "gemini": "google",
    "google": "google",
    "vertex": "google",
    "groq": "groq",
    "mistral": "mistral",
    "deepseek": "deepseek",
    "xai": "x-ai",
    "x-ai": "x-ai",
    "grok": "x-ai",
    "together": "together",
    "fireworks": "fireworks",
    "openrouter": "openrouter",
    "cerebras": "cerebras",
    "perplexity": "perplexity",
    "cohere": "cohere",
    "azure": "azure",
    "bedrock": "aws",
    "moonshot": "moonshotai",
}

# Price keys the gateway bills, by what Tollway calls them.
_TOKEN_KEYS = {
    "input": "input_mtok",
    "output": "output_mtok",
    "cache_read": "cache_read_mtok",
    "cache_write": "cache_write_mtok",
    "cache_write_1h": "cache_write_1h_mtok",
    "reasoning": "output_reasoning_mtok",
}
# Per-use fees, priced per 1,000 uses in the data: Tollway name -> (price key, per).
_FEE_KEYS = {
    "web_search": "web_searches_kcount",
    "file_search": "storage_searches_kcount",
    "code_execution": "code_executions_kcount",
    "request": "requests_kcount",
}
# Request-context keys that select a service tier (OpenAI service_tier, Anthropic speed).
TIER_CONTEXT_KEYS = ("service_tier", "speed")
_THOUSAND = Decimal(1000)


@dataclass(frozen=True, slots=True)
class BasePrice:
    """One model's genai-prices entry resolved at a moment, in Tollway's terms.

    ``tokens`` holds USD per million tokens by kind (tiered keys as their base value) and
    ``tiers`` the long-context thresholds with their per-kind rates; ``fees`` is USD per use.
    """

    provider_id: str
    provider_name: str
    model_id: str
    model_name: str | None
    url: str | None
    context_window: int | None
    comments: str | None
    tokens: Mapping[str, Decimal]
    tiers: tuple[tuple[int, Mapping[str, Decimal]], ...]
    fees: Mapping[str, Decimal]
    service_tiers: Mapping[str, BasePrice]


class GenaiPrices:
    """Looks models up in the bundled snapshot: ``GenaiPrices().find("gpt-5.2", "openai", at)``."""

    def __init__(self) -> None:
        self._snapshot = data_snapshot.get_snapshot()
        self._providers = {p.id: p for p in self._snapshot.providers}
        self._cache: dict[tuple[str, str, tuple[bool, ...]], BasePrice | None] = {}

    def provider_ids(self) -> list[str]:
        return sorted(self._providers)

    def provider_for_url(self, base_url: str) -> str | None:
        for provider in self._snapshot.providers:
            if re.match(provider.api_pattern, base_url):
                return provider.id
        return None

    def provider_for_model(self, model: str) -> str | None:
        """The provider genai-prices would pick for a bare model id (``gpt-*``: openai)."""
        for provider in self._snapshot.providers:
            if provider.model_match is not None and provider.model_match.is_match(model.lower()):
                return provider.id
        return None

    def find(self, model: str, provider_id: str, at: datetime) -> BasePrice | None:
        provider = self._providers.get(provider_id)
        if provider is None:
            return None
        info = provider.find_model(model, all_providers=self._snapshot.providers)
        if info is None:
            return None
        own = any(info is m for m in provider.models)
        sig = tuple(c.active(at) for c in _constraints(info))
        key = (provider.id, info.id, sig if own else (*sig, False))
        if key not in self._cache:
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[key] = _convert(provider, info, at, own)
        return self._cache[key]

    def models(self, provider_id: str) -> list[str]:
        provider = self._providers.get(provider_id)
        return [m.id for m in provider.models] if provider else []


def _constraints(info: gp.ModelInfo) -> Iterator[gp.StartDateConstraint | gp.TimeOfDateConstraint]:
    if not isinstance(info.prices, gp.ModelPrice):
        for conditional in info.prices:
            if conditional.constraint is not None:
                yield conditional.constraint
    for variant in info.price_variants or ():
        if variant.constraint is not None:
            yield variant.constraint


def _convert(
    provider: gp.Provider, info: gp.ModelInfo, at: datetime, own: bool
) -> BasePrice | None:
    standard = info.get_prices(at)
    base = _base_price(provider, info, standard, {})
    if base is None or not own:
        return base
    tiers: dict[str, BasePrice] = {}
    for variant in info.price_variants or ():
        if len(variant.when) != 1:
            continue
        ((key, value),) = variant.when.items()
        if key not in TIER_CONTEXT_KEYS or value in ("default", "standard"):
            continue
        if variant.constraint is not None and not variant.constraint.active(at):
            continue
        resolved = info.get_prices(at, {key: value})
        tier = _base_price(provider, info, resolved, {})
        if tier is not None and value not in tiers:
            tiers[value] = tier
    return _with_tiers(base, tiers)


def _with_tiers(base: BasePrice, tiers: Mapping[str, BasePrice]) -> BasePrice:
    return BasePrice(
        base.provider_id, base.provider_name, base.model_id, base.model_name, base.url,
        base.context_window, base.comments, base.tokens, base.tiers, base.fees, dict(tiers),
    )  # fmt: skip


def _base_price(
    provider: gp.Provider, info: gp.ModelInfo, price: gp.ModelPrice, tiers: Mapping[str, Any]
) -> BasePrice | None:
    values: dict[str, Any] = {
        name: getattr(price, key) for name, key in _TOKEN_KEYS.items() if getattr(price, key)
    }
    if "input" not in values or "output" not in values:
        return None  # not priced per text token (image, audio, embedding-only models)
    tokens = {name: _flat(v) for name, v in values.items()}
    starts = sorted({t.start for v in values.values() if isinstance(v, gp.TieredPrices)
                     for t in v.tiers})  # fmt: skip
    tiered = tuple((start, {n: _at_tier(v, start) for n, v in values.items()}) for start in starts)
    fees = {
        name: _flat(getattr(price, key)) / _THOUSAND
        for name, key in _FEE_KEYS.items()
        if getattr(price, key) is not None
    }
    urls = provider.pricing_urls or []
    return BasePrice(
        provider_id=provider.id, provider_name=provider.name, model_id=info.id,
        model_name=info.name, url=urls[0] if urls else None,
        context_window=info.context_window, comments=info.price_comments,
        tokens=tokens, tiers=tiered, fees=fees, service_tiers=dict(tiers),
    )  # fmt: skip


def _flat(value: Decimal | gp.TieredPrices) -> Decimal:
    return value.base if isinstance(value, gp.TieredPrices) else value


def _at_tier(value: Decimal | gp.TieredPrices, start: int) -> Decimal:
    """The rate that applies once the prompt exceeds ``start`` tokens."""
    if not isinstance(value, gp.TieredPrices):
        return value
    rate = value.base
    for tier in value.tiers:
        if start >= tier.start:
            rate = tier.price
    return rate
