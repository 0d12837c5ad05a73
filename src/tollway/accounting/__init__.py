"""Pricing data and usage extraction; money is ``Decimal``."""

from __future__ import annotations

from tollway.accounting.cost import (
    CostBreakdown,
    compute_cost,
    input_token_upper_bound,
    worst_case_cost,
)
from tollway.accounting.pricing import LongContextTier, ModelPrice, PriceBook, Rates
from tollway.accounting.usage import (
    AnthropicStreamUsage,
    OpenAIChatStreamUsage,
    ResponsesStreamUsage,
    Usage,
    anthropic_usage,
    ensure_stream_usage,
    is_usage_only_chunk,
    openai_chat_usage,
    responses_usage,
)

__all__ = [
    "AnthropicStreamUsage",
    "CostBreakdown",
    "LongContextTier",
    "ModelPrice",
    "OpenAIChatStreamUsage",
    "PriceBook",
    "Rates",
    "ResponsesStreamUsage",
    "Usage",
    "anthropic_usage",
    "compute_cost",
    "ensure_stream_usage",
    "input_token_upper_bound",
    "is_usage_only_chunk",
    "openai_chat_usage",
    "responses_usage",
    "worst_case_cost",
]
