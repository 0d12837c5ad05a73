from __future__ import annotations

import datetime
import json
from decimal import Decimal
from importlib import resources
from typing import Any

import pytest

from tollway.accounting.genai import GENAI_PRICES_VERSION, GenaiPrices
from tollway.accounting.pricing import ModelPrice, PriceBook, per_token
from tollway.errors import ConfigError

D = Decimal


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook()


def _raw() -> dict[str, Any]:
    text = resources.files("tollway.accounting").joinpath("prices.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def _price(book: PriceBook, model: str) -> ModelPrice:
    price = book.lookup(model)
    assert price is not None, model
    return price


def test_file_names_its_sources_date_and_the_pinned_base() -> None:
    data = _raw()
    datetime.date.fromisoformat(data["as_of"])
    datetime.date.fromisoformat(data["base"]["checked"])
    # Bumping the genai-prices pin means re-checking its data: the file says which it checked.
    assert data["base"]["version"] == GENAI_PRICES_VERSION
    for urls in data["source"].values():
        assert urls and all(url.startswith("https://") for url in urls)


def test_the_file_only_adds_what_genai_prices_lacks() -> None:
    # Tollway's own layer holds no published model: those come from the maintained data.
    base = GenaiPrices()
    now = datetime.datetime.now(datetime.UTC)
    for key, entry in _raw()["models"].items():
        if "*" in key:
            continue
        assert base.find(key, entry["provider"], now) is None, key


def test_prices_in_the_file_are_strings_and_patterns_state_assumptions() -> None:
    rate_fields = {"input", "output", "cache_write_5m", "cache_write_1h", "cache_read"}
    for key, entry in _raw()["models"].items():
        assert rate_fields <= set(entry), key
        for field in rate_fields | {"reasoning"}:
            if field in entry:
                assert isinstance(entry[field], str), (key, field)
        if "*" in key:
            assert len(entry["assumption"]) > 20, key


@pytest.mark.parametrize(
    ("model", "input_", "output"),
    [
        ("claude-opus-4-5", "5", "25"),
        ("claude-opus-4-1", "15", "75"),
        ("claude-opus-4", "15", "75"),
        ("claude-sonnet-4-5", "3", "15"),
        ("claude-sonnet-4", "3", "15"),
        ("claude-3-7-sonnet", "3", "15"),
        ("claude-haiku-4-5", "1", "5"),
        ("claude-3-5-haiku", "0.80", "4"),
        ("claude-opus-4-8", "5", "25"),
        ("claude-sonnet-4-6", "3", "15"),
        ("claude-opus-5", "5", "25"),
        ("gpt-5.2", "1.75", "14"),
        ("gpt-5-pro", "15", "120"),
        ("gpt-5", "1.25", "10"),
        ("gpt-5-mini", "0.25", "2"),
        ("gpt-5-nano", "0.05", "0.40"),
        ("gpt-5-codex", "1.25", "10"),
        ("gpt-4.1", "2", "8"),
        ("gpt-4.1-mini", "0.40", "1.60"),
        ("gpt-4.1-nano", "0.10", "0.40"),
        ("gpt-4o", "2.50", "10"),
        ("gpt-4o-mini", "0.15", "0.60"),
        ("o3", "2", "8"),
        ("o4-mini", "1.10", "4.40"),
        ("gemini-2.5-pro", "1.25", "10"),
        ("gemini-2.5-flash", "0.30", "2.50"),
        ("gemini-2.5-flash-lite", "0.10", "0.40"),
    ],
)
def test_published_list_prices(book: PriceBook, model: str, input_: str, output: str) -> None:
    rates = _price(book, model).rates
    assert (rates.input, rates.output) == (D(input_), D(output))


def test_anthropic_cache_multipliers_hold_in_every_entry_and_tier(book: PriceBook) -> None:
    for price in book.models(patterns=True).values():
        if price.provider != "anthropic" or price.model == "claude-3-haiku":
            continue  # Anthropic publishes Haiku 3's cache prices rounded: $0.30, $0.03
        tiers = [price.rates] + ([price.long_context.rates] if price.long_context else [])
        for rates in tiers:
            assert rates.cache_write_5m == rates.input * D("1.25"), price.model
            assert rates.cache_write_1h == rates.input * 2, price.model
            assert rates.cache_read == rates.input * D("0.1"), price.model


def test_openai_has_no_cache_write_charge(book: PriceBook) -> None:
    for price in book.models().values():
        if price.provider == "openai":
            assert price.rates.cache_write_5m == price.rates.input, price.model
            assert price.rates.cache_write_1h == price.rates.input, price.model
    assert _price(book, "gpt-5").rates.cache_read == D("0.125")
    assert _price(book, "gpt-4o").rates.cache_read == D("1.25")


def test_long_context_tiers(book: PriceBook) -> None:
    tier = _price(book, "claude-sonnet-4-5").long_context
    assert tier is not None
    assert tier.above_input_tokens == 200_000
    assert (tier.rates.input, tier.rates.output) == (D("6"), D("22.50"))
    gemini = _price(book, "gemini-2.5-pro").long_context
    assert gemini is not None
    assert (gemini.rates.input, gemini.rates.output) == (D("2.50"), D("15"))
    assert _price(book, "claude-opus-4-5").long_context is None
    # genai-prices has Sonnet 4 flat: trusted where it has the model and provider.
    assert _price(book, "claude-sonnet-4").long_context is None


def test_sonnet_4_6_long_context_tier_is_gone_from_2026_03_13(book: PriceBook) -> None:
    # Anthropic priced prompts over 200k at $6/$22.50 until 2026-03-12, flat $3/$15 after.
    before = book.lookup("claude-sonnet-4-6", "anthropic", at=_utc(2026, 3, 12, 23, 59))
    after = book.lookup("claude-sonnet-4-6", "anthropic", at=_utc(2026, 3, 13))
    assert before is not None and after is not None
    assert before.long_context is not None
    assert before.rates_for(275_000).input == D("6")
    assert after.long_context is None
    assert after.rates_for(275_000).input == D("3")


def test_rates_for_switches_only_above_the_threshold(book: PriceBook) -> None:
    price = _price(book, "claude-sonnet-4-5")
    assert price.rates_for(200_000) is price.rates
    assert price.rates_for(200_001).input == D("6")


@pytest.mark.parametrize(
    ("model", "entry"),
    [
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        ("claude-opus-4-20250514", "claude-opus-4-0"),  # genai-prices beats the opus-4 glob
        ("claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku-latest"),
        ("claude-opus-4-0", "claude-opus-4-0"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4.1-2025-04-14", "gpt-4.1"),
        ("gpt-5-2025-08-07", "gpt-5"),
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),  # a dated entry of its own wins
        ("anthropic/claude-sonnet-4-5", "claude-sonnet-4-5"),
        ("openrouter/openai/gpt-5-mini", "openai/gpt-5-mini"),  # OpenRouter's own price
        ("models/gemini-2.5-flash", "gemini-2.5-flash"),
        ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),
        ("  Claude-Sonnet-4-5 ", "claude-sonnet-4-5"),
    ],
)
def test_lookup_normalises_model_ids(book: PriceBook, model: str, entry: str) -> None:
    assert _price(book, model).model == entry


