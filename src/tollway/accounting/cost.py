"""What a response cost, and the most a request could cost, in exact ``Decimal`` USD.

    cost = compute_cost(usage, book.lookup(model))
    ceiling = worst_case_cost(price, input_token_upper_bound(len(body)), max_tokens)

Amounts are not rounded: the sum of many requests stays exact, and callers round
(``Decimal.quantize``) only for display.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tollway.accounting.pricing import ModelPrice, Rates
from tollway.accounting.usage import Usage

_ZERO = Decimal(0)

PROVIDER_PROMPT_OVERHEAD_TOKENS = 1024
"""Prompt tokens a provider may add that are not in the request body.

Anthropic's documented tool-use system prompt is at most a few hundred tokens; this
covers it, and the role and turn markers of a chat template, with room to spare.
"""


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """USD per kind of token, plus server-tool fees; ``unknown`` when not priced (all zero).

    ``estimated`` when priced at the configured fallback; ``price_version`` names the price
    used (``PriceSource.version``); ``service_tier`` the tier billed, when not standard.
    """

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    reasoning: Decimal
    total: Decimal
    unknown: bool = False
    long_context: bool = False
    server_tools: Decimal = _ZERO
    estimated: bool = False
    price_version: str | None = None
    service_tier: str | None = None


UNKNOWN_COST = CostBreakdown(_ZERO, _ZERO, _ZERO, _ZERO, _ZERO, _ZERO, _ZERO, unknown=True)


def _usd(tokens: int, per_million: Decimal) -> Decimal:
    # Exact: an integer product, then a shift of the decimal exponent.
    return (per_million * tokens).scaleb(-6)


def compute_cost(usage: Usage, price: ModelPrice | None) -> CostBreakdown:
    """The cost of ``usage`` at ``price``; an all-zero ``unknown`` breakdown if None.

    The service tier the response reports (``usage.service_tier``) selects that tier's
    rates when the model prices it; server-side web searches cost the model's per-use fee.
    A long-context tier, when the prompt (input + cache read + cache write tokens)
    exceeds its threshold, prices every token of the request, as Anthropic and Google
    bill. Reasoning is billed apart only when the model prices it apart; otherwise it
    is already in ``output_tokens``.
    """
    if price is None:
        return UNKNOWN_COST
    tiered = price.for_tier(usage.service_tier)
    rates = tiered.rates_for(usage.prompt_tokens)
    output_tokens = usage.output_tokens
    reasoning = _ZERO
    if rates.reasoning is not None:
        reasoning_tokens = min(usage.reasoning_tokens, output_tokens)
        output_tokens -= reasoning_tokens
        reasoning = _usd(reasoning_tokens, rates.reasoning)
    parts = (
        _usd(usage.input_tokens, rates.input),
        _usd(output_tokens, rates.output),
        _usd(usage.cache_read_tokens, rates.cache_read),
        _usd(usage.cache_write_5m_tokens, rates.cache_write_5m),
        _usd(usage.cache_write_1h_tokens, rates.cache_write_1h),
        reasoning,
    )
    tools = _tool_fees(usage, price)
    return CostBreakdown(
        *parts,
        total=sum(parts, tools),
        long_context=rates is not tiered.rates,
        server_tools=tools,
        estimated=price.estimated,
        price_version=price.version,
        service_tier=usage.service_tier if tiered is not price else None,
    )


def charged_reservation(amount: Decimal | None, price_version: str | None) -> CostBreakdown:
    """What a 200 whose usage could not be read is billed: its whole reservation (its worst
    case), as the total alone, marked ``unknown``; nothing without a reservation."""
    held = _ZERO if amount is None else amount
    return CostBreakdown(
        _ZERO, _ZERO, _ZERO, _ZERO, _ZERO, _ZERO, total=held, unknown=True,
        price_version=price_version,
    )  # fmt: skip


def _tool_fees(usage: Usage, price: ModelPrice) -> Decimal:
    fees = price.tool_fees
    total = _ZERO
    if usage.web_searches:
        total += fees.get("web_search", _ZERO) * usage.web_searches
    if "request" in fees and usage.prompt_tokens + usage.output_tokens > 0:
        total += fees["request"]
    return total


def input_token_upper_bound(body_len_bytes: int) -> int:
    """A conservative bound on a request's prompt tokens, from its length in bytes.

    Byte-level BPE tokenizers (and SentencePiece with byte fallback) never make a token
    of less than one byte of text, so a prompt of N bytes has at most N tokens; the JSON
    around the text only makes the bound looser. ``PROVIDER_PROMPT_OVERHEAD_TOKENS``
    covers what the provider adds to the prompt itself.

    Not a bound for content the body only points at (image or file URLs, file ids),
    which is tokenized upstream; an image sent inline (base64) costs far fewer tokens
    than its bytes.
    """
    return max(0, body_len_bytes) + PROVIDER_PROMPT_OVERHEAD_TOKENS


def worst_case_cost(
    price: ModelPrice | None, input_upper_bound_tokens: int, max_output_tokens: int
) -> Decimal | None:
    """The most a request can cost, for admission against a budget; None if unpriced.

    Every input token is priced at the dearest input rate (a 1-hour cache write
    usually), and every output token at the output or reasoning rate, whichever is
    higher; with the long-context tier's rates too once the bound passes its threshold.
    """
    if price is None:
        return None
    rates = [price.rates]
    tier = price.long_context
    if tier is not None and input_upper_bound_tokens > tier.above_input_tokens:
        rates.append(tier.rates)
    input_rate = max(_dearest_input(r) for r in rates)
    output_rate = max(_dearest_output(r) for r in rates)
    return _usd(max(0, input_upper_bound_tokens), input_rate) + _usd(
        max(0, max_output_tokens), output_rate
    )


def _dearest_input(rates: Rates) -> Decimal:
    return max(rates.input, rates.cache_write_5m, rates.cache_write_1h, rates.cache_read)


def _dearest_output(rates: Rates) -> Decimal:
    if rates.reasoning is None:
        return rates.output
    return max(rates.output, rates.reasoning)
