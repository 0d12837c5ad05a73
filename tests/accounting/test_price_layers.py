"""The price book's layers, provider mapping and the per-model facts worst cases need."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from tollway.accounting.genai import GENAI_PRICES_VERSION, GENAI_PROVIDER_IDS, GenaiPrices
from tollway.accounting.pricing import ModelPrice, PriceBook
from tollway.config import parse_config, price_providers
from tollway.errors import ConfigError

D = Decimal
NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)


def _get(book: PriceBook, model: str, provider: str | None = None) -> ModelPrice:
    price = book.lookup(model, provider, at=NOW)
    assert price is not None, (model, provider)
    return price


@pytest.mark.parametrize(
    ("name", "genai_id"),
    [
        ("anthropic", "anthropic"),
        ("openai", "openai"),
        ("gemini", "google"),
        ("google", "google"),
        ("groq", "groq"),
        ("mistral", "mistral"),
        ("deepseek", "deepseek"),
        ("xai", "x-ai"),
        ("openrouter", "openrouter"),
        ("bedrock", "aws"),
    ],
)
def test_provider_names_map_to_genai_prices_ids_that_exist(name: str, genai_id: str) -> None:
    assert GENAI_PROVIDER_IDS[name] == genai_id
    assert genai_id in GenaiPrices().provider_ids()


def test_every_mapped_id_exists_in_the_pinned_data() -> None:
    known = set(GenaiPrices().provider_ids())
    assert set(GENAI_PROVIDER_IDS.values()) <= known


def test_configured_providers_are_mapped_by_name_then_base_url_then_type() -> None:
    config = parse_config(
        """
