"""Tollway's arithmetic against genai-prices' own calculator, on the same data.

For a sample of models (every kind of token, long-context tiers, service tiers, web search
fees) the cost Tollway records must equal ``genai_prices.calc_price`` to the last digit.
"""

from __future__ import annotations

import datetime
import warnings
from decimal import Decimal

import genai_prices
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tollway.accounting.cost import compute_cost
from tollway.accounting.pricing import PriceBook
from tollway.accounting.usage import Usage

AT = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)
BOOK = PriceBook()
# (model, genai-prices provider id, tier as the response reports it, genai price context)
SAMPLE = [
    ("claude-opus-4-8", "anthropic", None, None),
    ("claude-opus-4-8", "anthropic", "fast", {"speed": "fast"}),
    ("claude-sonnet-4-5", "anthropic", None, None),  # long-context tier above 200k
    ("claude-sonnet-4-6", "anthropic", None, None),
    ("claude-haiku-4-5", "anthropic", None, None),
    ("claude-opus-4-1", "anthropic", None, None),
    ("claude-opus-5", "anthropic", None, None),
    ("gpt-5.2", "openai", None, None),
    ("gpt-5.2", "openai", "priority", {"service_tier": "priority"}),
    ("gpt-5.2", "openai", "flex", {"service_tier": "flex"}),
    ("gpt-6.1-sol", "openai", None, None),  # priced cache writes
    ("gpt-4o", "openai", None, None),
    ("o3", "openai", None, None),
    ("gemini-2.5-pro", "google", None, None),  # long-context tier
    ("gemini-3.1-pro-preview", "google", None, None),
    ("llama-3.3-70b-versatile", "groq", None, None),
]


def _theirs(model: str, provider: str, usage: Usage, context: dict[str, str] | None) -> Decimal:
    theirs = genai_prices.Usage(
        input_tokens=usage.prompt_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        cache_write_1h_tokens=usage.cache_write_1h_tokens,
        output_tokens=usage.output_tokens,
        web_searches=usage.web_searches,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        calc = genai_prices.calc_price(
            theirs, model, provider_id=provider, genai_request_timestamp=AT,
            price_context=context,
        )  # fmt: skip
    return calc.total_price


def _ours(model: str, provider: str, usage: Usage) -> Decimal:
    price = BOOK.lookup(model, provider, at=AT)
    assert price is not None
    return compute_cost(usage, price).total


@pytest.mark.parametrize(("model", "provider", "tier", "context"), SAMPLE)
@settings(max_examples=40, deadline=None)
@given(
    uncached=st.integers(0, 400_000),
    read=st.integers(0, 300_000),
    write_5m=st.integers(0, 100_000),
    write_1h=st.integers(0, 100_000),
    output=st.integers(0, 128_000),
    searches=st.integers(0, 20),
)
def test_same_total_as_genai_prices(
    model: str, provider: str, tier: str | None, context: dict[str, str] | None,
    uncached: int, read: int, write_5m: int, write_1h: int, output: int, searches: int,
) -> None:  # fmt: skip
    usage = Usage(
        input_tokens=uncached, output_tokens=output, cache_read_tokens=read,
        cache_write_5m_tokens=write_5m, cache_write_1h_tokens=write_1h,
        service_tier=tier, web_searches=searches,
    )  # fmt: skip
    assert _ours(model, provider, usage) == _theirs(model, provider, usage, context)


@pytest.mark.parametrize(("model", "provider", "tier", "context"), SAMPLE)
def test_a_long_prompt_crosses_the_same_tier(
    model: str, provider: str, tier: str | None, context: dict[str, str] | None
) -> None:
    for prompt in (199_999, 200_000, 200_001, 275_000):
        usage = Usage(input_tokens=prompt, output_tokens=1_000, service_tier=tier)
        assert _ours(model, provider, usage) == _theirs(model, provider, usage, context)
