"""Model prices: the packaged ``prices.json`` plus overrides from config or the admin API.

Prices are USD per million tokens, held as ``Decimal`` and parsed from strings so that
no binary float ever touches money.

    book = PriceBook(overrides={"gpt-4o": {"input": "2.00"}})
    price = book.lookup("claude-sonnet-4-5-20250929")  # the claude-sonnet-4-5 entry
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from importlib import resources
from typing import Any, TypeAlias

import msgspec

from tollway.errors import ConfigError

PriceValue: TypeAlias = str | int | float | Decimal
"""A price as config or the API may give it; floats go through ``str`` to stay exact."""

_RATE_FIELDS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read", "reasoning")
_TEXT_FIELDS = ("provider", "assumption", "note")
_ENTRY_FIELDS = frozenset((*_RATE_FIELDS, *_TEXT_FIELDS, "aliases", "long_context"))
_TIER_FIELDS = frozenset((*_RATE_FIELDS, "above_input_tokens"))
# A release date at the end of a model id: -20250929, -2024-08-06, or Vertex's @20250929.
_DATE_SUFFIX = re.compile(r"[-@](?:\d{8}|\d{4}-\d{2}-\d{2})\Z", re.ASCII)


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

    def as_strings(self) -> dict[str, str]:
        out = {name: str(getattr(self, name)) for name in _RATE_FIELDS[:-1]}
        if self.reasoning is not None:
            out["reasoning"] = str(self.reasoning)
        return out


@dataclass(frozen=True, slots=True)
class LongContextTier:
    """Rates for a whole request whose prompt exceeds ``above_input_tokens``."""

    above_input_tokens: int
    rates: Rates


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """The price of one model. ``model`` is the entry that matched (maybe a glob).

    ``assumption`` is set when the price is inferred rather than published.
    """

    model: str
    provider: str
    rates: Rates
    long_context: LongContextTier | None = None
    assumption: str | None = None
    note: str | None = None

    def rates_for(self, prompt_tokens: int) -> Rates:
        """Rates for a request with this many prompt tokens (input + cache read + write)."""
        tier = self.long_context
        if tier is not None and prompt_tokens > tier.above_input_tokens:
            return tier.rates
        return self.rates

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (prices as strings) for the admin API."""
        out: dict[str, Any] = {"model": self.model, "provider": self.provider}
        out.update(self.rates.as_strings())
        if self.long_context is not None:
            tier = {"above_input_tokens": self.long_context.above_input_tokens}
            out["long_context"] = tier | self.long_context.rates.as_strings()
        if self.assumption is not None:
            out["assumption"] = self.assumption
        if self.note is not None:
            out["note"] = self.note
        return out


class PriceBook:
    """Looks up a model's price, resolving dated ids, provider prefixes and globs.

    Built once at start-up (the only time the packaged file is read) and passed down.

        book = PriceBook(overrides=config.prices)
        book.lookup("anthropic/claude-opus-4-20250514")
    """

    def __init__(
        self,
        overrides: Mapping[str, Mapping[str, object]] | None = None,
        *,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        if data is None:
            raw = resources.files("tollway.accounting").joinpath("prices.json").read_bytes()
            data = msgspec.json.decode(raw)
        if not isinstance(data.get("models"), Mapping):
            raise ConfigError("price data has no 'models' table")
        self.as_of: str = str(data.get("as_of", ""))
        self.source: Mapping[str, Any] = data.get("source", {})
        self._entries: dict[str, ModelPrice] = {}
        self._exact: dict[str, ModelPrice] = {}
        self._patterns: tuple[tuple[re.Pattern[str], ModelPrice], ...] = ()
        for key, fields in data["models"].items():
            if not isinstance(fields, Mapping):
                raise ConfigError(f"price entry {key!r} is not an object")
            name = _key(key)
            if "*" in name and not fields.get("assumption"):
                raise ConfigError(f"price pattern {key!r} must state its 'assumption'")
            self._add(name, _parse_entry(name, fields, None), _aliases(key, fields))
        for key, fields in (overrides or {}).items():
            self.set_override(key, fields)

    def lookup(self, model: str) -> ModelPrice | None:
        """The price for ``model``, or None when nothing in the book matches.

        Tries, in order, each of: the id as given, without a ``provider/`` prefix, and
        without a trailing release date; exact entries (and aliases) first, then globs,
        the most specific glob winning.
        """
        names = _candidates(model)
        for name in names:
            price = self._exact.get(name)
            if price is not None:
                return price
        for name in names:
            for pattern, price in self._patterns:
                if pattern.match(name):
                    return price
        return None

    def set_override(self, model: str, fields: Mapping[str, object]) -> ModelPrice:
        """Merge ``fields`` over the price ``model`` resolves to, or define a new model.

        Fields are those of a ``prices.json`` entry: rates as ``PriceValue``, ``provider``,
        ``note``, and ``long_context`` (an object like the file's, or None to drop it).
        A new model needs ``input`` and ``output``; cache prices default to ``input``.
        The result is an exact entry for ``model``. Raises ``ConfigError`` when invalid.
        """
        name = _key(model)
        price = _parse_entry(name, fields, self.lookup(name))
        self._add(name, price, ())
        return price

    def models(self, *, patterns: bool = False) -> dict[str, ModelPrice]:
        """Every entry by key, sorted; aliases left out, and globs unless ``patterns``."""
        return {
            key: price for key, price in sorted(self._entries.items()) if patterns or "*" not in key
        }

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


def _key(model: str) -> str:
    return model.strip().lower()


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
    for text in _TEXT_FIELDS:
        if text in fields and not isinstance(fields[text], str):
            raise ConfigError(f"price entry {name!r}: {text!r} must be a string")
    rates = _parse_rates(name, fields, base.rates if base else None)
    tier = base.long_context if base else None
    if "long_context" in fields:
        tier = _parse_tier(name, fields["long_context"])
    if base is None:
        return ModelPrice(
            model=name,
            provider=fields.get("provider", "custom"),
            rates=rates,
            long_context=tier,
            assumption=fields.get("assumption"),
            note=fields.get("note"),
        )
    return replace(
        base,
        model=name,
        provider=fields.get("provider", base.provider),
        rates=rates,
        long_context=tier,
        assumption=fields.get("assumption", base.assumption),
        note=fields.get("note", base.note),
    )


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
        if field in fields:
            return _decimal(name, field, fields[field])
        return None if base is None else getattr(base, field)

    input_, output = rate("input"), rate("output")
    if input_ is None or output is None:
        raise ConfigError(f"price entry {name!r}: 'input' and 'output' are required")
    # Absent cache prices mean no discount and no premium.
    return Rates(
        input=input_,
        output=output,
        cache_write_5m=_or(rate("cache_write_5m"), input_),
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
