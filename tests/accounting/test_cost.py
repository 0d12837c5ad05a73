from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tollway.accounting.cost import (
    PROVIDER_PROMPT_OVERHEAD_TOKENS,
    CostBreakdown,
    compute_cost,
    input_token_upper_bound,
    worst_case_cost,
)
from tollway.accounting.pricing import ModelPrice, PriceBook
from tollway.accounting.usage import (
    AnthropicStreamUsage,
    ResponsesStreamUsage,
    Usage,
    anthropic_usage,
    openai_chat_usage,
)
from tollway.sse import SSEParser

D = Decimal


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook()


def price(book: PriceBook, model: str) -> ModelPrice:
    found = book.lookup(model)
    assert found is not None
    return found


def feed(tracker: AnthropicStreamUsage | ResponsesStreamUsage, stream: bytes) -> None:
    parser = SSEParser()
    for i in range(0, len(stream), 11):
        for event in parser.feed(stream[i : i + 11]):
            tracker.observe(event)


def sse(*events: tuple[str, object]) -> bytes:
    return b"".join(
        f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events
    )


def assert_sums(cost: CostBreakdown) -> None:
    parts = (
        cost.input,
        cost.output,
        cost.cache_read,
        cost.cache_write_5m,
        cost.cache_write_1h,
        cost.reasoning,
    )
    assert cost.total == sum(parts, D(0))
    assert all(isinstance(part, Decimal) for part in (*parts, cost.total))


def test_non_streamed_claude_code_turn(book: PriceBook) -> None:
    # claude_ssedrop_n1.jsonl seq 6, model claude-opus-4-8 (priced by the Opus 4.x glob).
    body = b'{"usage":{"input_tokens":19405,"cache_creation_input_tokens":0,"output_tokens":5}}'
    usage = anthropic_usage(body)
    assert usage is not None
    cost = compute_cost(usage, price(book, "claude-opus-4-8"))
    assert cost.input == D("0.097025")  # 19405 x $5 / 1M
    assert cost.output == D("0.000125")  # 5 x $25 / 1M
    assert cost.total == D("0.09715")
    assert not cost.unknown and not cost.long_context
    assert_sums(cost)


def test_streamed_merged_usage_with_cache_read_and_5m_write(book: PriceBook) -> None:
    tracker = AnthropicStreamUsage()
    start = {"input_tokens": 1200, "cache_read_input_tokens": 18000, "output_tokens": 1}
    start |= {"cache_creation_input_tokens": 500}
    feed(
        tracker,
        sse(
            ("message_start", {"type": "message_start", "message": {"usage": start}}),
            ("content_block_delta", {"type": "content_block_delta", "delta": {"text": "Hi"}}),
            ("message_delta", {"type": "message_delta", "usage": {"output_tokens": 350}}),
            ("message_stop", {"type": "message_stop"}),
        ),
    )
    cost = compute_cost(tracker.result(complete=True), price(book, "claude-sonnet-4-5-20250929"))
    assert cost.input == D("0.0036")  # 1200 x $3
    assert cost.cache_read == D("0.0054")  # 18000 x $0.30
    assert cost.cache_write_5m == D("0.001875")  # 500 x $3.75
    assert cost.cache_write_1h == 0
    assert cost.output == D("0.00525")  # 350 x $15
    assert cost.total == D("0.016125")
    assert_sums(cost)


def test_cache_write_split_by_ttl(book: PriceBook) -> None:
    usage = Usage(input_tokens=10, cache_write_5m_tokens=1000, cache_write_1h_tokens=2000)
    cost = compute_cost(usage, price(book, "claude-sonnet-4-5"))
    assert cost.cache_write_5m == D("0.00375")  # 1000 x $3.75
    assert cost.cache_write_1h == D("0.012")  # 2000 x $6
    assert cost.total == D("0.01578")


def test_long_context_tier_applies_to_the_whole_request(book: PriceBook) -> None:
    usage = Usage(input_tokens=150_000, cache_read_tokens=60_000, output_tokens=1000)
    cost = compute_cost(usage, price(book, "claude-sonnet-4-5"))
    assert cost.long_context
    assert cost.input == D("0.9")  # 150000 x $6
    assert cost.cache_read == D("0.036")  # 60000 x $0.60
    assert cost.output == D("0.0225")  # 1000 x $22.50
    assert cost.total == D("0.9585")


def test_long_context_threshold_is_exclusive(book: PriceBook) -> None:
    usage = Usage(input_tokens=140_000, cache_write_1h_tokens=60_000, output_tokens=1000)
    cost = compute_cost(usage, price(book, "claude-sonnet-4"))
    assert not cost.long_context
    assert cost.total == D("0.42") + D("0.36") + D("0.015")


def test_gemini_long_context(book: PriceBook) -> None:
    usage = Usage(input_tokens=250_000, output_tokens=2000)
    cost = compute_cost(usage, price(book, "models/gemini-2.5-pro"))
    assert cost.total == D("0.625") + D("0.03")


def test_partial_stream_is_billed_for_delivered_text(book: PriceBook) -> None:
    tracker = AnthropicStreamUsage()
    start = {"input_tokens": 19405, "output_tokens": 1}
    delta = {"type": "content_block_delta", "delta": {"text": "x" * 41}}
    feed(
        tracker,
        sse(
            ("message_start", {"type": "message_start", "message": {"usage": start}}),
            ("content_block_delta", delta),
        ),
    )
    usage = tracker.result(complete=False)
    assert usage.partial and usage.output_tokens == 11  # ceil(41 / 4)
    cost = compute_cost(usage, price(book, "claude-opus-4-8"))
    assert cost.output == D("0.000275")
    assert cost.total == D("0.0973")


