"""The price book: maintained base prices with Tollway's additions and overrides on top.

Layers, highest first (the first that knows a model wins):

1. ``api``: overrides set through ``PUT /api/pricing/{model}`` (stored, re-applied at start);
2. ``config``: the config file's ``pricing:``;
3. ``tollway``: exact entries of the packaged ``prices.json`` (additions genai-prices lacks);
4. ``genai-prices``: the pinned package's bundled data, by provider, at the request's time;
5. ``tollway`` globs: assumptions for unpublished versions (``claude-opus-4-*``).

An override names only the fields it changes; the rest come from the layers below, resolved
at the same moment. ``resolve`` adds the two prices that are not in any table: zero for the
simulated provider, and ``gateway.fallback_price`` (marked estimated) for a model none knows.

    book = PriceBook(overrides=config.pricing)
    book.bind_providers({"groq": ("openai", "https://api.groq.com/openai/v1")})
    price = book.resolve("claude-sonnet-4-5-20250929", "anthropic", at=request_time)
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from importlib import resources
from typing import Any, TypeAlias

import msgspec

from tollway.accounting.genai import (
    GENAI_PRICES_VERSION,
    GENAI_PROVIDER_IDS,
    BasePrice,
    GenaiPrices,
)
from tollway.accounting.prices import (
    RATE_FIELDS,
    LongContextTier,
    ModelPrice,
    PriceSource,
    Rates,
    per_token,
    zero_price,
)
from tollway.errors import ConfigError

__all__ = ["LongContextTier", "ModelPrice", "PriceBook", "PriceSource", "Rates", "per_token"]

PriceValue: TypeAlias = str | int | float | Decimal
"""A price as config or the API may give it; floats go through ``str`` to stay exact."""

_TEXT_FIELDS = ("provider", "assumption", "note")
_ENTRY_FIELDS = frozenset(
    (*RATE_FIELDS, *_TEXT_FIELDS, "aliases", "long_context", "service_tiers", "tool_fees",
     "context_window")
)  # fmt: skip
_TIER_FIELDS = frozenset((*RATE_FIELDS, "above_input_tokens"))
_SERVICE_TIER_FIELDS = frozenset((*RATE_FIELDS, "long_context"))
# A release date at the end of a model id: -20250929, -2024-08-06, or Vertex's @20250929.
_DATE_SUFFIX = re.compile(r"[-@](?:\d{8}|\d{4}-\d{2}-\d{2})\Z", re.ASCII)
_CACHE_MAX = 4096
SIMULATED = "simulated"


class PriceBook:
    """Looks up a model's price at a moment, through the layers above.

    Built once at start-up (the only time the packaged files are read) and passed down.
    """

    def __init__(
        self,
        overrides: Mapping[str, Mapping[str, object]] | None = None,
        *,
        data: Mapping[str, Any] | None = None,
        fallback: Mapping[str, object] | None = None,
        base: GenaiPrices | None = None,
    ) -> None:
        if data is None:
            raw = resources.files("tollway.accounting").joinpath("prices.json").read_bytes()
            data = msgspec.json.decode(raw)
        if not isinstance(data.get("models"), Mapping):
            raise ConfigError("price data has no 'models' table")
        self.as_of: str = str(data.get("as_of", ""))
        self.source: Mapping[str, Any] = data.get("source", {})
        base_info = data.get("base", {})
        self.base_checked: str | None = base_info.get("checked") if base_info else None
        self.genai = base if base is not None else GenaiPrices()
        self._file_source = PriceSource(
            "tollway", "Tollway prices.json", url=None, checked=self.as_of or None,
            version=f"tollway:{self.as_of}",
        )  # fmt: skip
        self._entries: dict[str, ModelPrice] = {}
        self._exact: dict[str, ModelPrice] = {}
        self._patterns: tuple[tuple[re.Pattern[str], ModelPrice], ...] = ()
        for key, fields in data["models"].items():
            if not isinstance(fields, Mapping):
                raise ConfigError(f"price entry {key!r} is not an object")
            name = _key(key)
            if "*" in name and not fields.get("assumption"):
                raise ConfigError(f"price pattern {key!r} must state its 'assumption'")
            price = _parse_entry(name, fields, None).with_source(self._file_source)
            self._add(name, price, _aliases(key, fields))
        # Overrides: model key -> (layer, fields as given); merged over the layers below.
        self._overrides: dict[str, dict[str, Mapping[str, Any]]] = {}  # key -> layer -> fields
        self._provider_ids: dict[str, str | None] = {}
        self._cache: dict[tuple[str, str | None, int], ModelPrice | None] = {}
        self.fallback: ModelPrice | None = None
        if fallback:
            self.set_fallback(fallback)
        for key, fields in (overrides or {}).items():
            self.set_override(key, fields, layer="config")

    # --- providers ---------------------------------------------------------------------

    def bind_providers(self, providers: Mapping[str, tuple[str, str | None]]) -> None:
        """Tell the book each Tollway provider's type and base URL: ``{name: (type, url)}``.

        The genai-prices provider id is, in order: ``simulated`` for the simulated type;
        the name in ``GENAI_PROVIDER_IDS``; the base URL matched against genai-prices' API
        URL patterns; the type (``anthropic``/``openai``) when no base URL is set.
        """
        mapped: dict[str, str | None] = {}
        for name, (kind, url) in providers.items():
            mapped[name] = self._map_provider(name, kind, url)
        self._provider_ids = mapped
        self._cache.clear()

    def _map_provider(self, name: str, kind: str, url: str | None) -> str | None:
        if kind == SIMULATED:
            return SIMULATED
        known = GENAI_PROVIDER_IDS.get(name.lower())
        if known is not None:
            return known
        if url:
            return self.genai.provider_for_url(url)
        return GENAI_PROVIDER_IDS.get(kind)

    def genai_provider(self, provider: str | None, model: str) -> str | None:
        """The genai-prices provider id for a Tollway provider name (or the model alone)."""
        if provider is None:
            if "/" in model:
                head = _key(model).split("/", 1)[0]
                if head in GENAI_PROVIDER_IDS:
                    return GENAI_PROVIDER_IDS[head]
            return self.genai.provider_for_model(_bare(model))
        if provider in self._provider_ids:
            return self._provider_ids[provider]
        if provider == SIMULATED:
            return SIMULATED
        return GENAI_PROVIDER_IDS.get(provider.lower())

    # --- lookup ------------------------------------------------------------------------

    def lookup(
        self, model: str, provider: str | None = None, *, at: datetime | None = None
    ) -> ModelPrice | None:
        """The price for ``model`` served by Tollway provider ``provider`` at ``at`` (now).

        None when no layer knows the model. Tries, in each layer, the id as given, without a
        ``provider/`` prefix, and without a trailing release date.
        """
        at = at or datetime.now(UTC)
        gid = self.genai_provider(provider, model)
        if gid == SIMULATED:
            return zero_price(_key(model), provider or SIMULATED)
        key = (_key(model), gid, int(at.timestamp()) // 60)  # the UTC minute
        if key in self._cache:
            return self._cache[key]
        price = self._lookup(model, gid, at)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[key] = price
        return price

    def resolve(
        self, model: str, provider: str | None = None, *, at: datetime | None = None
    ) -> ModelPrice | None:
        """``lookup``, else the configured fallback price (``estimated``), else None."""
        price = self.lookup(model, provider, at=at)
        if price is None and self.fallback is not None:
            return replace(self.fallback, model=_key(model), provider=provider or "unknown")
        return price

    def _lookup(self, model: str, gid: str | None, at: datetime) -> ModelPrice | None:
        names = _candidates(model)
        for name in names:
            layers = self._overrides.get(name)
            if layers is not None:
                below = self._below(names, gid, at)
                if below is None:
                    # A partial override of a model this provider has no base price for
                    # stands on the model's own provider's price (what it was checked on).
                    below = self._below(names, self.genai_provider(None, name), at)
                return _overlay(name, layers, below)
        return self._below(names, gid, at)

    def _below(self, names: list[str], gid: str | None, at: datetime) -> ModelPrice | None:
        for name in names:
            price = self._exact.get(name)
            if price is not None:
                return price
        if gid is not None:
            for name in _genai_candidates(names):
                base = self.genai.find(name, gid, at)
                if base is not None:
                    return self._from_base(base)
        for name in names:
            for pattern, price in self._patterns:
                if pattern.match(name):
                    return price
        return None

    def _from_base(self, base: BasePrice) -> ModelPrice:
        source = PriceSource(
            "genai-prices", f"genai-prices {GENAI_PRICES_VERSION} ({base.provider_name})",
            url=base.url, checked=self.base_checked,
            version=f"genai-prices:{GENAI_PRICES_VERSION}",
        )  # fmt: skip
        return _base_model_price(base, source)

    # --- overrides ---------------------------------------------------------------------

    def set_override(
        self, model: str, fields: Mapping[str, object], *, layer: str = "api"
    ) -> ModelPrice:
        """Set the fields of a price entry for ``model`` over the layers below it.

        Fields are those of a ``prices.json`` entry: rates as ``PriceValue``, ``provider``,
        ``note``, ``assumption``, ``long_context`` (an object, or None to drop it),
        ``service_tiers`` ({tier: rates}), ``tool_fees`` ({tool: USD per use}) and
        ``context_window``. A model no layer knows needs ``input`` and ``output``; its cache
        prices default to ``input``. Raises ``ConfigError`` when invalid, changing nothing.
        """
        if layer not in _OVERRIDE_ORDER:
            raise ValueError(f"override layer must be one of {_OVERRIDE_ORDER}, not {layer!r}")
        name = _key(model)
        below = self._below(_candidates(name), self.genai_provider(None, name), datetime.now(UTC))
        layers = {k: v for k, v in self._overrides.get(name, {}).items() if k != layer}
        layers[layer] = dict(fields)
        ordered = {k: layers[k] for k in _OVERRIDE_ORDER if k in layers}
        price = _overlay(name, ordered, below, strict=True)  # validates
        assert price is not None
        self._overrides[name] = ordered
        self._cache.clear()
        return price

    def set_fallback(self, fields: Mapping[str, object]) -> ModelPrice:
        """The price charged for a model no layer knows; such requests are marked estimated."""
        price = _parse_entry("fallback", fields, None)
        source = PriceSource("fallback", "gateway.fallback_price", version=_digest("fallback",
                             fields))  # fmt: skip
        self.fallback = replace(price, source=source, estimated=True)
        return self.fallback

    def overridden(self) -> dict[str, str]:
        """Model key -> the layer of its override (``config`` or ``api``)."""
        return {name: list(layers)[-1] for name, layers in self._overrides.items()}

    def models(
        self, *, patterns: bool = False, base: bool = False, at: datetime | None = None
    ) -> dict[str, ModelPrice]:
        """Entries by key, sorted: Tollway's own and overridden ones, globs only with
        ``patterns``, and every genai-prices model of the bound providers with ``base``."""
        at = at or datetime.now(UTC)
        keys: set[str] = {k for k in self._entries if patterns or "*" not in k}
        keys |= set(self._overrides)
        out: dict[str, ModelPrice] = {}
        if base:
            bound = {g for g in self._provider_ids.values() if g and g != SIMULATED}
            for gid in sorted(bound or {"anthropic", "openai", "google"}):
                for model_id in self.genai.models(gid):
                    found = self.genai.find(model_id, gid, at)
                    if found is not None and model_id not in keys and model_id not in out:
                        out[model_id] = self._from_base(found)  # the first provider wins
        for key in keys:
            if "*" in key:
                out[key] = self._entries[key]
                continue
            price = self._lookup(key, self.genai_provider(None, key), at)
            if price is not None:
                out[key] = price
        return dict(sorted(out.items()))

    def _add(self, name: str, price: ModelPrice, aliases: Iterable[str]) -> None:
        self._entries[name] = price
        if "*" in name:
            compiled = re.compile(fnmatch.translate(name))
            kept = [(p, mp) for p, mp in self._patterns if mp.model != name]
            kept.append((compiled, price))
            # The glob with the most literal characters is the most specific.
            kept.sort(key=lambda item: -len(item[1].model.replace("*", "")))
            self._patterns = tuple(kept)
            return
        self._exact[name] = price
        for alias in aliases:
            self._exact[alias] = price


def _overlay(
    name: str,
    layers: Mapping[str, Mapping[str, Any]],
    below: ModelPrice | None,
    *,
    strict: bool = False,
) -> ModelPrice | None:
    """Config's fields over the base, then the API's over that; each names what it changes.

    Not ``strict`` (at request time), an overlay that cannot stand (a partial override with
    nothing below it) prices nothing rather than failing the request."""
    price = below
    for layer, fields in layers.items():
        try:
            merged = _parse_entry(name, fields, price)
        except ConfigError:
            if strict:
                raise
            return None
        price = merged.with_source(_override_source(layer, fields, price))
    return price


_OVERRIDE_ORDER = ("config", "api")


def _override_source(
    layer: str, fields: Mapping[str, Any], below: ModelPrice | None
) -> PriceSource:
    name = "config file pricing:" if layer == "config" else "PUT /api/pricing"
    return PriceSource(
        layer, name, version=_digest(layer, fields) + (f"+{below.version}" if below else ""),
        base=below.source if below else None,
    )  # fmt: skip


def _digest(layer: str, fields: Mapping[str, Any]) -> str:
    text = json.dumps(fields, sort_keys=True, default=str)
    return f"{layer}:{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def _base_model_price(base: BasePrice, source: PriceSource) -> ModelPrice:
    rates = _base_rates(base.tokens)
    tier = None
    if base.tiers:
        start, tokens = base.tiers[0]
        tier = LongContextTier(start, _base_rates(tokens))
    tiers = {name: _base_model_price(t, source) for name, t in base.service_tiers.items()}
    return ModelPrice(
        model=base.model_id, provider=base.provider_id, rates=rates, long_context=tier,
        note=base.comments, service_tiers=tiers, tool_fees=dict(base.fees),
        context_window=base.context_window, source=source,
    )  # fmt: skip


def _base_rates(tokens: Mapping[str, Decimal]) -> Rates:
    # genai-prices semantics: an unpriced cache kind is billed as its parent kind (a 1-hour
    # write as a write, a write or a read as plain input).
    input_ = tokens["input"]
    write = tokens.get("cache_write", input_)
    return Rates(
        input=input_,
        output=tokens["output"],
        cache_write_5m=write,
        cache_write_1h=tokens.get("cache_write_1h", write),
        cache_read=tokens.get("cache_read", input_),
        reasoning=tokens.get("reasoning"),
    )


def _key(model: str) -> str:
    return model.strip().lower()


def _bare(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _genai_candidates(names: list[str]) -> list[str]:
    """Ids to try in genai-prices: without a routing prefix (``openrouter/openai/x`` is
    ``openai/x`` at OpenRouter), then bare (``x``)."""
    out: list[str] = []
    for name in names:
        for candidate in (name.split("/", 1)[1] if "/" in name else name, _bare(name)):
            if candidate not in out:
                out.append(candidate)
    return out


def _candidates(model: str) -> list[str]:
    name = _key(model)
    names = [name]
    if "/" in name:
        name = name.rsplit("/", 1)[1]
        names.append(name)
    match = _DATE_SUFFIX.search(name)
    if match is not None:
        names.append(name[: match.start()])
    return names


def _aliases(key: str, fields: Mapping[str, Any]) -> list[str]:
    aliases = fields.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise ConfigError(f"price entry {key!r}: 'aliases' must be a list of strings")
    if aliases and "*" in key:
        raise ConfigError(f"price pattern {key!r} cannot have aliases")
    return [_key(a) for a in aliases]


def _parse_entry(name: str, fields: Mapping[str, Any], base: ModelPrice | None) -> ModelPrice:
    unknown = set(fields) - _ENTRY_FIELDS
    if unknown:
        raise ConfigError(f"price entry {name!r}: unknown fields {sorted(unknown)}")
    for field_name in _TEXT_FIELDS:
        value = fields.get(field_name)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"price entry {name!r}: {field_name!r} must be a string")
    rates = _parse_rates(name, fields, base.rates if base else None)
    tier = base.long_context if base else None
    if "long_context" in fields:
        tier = _parse_tier(name, fields["long_context"])
    service_tiers = dict(base.service_tiers) if base else {}
    if "service_tiers" in fields:
        service_tiers = _parse_service_tiers(name, fields["service_tiers"], rates, service_tiers)
    fees = dict(base.tool_fees) if base else {}
    if "tool_fees" in fields:
        fees = _parse_fees(name, fields["tool_fees"], fees)
    window = base.context_window if base else None
    if "context_window" in fields:
        window = _parse_window(name, fields["context_window"])
    text: dict[str, Any] = {t: fields[t] for t in _TEXT_FIELDS if t in fields}
    if base is None:
        return ModelPrice(
            model=name, provider=text.get("provider") or "custom", rates=rates,
            long_context=tier, assumption=text.get("assumption"), note=text.get("note"),
            service_tiers=service_tiers, tool_fees=fees, context_window=window,
        )  # fmt: skip
    return replace(
        base, model=name, provider=text.get("provider") or base.provider, rates=rates,
        long_context=tier, assumption=text.get("assumption", base.assumption),
        note=text.get("note", base.note), service_tiers=service_tiers, tool_fees=fees,
        context_window=window,
    )  # fmt: skip


def _parse_service_tiers(
    name: str, raw: Any, rates: Rates, current: dict[str, ModelPrice]
) -> dict[str, ModelPrice]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"price entry {name!r}: 'service_tiers' must be an object")
    out = dict(current)
    for tier_name, tier_fields in raw.items():
        label = f"{name} service tier {tier_name!r}"
        if tier_fields is None:
            out.pop(tier_name, None)
            continue
        if not isinstance(tier_fields, Mapping):
            raise ConfigError(f"price entry {label}: must be an object")
        unknown = set(tier_fields) - _SERVICE_TIER_FIELDS
        if unknown:
            raise ConfigError(f"price entry {label}: unknown fields {sorted(unknown)}")
        was = out.get(tier_name)
        tier_rates = _parse_rates(label, tier_fields, was.rates if was else rates)
        long_context = was.long_context if was else None
        if "long_context" in tier_fields:
            long_context = _parse_tier(label, tier_fields["long_context"])
        out[str(tier_name)] = ModelPrice(
            model=f"{name}@{tier_name}", provider="", rates=tier_rates, long_context=long_context
        )
    return out


def _parse_fees(name: str, raw: Any, current: dict[str, Decimal]) -> dict[str, Decimal]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"price entry {name!r}: 'tool_fees' must be an object")
    out = dict(current)
    for tool, fee in raw.items():
        if fee is None:
            out.pop(tool, None)
        else:
            out[str(tool)] = _decimal(name, f"tool_fees.{tool}", fee)
    return out


def _parse_window(name: str, raw: Any) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
        raise ConfigError(f"price entry {name!r}: 'context_window' must be a positive integer")
    return raw


def _parse_tier(name: str, raw: Any) -> LongContextTier | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"price entry {name!r}: 'long_context' must be an object")
    unknown = set(raw) - _TIER_FIELDS
    if unknown:
        raise ConfigError(f"price entry {name!r}: unknown long_context fields {sorted(unknown)}")
    above = raw.get("above_input_tokens")
    if isinstance(above, bool) or not isinstance(above, int) or above <= 0:
        raise ConfigError(f"price entry {name!r}: long_context needs above_input_tokens > 0")
    return LongContextTier(above, _parse_rates(f"{name} long_context", raw, None))


def _parse_rates(name: str, fields: Mapping[str, Any], base: Rates | None) -> Rates:
    def rate(field: str) -> Decimal | None:
        if field in fields and fields[field] is not None:
            return _decimal(name, field, fields[field])
        return None if base is None else getattr(base, field)

    input_, output = rate("input"), rate("output")
    if input_ is None or output is None:
        raise ConfigError(f"price entry {name!r}: 'input' and 'output' are required")
    # Absent cache prices mean no discount and no premium.
    write_5m = _or(rate("cache_write_5m"), input_)
    return Rates(
        input=input_,
        output=output,
        cache_write_5m=write_5m,
        cache_write_1h=_or(rate("cache_write_1h"), input_),
        cache_read=_or(rate("cache_read"), input_),
        reasoning=rate("reasoning"),
    )


def _or(value: Decimal | None, default: Decimal) -> Decimal:
    return default if value is None else value


def _decimal(name: str, field: str, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ConfigError(f"price entry {name!r}: {field!r} must be a number or a string")
    try:
        amount = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise ConfigError(f"price entry {name!r}: {field!r} is not a number: {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise ConfigError(f"price entry {name!r}: {field!r} must be finite and >= 0")
    return amount