def test_future_minor_version_is_priced_by_its_family_glob(book: PriceBook) -> None:
    published = _price(book, "claude-opus-4-8")  # Claude Code's default in the captures
    assert published.model == "claude-opus-4-8" and published.assumption is None
    assert published.source.layer == "genai-prices"
    price = _price(book, "claude-opus-4-9")
    assert price.model == "claude-opus-4-*"
    assert price.assumption
    assert price.source.layer == "tollway"
    assert (price.rates.input, price.rates.output) == (D("5"), D("25"))
    assert _price(book, "claude-opus-4-9-20270101").model == "claude-opus-4-*"
    assert _price(book, "claude-sonnet-4-7").long_context is None  # like Sonnet 4.6 now
    assert _price(book, "claude-opus-4-5").assumption is None


@pytest.mark.parametrize("model", ["claude-sonnet-9", "gpt-99", "", "gemini-99-flash"])
def test_unknown_models(book: PriceBook, model: str) -> None:
    assert book.lookup(model) is None


def test_most_specific_glob_wins() -> None:
    data = {
        "models": {
            "m-*": {"input": "1", "output": "1", "assumption": "any m model"},
            "m-large-*": {"input": "9", "output": "9", "assumption": "large m models"},
        }
    }
    book = PriceBook(data=data)
    assert _price(book, "m-large-2").rates.input == D("9")
    assert _price(book, "m-small").rates.input == D("1")