providers:
  anthropic: {keys: [{value: sk-x}]}
  groq: {type: openai, base_url: https://api.groq.com/openai/v1, keys: [{value: g}]}
  fast-llama: {type: openai, base_url: https://api.groq.com/openai/v1, keys: [{value: g}]}
  work-openai: {type: openai, keys: [{value: o}]}
  local: {type: openai, base_url: http://127.0.0.1:8000/v1, keys: [{value: l}]}
  simulated: {}
  demo: {type: simulated, simulated: {price_as: anthropic}}
"""
    )
    book = PriceBook()
    book.bind_providers(price_providers(config))
    assert book.genai_provider("anthropic", "x") == "anthropic"
    assert book.genai_provider("groq", "x") == "groq"
    assert book.genai_provider("fast-llama", "x") == "groq"  # by base URL
    assert book.genai_provider("work-openai", "x") == "openai"  # by type, default URL
    assert book.genai_provider("local", "x") is None  # a local server has no list price
    assert book.genai_provider("simulated", "x") == "simulated"
    assert book.genai_provider("demo", "x") == "anthropic"
    # Groq's own price for a model it serves, not OpenAI's.
    llama = _get(book, "llama-3.3-70b-versatile", "fast-llama")
    assert (llama.rates.input, llama.rates.output) == (D("0.59"), D("0.79"))
    assert llama.provider == "groq"
    assert book.lookup("gpt-5", "local", at=NOW) is None
    zero = _get(book, "claude-opus-4-8", "simulated")
    assert zero.rates.dearest_input == 0 and zero.version == "simulated"
    assert _get(book, "claude-opus-4-8", "demo").rates.input == D("5")


def test_the_facts_a_worst_case_needs() -> None:
    book = PriceBook()
    gpt = _get(book, "gpt-5.2", "openai")
    # https://developers.openai.com/api/docs/pricing: $1.75 / $14, priority $3.50 / $28.
    assert gpt.context_window == 400_000
    assert gpt.tool_fees["web_search"] == D("0.01")  # $10 per 1,000 calls
    assert set(gpt.service_tiers) == {"flex", "priority", "fast"}
    assert gpt.for_tier("priority").rates.output == D("28")
    assert gpt.for_tier("flex").rates.input == D("0.875")
    assert gpt.tier_multipliers() == {"flex": D("0.5"), "priority": D(2), "fast": D(2)}
    assert gpt.dearest_input_rate == D("3.5")  # priority input
    assert gpt.dearest_output_rate == D("28")
    opus = _get(book, "claude-opus-4-8", "anthropic")
    # https://platform.claude.com/docs/en/about-claude/pricing: fast mode $10 / $50.
    assert opus.for_tier("fast").rates.input == D("10")
    assert opus.for_tier("fast").rates.cache_write_1h == D("20")
    assert opus.worst_rates().dearest_input == D("20")
    assert opus.for_tier("priority") is opus  # an unpriced tier bills at standard
    sonnet = _get(book, "claude-sonnet-4-5", "anthropic")
    assert sonnet.worst_rates().output == D("22.5")  # its long-context tier


def test_layers_win_in_order_and_say_which() -> None:
    book = PriceBook(overrides={"gpt-5.2": {"output": "13"}})
    price = _get(book, "gpt-5.2", "openai")
    assert price.rates.output == D("13")
    assert price.rates.input == D("1.75")  # from genai-prices, below the override
    assert price.source.layer == "config"
    assert price.source.base is not None and price.source.base.layer == "genai-prices"
    assert price.version.endswith(f"+genai-prices:{GENAI_PRICES_VERSION}")
    assert price.service_tiers["priority"].rates.output == D("28")  # kept from the base
    api = book.set_override("gpt-5.2", {"output": "12"}, layer="api")
    assert api.source.layer == "api"
    assert _get(book, "gpt-5.2", "openai").rates.output == D("12")
    assert _get(book, "gpt-5.2", "openai").rates.input == D("1.75")


def test_config_accepts_tiers_fees_and_context_window() -> None:
    book = PriceBook(
        overrides={
            "house-model": {
                "input": "1", "output": "2", "context_window": 32_000,
                "tool_fees": {"web_search": "0.02"},
                "service_tiers": {"priority": {"input": "2", "output": "4"}},
                "long_context": {"above_input_tokens": 16_000, "input": "3", "output": "5"},
            }
        }
    )  # fmt: skip
    price = _get(book, "house-model")
    assert price.context_window == 32_000
    assert price.tool_fees == {"web_search": D("0.02")}
    assert price.for_tier("priority").rates.output == D(4)
    assert price.rates_for(16_001).input == D(3)
    assert price.dearest_output_rate == D(5)
    with pytest.raises(ConfigError, match="context_window"):
        PriceBook(overrides={"m": {"input": "1", "output": "1", "context_window": -1}})
    with pytest.raises(ConfigError, match="tool_fees"):
        PriceBook(overrides={"m": {"input": "1", "output": "1", "tool_fees": {"x": "-1"}}})
    with pytest.raises(ConfigError, match="unknown fields"):
        PriceBook(overrides={"m": {"input": "1", "output": "1", "service_tiers": {"p": {"a": 1}}}})


def test_fallback_price_is_marked_estimated() -> None:
    book = PriceBook(fallback={"input": "15", "output": "75"})
    assert book.lookup("house-secret-model", "anthropic", at=NOW) is None
    price = book.resolve("house-secret-model", "anthropic", at=NOW)
    assert price is not None and price.estimated
    assert price.source.layer == "fallback"
    assert (price.rates.input, price.rates.output) == (D(15), D(75))
    assert not _get(book, "gpt-5.2", "openai").estimated
    assert PriceBook().resolve("house-secret-model", "anthropic", at=NOW) is None


def test_api_override_lies_over_the_config_override_field_by_field() -> None:
    book = PriceBook(overrides={"gpt-5.2": {"output": "13", "tool_fees": {"web_search": "0.02"}}})
    book.set_override("gpt-5.2", {"input": "1"}, layer="api")
    price = _get(book, "gpt-5.2", "openai")
    assert (price.rates.input, price.rates.output) == (D(1), D(13))
    assert price.tool_fees["web_search"] == D("0.02")
    assert price.rates.cache_read == D("0.175")  # from genai-prices, under both
    assert price.source.layer == "api"
    assert price.source.base is not None and price.source.base.layer == "config"
    assert price.source.base.base is not None
    assert price.source.base.base.layer == "genai-prices"
    assert book.overridden() == {"gpt-5.2": "api"}
    book.set_override("gpt-5.2", {"input": "2"}, layer="api")  # replaces the API layer only
    assert _get(book, "gpt-5.2", "openai").rates.input == D(2)
    assert _get(book, "gpt-5.2", "openai").rates.output == D(13)
    with pytest.raises(ValueError, match="layer"):
        book.set_override("gpt-5.2", {"input": "2"}, layer="tollway")


def test_partial_override_served_by_a_provider_without_base_prices() -> None:
    # A local server with no list price serves gpt-5.2 under an output-only override: the
    # override stands on the model's own provider's price, as it did when it was checked.
    book = PriceBook(overrides={"gpt-5.2": {"output": "13"}})
    book.bind_providers({"local": ("openai", "http://127.0.0.1:8000/v1")})
    price = _get(book, "gpt-5.2", "local")
    assert (price.rates.input, price.rates.output) == (D("1.75"), D(13))
    assert book.lookup("gpt-5.3-codex", "local", at=NOW) is None