def test_unknown_model_costs_nothing_and_says_so(book: PriceBook) -> None:
    cost = compute_cost(
        Usage(input_tokens=10**6, output_tokens=10**6), book.lookup("tollway-no-such-model")
    )
    assert cost.unknown
    assert cost.total == 0
    assert_sums(cost)
    assert worst_case_cost(None, 1000, 1000) is None


def test_openai_cached_and_reasoning_tokens(book: PriceBook) -> None:
    body = json.dumps(
        {
            "usage": {
                "prompt_tokens": 10000,
                "completion_tokens": 3000,
                "prompt_tokens_details": {"cached_tokens": 8000},
                "completion_tokens_details": {"reasoning_tokens": 2000},
            }
        }
    ).encode()
    usage = openai_chat_usage(body)
    assert usage is not None
    cost = compute_cost(usage, price(book, "gpt-5-2025-08-07"))
    assert cost.input == D("0.0025")  # 2000 uncached x $1.25
    assert cost.cache_read == D("0.001")  # 8000 x $0.125
    assert cost.output == D("0.03")  # 3000 x $10, reasoning included once
    assert cost.reasoning == 0
    assert cost.total == D("0.0335")


def test_responses_capture(book: PriceBook) -> None:
    # codex_exec_responses.jsonl seq 47: gpt-5, 5269 in, 2 out.
    usage_block = {
        "input_tokens": 5269,
        "input_tokens_details": {"cached_tokens": 4096},
        "output_tokens": 2,
        "output_tokens_details": {"reasoning_tokens": 0},
    }
    tracker = ResponsesStreamUsage()
    feed(
        tracker,
        sse(
            ("response.output_text.delta", {"type": "response.output_text.delta", "delta": "OK"}),
            (
                "response.completed",
                {"type": "response.completed", "response": {"usage": usage_block}},
            ),
        ),
    )
    cost = compute_cost(tracker.result(complete=True), price(book, "gpt-5"))
    assert cost.input == D("0.00146625")  # 1173 x $1.25
    assert cost.cache_read == D("0.000512")  # 4096 x $0.125
    assert cost.output == D("0.00002")
    assert cost.total == D("0.00199825")


def test_reasoning_priced_apart_is_not_charged_twice() -> None:
    book = PriceBook(overrides={"thinker": {"input": "1", "output": "4", "reasoning": "3"}})
    usage = Usage(input_tokens=0, output_tokens=3000, reasoning_tokens=2000)
    cost = compute_cost(usage, price(book, "thinker"))
    assert cost.output == D("0.004")  # the 1000 visible tokens x $4
    assert cost.reasoning == D("0.006")  # 2000 x $3
    assert cost.total == D("0.01")


def test_costs_are_exact_for_large_counts(book: PriceBook) -> None:
    usage = Usage(input_tokens=123_456_789, output_tokens=987_654_321)
    cost = compute_cost(usage, price(book, "gpt-5-nano"))
    assert cost.input == D("6.17283945")
    assert cost.output == D("395.0617284")


def test_worst_case_uses_the_dearest_input_rate(book: PriceBook) -> None:
    # Opus 4.5: a 1-hour cache write ($10) is dearer than input ($5).
    assert worst_case_cost(price(book, "claude-opus-4-5"), 100_000, 64_000) == D("2.6")
    # OpenAI has no write premium: input $1.25, output $10.
    assert worst_case_cost(price(book, "gpt-5"), 100_000, 10_000) == D("0.225")


def test_worst_case_switches_to_the_long_context_tier(book: PriceBook) -> None:
    sonnet = price(book, "claude-sonnet-4-5")
    assert worst_case_cost(sonnet, 200_000, 64_000) == D("1.2") + D("0.96")
    assert worst_case_cost(sonnet, 300_000, 64_000) == D("3.6") + D("1.44")


def test_worst_case_covers_a_separately_priced_reasoning_rate() -> None:
    book = PriceBook(overrides={"thinker": {"input": "1", "output": "4", "reasoning": "8"}})
    assert worst_case_cost(price(book, "thinker"), 1000, 1000) == D("0.009")


def test_worst_case_bounds_any_actual_cost(book: PriceBook) -> None:
    sonnet = price(book, "claude-sonnet-4-5")
    usage = Usage(
        input_tokens=90_000,
        cache_read_tokens=60_000,
        cache_write_5m_tokens=30_000,
        cache_write_1h_tokens=30_000,
        output_tokens=64_000,
    )
    ceiling = worst_case_cost(sonnet, usage.prompt_tokens, usage.output_tokens)
    assert ceiling is not None
    assert compute_cost(usage, sonnet).total <= ceiling


def test_input_token_upper_bound() -> None:
    # Claude Code's "say hi" request is about 77 KB (wire captures, body_bytes 76607).
    assert input_token_upper_bound(76607) == 76607 + PROVIDER_PROMPT_OVERHEAD_TOKENS
    assert input_token_upper_bound(-5) == PROVIDER_PROMPT_OVERHEAD_TOKENS
    # Captured prompt: 19406 tokens reported for that 76607-byte body.
    assert input_token_upper_bound(76607) >= 19406