def test_glob_without_an_assumption_is_rejected() -> None:
    with pytest.raises(ConfigError, match="assumption"):
        PriceBook(data={"models": {"m-*": {"input": "1", "output": "1"}}})


def test_override_merges_over_the_base_entry() -> None:
    book = PriceBook(overrides={"claude-sonnet-4-5": {"output": "14"}})
    price = _price(book, "claude-sonnet-4-5-20250929")
    assert price.rates.output == D("14")
    assert price.rates.input == D("3")
    assert price.rates.cache_read == D("0.30")
    assert price.long_context is not None
    assert _price(book, "claude-sonnet-4").rates.output == D("15")


def test_override_defines_a_new_model_with_cache_defaulting_to_input() -> None:
    book = PriceBook(overrides={"acme/local-coder": {"input": 0.1, "output": 2, "provider": "x"}})
    price = _price(book, "acme/local-coder")
    assert price.provider == "x"
    assert price.rates.input == D("0.1")  # a float goes through str, so it stays exact
    assert price.rates.output == D(2)
    assert price.rates.cache_read == price.rates.cache_write_1h == D("0.1")
    assert price.rates.reasoning is None


def test_set_override_on_a_glob_matched_id_makes_an_exact_entry() -> None:
    book = PriceBook()
    price = book.set_override("claude-opus-4-8", {"input": "4", "reasoning": "30"})
    assert price.model == "claude-opus-4-8"
    assert _price(book, "claude-opus-4-8").rates.input == D("4")
    assert _price(book, "claude-opus-4-8").rates.output == D("25")
    assert _price(book, "claude-opus-4-9").rates.input == D("5")
    assert "claude-opus-4-8" in book.models()


@pytest.mark.parametrize(
    "fields",
    [
        {"output": "1"},  # a new model needs input
        {"input": "-1", "output": "1"},
        {"input": "abc", "output": "1"},
        {"input": "NaN", "output": "1"},
        {"input": True, "output": "1"},
        {"input": "1", "output": "1", "colour": "red"},
    ],
)
def test_invalid_overrides_raise_config_error(fields: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        PriceBook().set_override("brand-new-model", fields)


def test_models_lists_entries_but_not_aliases_or_globs(book: PriceBook) -> None:
    models = book.models(base=True)
    assert "claude-opus-4-5" in models
    assert "claude-opus-4" not in models  # an alias of claude-opus-4-0
    assert "claude-opus-4-*" not in models
    assert list(models) == sorted(models)
    assert "claude-opus-4-*" in book.models(patterns=True)
    assert "claude-opus-4-5" not in book.models()  # Tollway's own layer only


def test_override_can_set_or_drop_the_long_context_tier() -> None:
    tier = {"above_input_tokens": 100_000, "input": "2", "output": "3"}
    book = PriceBook(
        overrides={"gpt-4.1": {"long_context": tier}, "claude-sonnet-4": {"long_context": None}}
    )
    price = _price(book, "gpt-4.1")
    assert price.long_context is not None
    assert price.rates_for(100_001).cache_read == D("2")
    assert _price(book, "claude-sonnet-4").long_context is None
    with pytest.raises(ConfigError):
        book.set_override("gpt-4.1", {"long_context": {"input": "2", "output": "3"}})


def test_per_token_is_exact() -> None:
    assert per_token(D("22.50")) == D("0.0000225")
    assert per_token(D("0.005")) * 1_000_000 == D("0.005")


def test_as_dict_is_json_ready(book: PriceBook) -> None:
    view = json.loads(json.dumps(_price(book, "claude-sonnet-4-5").as_dict()))
    assert D(view["long_context"]["output"]) == D("22.50")
    assert view["source"]["layer"] == "genai-prices"
    assert view["source"]["version"] == f"genai-prices:{GENAI_PRICES_VERSION}"
    assert view["tool_fees"] == {"web_search": "0.01"}
    assert view["context_window"] == 200_000


def _utc(*parts: int) -> datetime.datetime:
    return datetime.datetime(*parts, tzinfo=datetime.UTC)  # type: ignore[misc]
