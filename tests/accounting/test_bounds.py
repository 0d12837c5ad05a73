"""The worst case covers every billable path; a property test checks it against any usage
the provider may legally return."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tollway.accounting.bounds import (
    MIN_FIT_OUTPUT,
    PROVIDER_PROMPT_OVERHEAD_TOKENS,
    TYPED_TOOL_OVERHEAD_TOKENS,
    UNKNOWN_TOOL_FEE,
    fit_output,
    read_shape,
    request_bound,
    with_output_cap,
)
from tollway.accounting.cost import compute_cost
from tollway.accounting.limits import UNKNOWN, model_limits
from tollway.accounting.pricing import PriceBook
from tollway.accounting.usage import Usage
from tollway.errors import InvalidRequest

BOOK = PriceBook()
A, CHAT, RESP = "anthropic", "openai_chat", "openai_responses"
D = Decimal


def _bound(doc: dict[str, Any], dialect: str, model: str) -> Any:
    body = json.dumps(doc).encode()
    price = BOOK.lookup(model)
    assert price is not None
    return request_bound(read_shape(body, dialect), price, model_limits(model)), body


def test_chat_n_multiplies_the_output() -> None:
    one, _ = _bound(
        {"model": "gpt-5", "max_completion_tokens": 1000, "messages": []}, CHAT, "gpt-5"
    )
    eight, _ = _bound(
        {"model": "gpt-5", "max_completion_tokens": 1000, "n": 8, "messages": []}, CHAT, "gpt-5"
    )
    assert (one.output_tokens, eight.output_tokens) == (1000, 8000)
    extra_input = (eight.input_tokens - one.input_tokens) * D("1.25")  # the bytes of '"n": 8, '
    assert eight.cost - one.cost == (7000 * D(10) + extra_input) / 10**6
    with pytest.raises(InvalidRequest):
        read_shape(b'{"n": 0}', CHAT)


def test_chat_takes_the_larger_of_both_output_caps() -> None:
    doc = {"model": "gpt-5", "max_tokens": 1, "max_completion_tokens": 20000, "messages": []}
    bound, _ = _bound(doc, CHAT, "gpt-5")
    assert bound.output_tokens == 20000
    doc = {"model": "gpt-5", "max_tokens": 30000, "max_completion_tokens": 2, "messages": []}
    assert _bound(doc, CHAT, "gpt-5")[0].output_tokens == 30000


def test_each_dialect_reads_its_own_cap_field() -> None:
    # Responses ignores max_tokens; Anthropic ignores max_output_tokens.
    bound, _ = _bound({"model": "gpt-5", "max_tokens": 5, "input": "hi"}, RESP, "gpt-5")
    assert bound.output_tokens == 128_000
    bound, _ = _bound({"max_output_tokens": 50, "input": "hi"}, RESP, "gpt-5")
    assert bound.output_tokens == 50
    bound, _ = _bound({"max_output_tokens": 5, "messages": []}, A, "claude-haiku-4-5")
    assert bound.output_tokens == 64_000


def test_no_cap_means_the_models_true_output_maximum() -> None:
    assert _bound({"messages": []}, CHAT, "gpt-5")[0].output_tokens == 128_000
    assert _bound({"messages": []}, CHAT, "gpt-4o")[0].output_tokens == 16_384
    # A cap above the model's maximum is bounded by the maximum.
    assert _bound({"max_tokens": 10**9, "messages": []}, A, "claude-opus-4-1")[0].output_tokens == (
        32_000
    )


def test_model_limits_fall_back_by_family_then_unknown() -> None:
    assert model_limits("anthropic/claude-opus-4-8").max_output == 128_000
    assert model_limits("claude-sonnet-4-5-20250929").context_window == 1_000_000
    assert model_limits("claude-opus-4-9").entry == "claude-*"
    assert model_limits("gpt-5.2-pro").entry == "gpt-5*"
    assert model_limits("my-finetune") == UNKNOWN


@pytest.mark.parametrize(
    ("dialect", "doc"),
    [
        (RESP, {"previous_response_id": "resp_1", "input": "go on"}),
        (RESP, {"conversation": "conv_1", "input": "go on"}),
        (RESP, {"prompt": {"id": "pmpt_1"}, "input": "x"}),
        (RESP, {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}),
        (RESP, {"input": [{"type": "reasoning", "encrypted_content": "gAAA"}]}),
        (RESP, {"input": [{"type": "item_reference", "id": "msg_1"}]}),
        (CHAT, {"messages": [{"role": "user", "content": [{"type": "image_url",
                                                          "image_url": {"url": "https://x"}}]}]}),
        (CHAT, {"messages": [{"role": "assistant", "audio": {"id": "audio_1"}}]}),
        (A, {"messages": [{"role": "user", "content": [{"type": "document",
                                                       "source": {"type": "url", "url": "u"}}]}]}),
        (A, {"messages": [{"role": "user", "content": [{"type": "tool_result", "content": [
            {"type": "image", "source": {"type": "file", "file_id": "f"}}]}]}]}),
        (A, {"mcp_servers": [{"type": "url", "url": "https://mcp"}], "messages": []}),
        (A, {"container": "cont_1", "messages": []}),
        # A hostile block type (not a string) is read as the worst case, not a crash.
        (A, {"messages": [{"role": "user", "content": [{"type": {"a": 1}, "text": "x"}]}]}),
        (RESP, {"input": [{"type": ["message"], "content": "x"}]}),
    ],
)  # fmt: skip
def test_provider_side_input_is_bounded_by_the_context_window(
    dialect: str, doc: dict[str, Any]
) -> None:
    model = "claude-sonnet-4-5" if dialect == A else "gpt-5"
    doc = {"max_tokens": 100, "max_output_tokens": 100, **doc}
    bound, body = _bound(doc, dialect, model)
    assert bound.input_tokens >= model_limits(model).context_window > len(body)


def test_inline_content_is_bounded_by_the_body() -> None:
    doc = {
        "max_tokens": 10,
        "system": [{"type": "text", "text": "be brief"}],
        "tools": [{"name": "Read", "input_schema": {"properties": {"url": {}, "file_id": {}}}}],
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "tool_use", "input": {"type": "image"}}]},
            {"role": "user", "content": [{"type": "tool_result", "content": "ok"}]},
        ],
    }
    bound, body = _bound(doc, A, "claude-sonnet-4-5")
    assert bound.input_tokens == len(body) + PROVIDER_PROMPT_OVERHEAD_TOKENS
    assert bound.input_rate == D(3)  # no cache_control: no cache write can happen


def test_cache_markers_decide_the_input_rate() -> None:
    five = {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}]}]}  # fmt: skip
    assert _bound(five, A, "claude-sonnet-4-5")[0].input_rate == D("3.75")
    hour = {"system": [{"type": "text", "text": "x",
                        "cache_control": {"type": "ephemeral", "ttl": "1h"}}]}  # fmt: skip
    assert _bound(hour, A, "claude-sonnet-4-5")[0].input_rate == D(6)
    top = {"cache_control": {"type": "ephemeral", "ttl": "1h"}, "messages": []}
    assert _bound(top, A, "claude-sonnet-4-5")[0].input_rate == D(6)
    tool = {"tools": [{"name": "t", "cache_control": {"type": "ephemeral"}}], "messages": []}
    assert _bound(tool, A, "claude-sonnet-4-5")[0].input_rate == D("3.75")
    # An escaped key is still a key.
    body = b'{"messages":[{"role":"user","content":[{"type":"text","text":"x",' \
           b'"\\u0063ache_control":{"type":"ephemeral","\\u0074tl":"1h"}}]}]}'  # fmt: skip
    assert read_shape(body, A).cache_write == "1h"


def test_server_tools_bounded_by_max_uses_with_their_fees() -> None:
    search = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}
    doc = {"max_tokens": 1000, "tools": [search], "messages": []}
    bound, _ = _bound(doc, A, "claude-sonnet-4-5")
    assert bound.tool_uses == 3 and bound.input_tokens == 4 * 1_000_000
    price = BOOK.lookup("claude-sonnet-4-5")
    assert price is not None and price.long_context is not None
    rate = price.long_context.rates.input  # 4M tokens pass the long-context threshold
    assert bound.cost == 4 * rate + 1000 * price.long_context.rates.output / 10**6 + 3 * D("0.025")
    # Without max_uses the uses are bounded by the output cap (one token at least each).
    del search["max_uses"]
    assert _bound(doc, A, "claude-sonnet-4-5")[0].tool_uses == 1000
    # Responses: max_tool_calls bounds every built-in tool.
    doc = {"max_output_tokens": 100, "max_tool_calls": 2, "tools": [{"type": "web_search"}]}
    assert _bound(doc, RESP, "gpt-5")[0].tool_uses == 2
    doc = {"max_output_tokens": 100, "tools": [{"type": "function", "name": "f"}]}
    assert _bound(doc, RESP, "gpt-5")[0].tool_uses == 0
    doc = {"max_output_tokens": 100, "max_tool_calls": 1, "tools": [{"type": "new_thing"}]}
    assert _bound(doc, RESP, "gpt-5")[0].cost >= UNKNOWN_TOOL_FEE


def test_schema_less_client_tools_add_their_prompt() -> None:
    doc = {"max_tokens": 10, "tools": [{"type": "computer_20250124", "name": "computer"},
                                       {"type": "bash_20250124", "name": "bash"}]}  # fmt: skip
    bound, body = _bound(doc, A, "claude-sonnet-4-5")
    assert bound.input_tokens == len(body) + PROVIDER_PROMPT_OVERHEAD_TOKENS + 2 * (
        TYPED_TOOL_OVERHEAD_TOKENS
    )


def test_service_tiers_are_priced_at_their_rates() -> None:
    base, _ = _bound({"max_completion_tokens": 10, "messages": []}, CHAT, "gpt-5")
    fast, _ = _bound({"max_completion_tokens": 10, "service_tier": "priority"}, CHAT, "gpt-5")
    price = BOOK.lookup("gpt-5")
    assert price is not None
    assert fast.output_rate == price.service_tiers["priority"].rates.output > base.output_rate
    auto, _ = _bound({"max_completion_tokens": 10, "service_tier": "auto"}, CHAT, "gpt-5")
    assert auto.output_rate == price.worst_rates().dearest_output
    fast, _ = _bound({"max_tokens": 10, "speed": "fast"}, A, "claude-opus-4-5")
    assert fast.output_rate == D(150)


def test_fit_output_finds_the_largest_cap_that_fits() -> None:
    price = BOOK.lookup("claude-sonnet-4-5")
    assert price is not None
    limits = model_limits("claude-sonnet-4-5")
    shape = read_shape(b'{"max_tokens":64000,"messages":[]}', A)
    full = request_bound(shape, price, limits).cost
    cap = fit_output(shape, price, limits, full / 2)
    assert cap is not None
    assert request_bound(replace(shape, output_cap=cap), price, limits).cost <= full / 2
    assert request_bound(replace(shape, output_cap=cap + 1), price, limits).cost > full / 2
    assert fit_output(shape, price, limits, D("0.0001")) is None
    thinking = read_shape(b'{"max_tokens":64000,"thinking":{"type":"enabled",'
                          b'"budget_tokens":30000}}', A)  # fmt: skip
    assert thinking.thinking_budget
    tiny = request_bound(replace(thinking, output_cap=MIN_FIT_OUTPUT), price, limits).cost
    assert fit_output(thinking, price, limits, tiny) is None  # 1,024 leaves no thinking room


def test_with_output_cap_keeps_every_other_byte() -> None:
    body = b'{"model":"m","max_tokens":64000, "thinking":{"type":"enabled","budget_tokens":50000}' \
           b',"messages":[{"role":"user","content":"h\\u00e9"}]}'  # fmt: skip
    out = msgspec.json.decode(with_output_cap(body, A, 2000))
    assert out["max_tokens"] == 2000 and out["thinking"]["budget_tokens"] == 1999
    assert b'"content":"h\\u00e9"' in with_output_cap(body, A, 2000)
    chat = msgspec.json.decode(with_output_cap(b'{"max_tokens":9,"n":2}', CHAT, 5))
    assert chat == {"max_tokens": 5, "n": 2}
    chat = msgspec.json.decode(with_output_cap(b'{"messages":[]}', CHAT, 5))
    assert chat["max_completion_tokens"] == 5
    assert msgspec.json.decode(with_output_cap(b"{}", RESP, 7)) == {"max_output_tokens": 7}


# --- the property: recorded cost <= reservation, for any legal usage --------------------

MODELS = {
    A: ["claude-sonnet-4-5", "claude-opus-4-5", "claude-haiku-4-5", "claude-opus-4-8"],
    CHAT: ["gpt-5", "gpt-4o", "o3", "gpt-4.1"],
    RESP: ["gpt-5", "gpt-5-mini", "o4-mini"],
}
INLINE_TEXT = st.text(max_size=300)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    """A request body and what the provider is allowed to do with it (the spec, written out
    independently of the implementation)."""
    dialect = draw(st.sampled_from([A, CHAT, RESP]))
    model = draw(st.sampled_from(MODELS[dialect]))
    doc: dict[str, Any] = {"model": model}
    caps = st.one_of(st.none(), st.integers(1, 300_000))
    names = {A: ["max_tokens"], CHAT: ["max_tokens", "max_completion_tokens"],
             RESP: ["max_output_tokens"]}[dialect]  # fmt: skip
    for name in [*names, draw(st.sampled_from(["max_tokens", "max_output_tokens"]))]:
        value = draw(caps)
        if value is not None:
            doc[name] = value
    honoured = [doc[n] for n in names if n in doc]
    legal: dict[str, Any] = {"expanded": False, "cache": None, "uses": 0, "fee": D(0), "n": 1}
    text = draw(INLINE_TEXT)
    kind = draw(st.sampled_from(["text", "image", "file", "stored"]))
    marker = draw(
        st.sampled_from([None, {"type": "ephemeral"}, {"type": "ephemeral", "ttl": "1h"}])
    )
    block: dict[str, Any] = {"type": "text", "text": text}
    if marker is not None:
        block["cache_control"] = marker
        legal["cache"] = marker.get("ttl", "5m")
    if dialect == A:
        content = [block]
        if kind in ("image", "file"):
            content.append({"type": "image" if kind == "image" else "document",
                            "source": {"type": "url", "url": "https://example.com/x"}})  # fmt: skip
        doc["messages"] = [{"role": "user", "content": content}]
        if draw(st.booleans()):
            uses = draw(st.one_of(st.none(), st.integers(0, 5)))
            tool: dict[str, Any] = {"type": "web_search_20250305", "name": "web_search"}
            if uses is not None:
                tool["max_uses"] = uses
            doc["tools"] = [tool]
            legal["uses"], legal["fee"] = uses, D("0.01")
        legal["expanded"] = kind in ("image", "file")
    elif dialect == CHAT:
        parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
        if kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}})
        doc["messages"] = [{"role": "user", "content": parts}]
        legal["n"] = doc["n"] = draw(st.integers(1, 8))
        legal["expanded"] = kind == "image"
        legal["cache"] = "1h"  # OpenAI caches on its own
    else:
        doc["input"] = [{"role": "user", "content": [{"type": "input_text", "text": text}]}]
        if kind == "stored":
            doc["previous_response_id"] = "resp_1"
        if kind == "file":
            doc["input"][0]["content"].append({"type": "input_file", "file_id": "file-1"})
        if draw(st.booleans()):
            doc["tools"] = [{"type": "web_search"}]
            calls = draw(st.one_of(st.none(), st.integers(0, 4)))
            if calls is not None:
                doc["max_tool_calls"] = calls
            legal["uses"], legal["fee"] = calls, D("0.01")
        legal["expanded"] = kind in ("stored", "file")
        legal["cache"] = "1h"
    tier = draw(st.sampled_from([None, "priority", "default", "flex"]))
    if tier is not None and dialect != A:
        doc["service_tier"] = tier
    legal["tier"] = D(2) if tier == "priority" and dialect != A else D(1)
    legal["cap"] = draw(st.sampled_from(honoured)) if honoured else None  # either is honoured
    return dialect, model, doc, legal


@settings(max_examples=400, deadline=None)
@given(requests(), st.data())
def test_recorded_cost_never_exceeds_the_reservation(
    case: tuple[str, str, dict[str, Any], dict[str, Any]], data: st.DataObject
) -> None:
    dialect, model, doc, legal = case
    body = msgspec.json.encode(doc)
    price = BOOK.lookup(model)
    assert price is not None
    limits = model_limits(model)
    bound = request_bound(read_shape(body, dialect), price, limits)
    # What the provider may legally do: write at most the honoured cap (or its maximum) per
    # choice; use a server tool at most max_uses times (each use needs output tokens);
    # read per sampling at most the body's bytes (plus its own prompt) or, for content it
    # fetches or stores itself, the whole context window.
    cap = min(legal["cap"] or limits.max_output, limits.max_output)
    output = data.draw(st.integers(0, cap * legal["n"]), label="output")
    max_uses = legal["uses"] if legal["uses"] is not None else output
    uses = data.draw(st.integers(0, max_uses), label="uses") if max_uses else 0
    if legal["expanded"] or uses:
        per_sampling = limits.context_window
    else:
        per_sampling = min(len(body) + PROVIDER_PROMPT_OVERHEAD_TOKENS, limits.context_window)
    prompt = data.draw(st.integers(0, per_sampling * (uses + 1)), label="prompt")
    cached = data.draw(st.integers(0, prompt), label="cache read")
    written = (
        data.draw(st.integers(0, prompt - cached), label="cache write") if legal["cache"] else 0
    )
    hour = data.draw(st.integers(0, written), label="1h") if legal["cache"] == "1h" else 0
    usage = Usage(
        input_tokens=prompt - cached - written,
        output_tokens=output,
        cache_read_tokens=cached,
        cache_write_5m_tokens=written - hour,
        cache_write_1h_tokens=hour,
        reasoning_tokens=data.draw(st.integers(0, output), label="reasoning"),
    )
    # As the provider reports it: the tier served and the searches run (priced per use by
    # the price data); a tier the price data lacks billed at the documented multiplier.
    tier = "priority" if legal["tier"] > 1 else None
    reported = replace(usage, service_tier=tier, web_searches=uses)
    # (the multiplier only for a tier the price data lacks: a known tier is billed, and
    # bounded, at its own rates, e.g. gpt-5-mini priority at 1.8x input, not 2x)
    multiplier = legal["tier"] if tier not in price.service_tiers else D(1)
    recorded = max(
        compute_cost(reported, price).total,
        compute_cost(usage, price).total * multiplier + uses * D("0.025"),
    )
    assert recorded <= bound.cost, (usage, bound)


def test_gemini_cap_and_candidates_are_read_and_lowered() -> None:
    from tollway.providers.base import GEMINI

    body = json.dumps({"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                       "generationConfig": {"maxOutputTokens": 9000, "candidateCount": 2,
                                            "temperature": 1}}).encode()  # fmt: skip
    shape = read_shape(body, GEMINI)
    assert (shape.output_cap, shape.choices) == (9000, 2)
    lowered = json.loads(with_output_cap(body, GEMINI, 500))
    assert lowered["generationConfig"] == {"maxOutputTokens": 500, "candidateCount": 2,
                                           "temperature": 1}  # fmt: skip
    assert "max_tokens" not in lowered
    assert read_shape(b'{"contents": []}', GEMINI).output_cap is None
