"""The most a request can cost, on every billable path (pure: no I/O, no clock).

    shape = read_shape(body, dialect)          # what the body lets the provider bill
    bound = request_bound(shape, price, model_limits(model))
    bound.cost                                 # Decimal USD, what admission reserves

What the provider may bill, and how each part is bounded:

- **Prompt read from the body.** A byte-level BPE token covers at least one byte, so the
  body's length plus ``PROVIDER_PROMPT_OVERHEAD_TOKENS`` (the provider's own tool-use
  prompt and turn markers), plus ``TYPED_TOOL_OVERHEAD_TOKENS`` per schema-less tool
  (``bash_*``, ``computer_*``...), never below the real count; and never above the
  model's context window.
- **Prompt the provider adds itself**: a stored conversation (``previous_response_id``,
  ``conversation``, a stored ``prompt``), files, URLs, images, audio, documents,
  encrypted reasoning, remote MCP servers, containers. None of these has a size in the
  body, so each sampling is bounded by the context window alone.
- **Server tools** (web search, code execution, ...): each use makes the model sample
  again over a prompt of at most the context window, and may cost a per-use fee. Uses
  are bounded by ``max_uses`` (Anthropic) or ``max_tool_calls`` (Responses); without
  one, by the output cap, since every use is written by the model in at least one
  output token.
- **Output**: the dialect's cap field (Anthropic ``max_tokens``; Responses
  ``max_output_tokens``; Chat ``max_completion_tokens`` and the deprecated
  ``max_tokens``: OpenAI honours the first, OpenAI-compatible servers may honour
  either, so the larger of the two), else the model's output maximum; never above that
  maximum; times ``n`` choices (Chat).
- **Rates**: every input token at the dearest input rate it can be billed at (for
  Anthropic a cache write only if the body has a ``cache_control`` marker, at the 1-hour
  rate only if one asks for ``ttl: 1h``), output at the dearest of output and reasoning,
  with the long-context tier's rates once the prompt bound passes its threshold, times
  the service-tier multiplier the body asks for.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Final

import msgspec

from tollway.accounting.limits import ModelLimits
from tollway.accounting.prices import ModelPrice, Rates
from tollway.errors import InvalidRequest
from tollway.providers.base import (
    ANTHROPIC,
    BEDROCK,
    GEMINI,
    OPENAI_CHAT,
    OPENAI_RESPONSES,
    VERTEX,
)

# Claude Code's cloud modes send Anthropic bodies in a cloud's envelope: bounded alike.
_ANTHROPIC_BODIES = frozenset({BEDROCK, VERTEX})

PROVIDER_PROMPT_OVERHEAD_TOKENS: Final = 1024
TYPED_TOOL_OVERHEAD_TOKENS: Final = 1024
"""Anthropic documents the prompt its schema-less tools add: computer use 735 tokens plus
a 499-token system prompt, text editor 700, bash 245; this covers the largest of them."""

MAX_CHOICES: Final = 128  # OpenAI's documented maximum for ``n``

# USD per use of a server tool, the dearest published rate of each kind (checked
# 2026-12-01: docs.anthropic.com/en/docs/agents-and-tools/tool-use/web-search-tool,
# platform.openai.com/docs/pricing#built-in-tools). An unknown server tool is assumed
# to cost ``UNKNOWN_TOOL_FEE`` per use.
_TOOL_FEES: Final[tuple[tuple[str, Decimal], ...]] = (
    ("web_search", Decimal("0.025")),
    ("file_search", Decimal("0.0025")),
    ("code_interpreter", Decimal("0.03")),
    ("code_execution", Decimal("0.03")),
    ("web_fetch", Decimal(0)),
    ("tool_search", Decimal(0)),
    ("image_generation", Decimal("0.25")),
)
UNKNOWN_TOOL_FEE: Final = Decimal("0.50")

# Multipliers on every rate for a service tier the body may ask for: OpenAI ``priority``
# is billed at up to 2x, Anthropic fast mode (``speed: "fast"``) at up to 6x.
_TIER_MULTIPLIER: Final = {"priority": Decimal(2), "fast": Decimal(6)}

# Content types whose tokens are all in the body. Anything else is fetched, stored or
# rendered by the provider (images, documents, files, audio, encrypted items...).
_INLINE: Final = {
    ANTHROPIC: frozenset({"text", "tool_use", "tool_result", "thinking"}),
    OPENAI_CHAT: frozenset({"text", "refusal", "function"}),
    OPENAI_RESPONSES: frozenset({
        "message", "input_text", "output_text", "refusal", "summary_text", "function_call",
        "function_call_output", "custom_tool_call", "custom_tool_call_output",
    }),
}  # fmt: skip
# Anthropic tools run by the client (no sampling loop upstream), but with a fixed prompt.
_CLIENT_TYPED = ("bash_", "text_editor_", "computer_", "memory_")
_CLIENT_TOOLS_RESPONSES = frozenset(
    {"function", "custom", "computer_use_preview", "local_shell", "shell", "apply_patch"}
)


class _Tool(msgspec.Struct):
    type: str | None = None
    name: str | None = None
    max_uses: int | None = None
    cache_control: Any = None


class _GenerationConfig(msgspec.Struct, rename="camel"):
    max_output_tokens: int | None = None
    candidate_count: int | None = None


class RequestBody(msgspec.Struct):
    """The fields a body's bound depends on, and the two the handler routes by: the
    handler decodes it once (``decode_body``) and admission reads its shape from it."""

    model: str | None = None
    stream: bool | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    max_output_tokens: int | None = None
    max_tool_calls: int | None = None
    n: int | None = None
    service_tier: str | None = None
    speed: str | None = None
    previous_response_id: str | None = None
    conversation: Any = None
    prompt: Any = None
    mcp_servers: Any = None
    container: Any = None
    cache_control: Any = None
    thinking: Any = None
    system: Any = None
    messages: Any = None
    input: Any = None
    tools: list[_Tool] | None = None
    contents: Any = None  # Gemini's messages
    generation_config: _GenerationConfig | None = msgspec.field(
        default=None, name="generationConfig"
    )


_decoder = msgspec.json.Decoder(RequestBody)


@dataclass(frozen=True, slots=True)
class RequestShape:
    """What one request body lets the provider bill, read once at admission."""

    body_bytes: int
    output_cap: int | None  # None: the body names no cap
    choices: int
    expanded: bool  # the provider adds prompt the body does not hold
    server_tool_uses: int | None  # None: server tools without a cap on their uses
    server_tool_fee: Decimal  # USD per use, the dearest of the tools present
    typed_tools: int
    cache_write: str | None  # None, "5m" or "1h": the dearest cache write possible
    tier_multiplier: Decimal
    thinking_budget: bool = False  # Anthropic thinking with a budget_tokens to keep below
    tier: str | None = None  # the service tier or speed the body asks for
    fee_kinds: tuple[str, ...] = ()  # the server tools present, for the price's own fees


@dataclass(frozen=True, slots=True)
class Bound:
    """A worst case in tokens and USD. ``cost`` is what admission reserves."""

    input_tokens: int
    output_tokens: int
    tool_uses: int
    cost: Decimal
    input_rate: Decimal  # USD per million, as used
    output_rate: Decimal


def decode_body(body: bytes) -> RequestBody:
    """The body decoded for its bound; ``InvalidRequest`` on bad JSON (``RecursionError``
    on JSON nested past msgspec's limit)."""
    try:
        return _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON for this API ({exc})") from None


def read_shape(body: bytes, dialect: str, doc: RequestBody | None = None) -> RequestShape:
    """Read the fields that decide a worst case, from ``doc`` when the caller decoded
    ``body`` already; raises ``InvalidRequest`` on bad JSON."""
    if dialect in _ANTHROPIC_BODIES:
        dialect = ANTHROPIC
    if doc is None:
        doc = decode_body(body)
    cap = _output_cap(doc, dialect)
    choices = 1
    n = doc.n if dialect == OPENAI_CHAT else None
    if dialect == GEMINI and doc.generation_config is not None:
        n = doc.generation_config.candidate_count
    if n is not None:
        if not 1 <= n <= MAX_CHOICES:
            raise InvalidRequest(f"'n' must be between 1 and {MAX_CHOICES}, not {n}")
        choices = n
    scan = _Scan(_INLINE.get(dialect, frozenset()))
    for part in (doc.system, doc.messages, doc.input, doc.contents):
        scan.walk(part)
    uses, fee, typed = _server_tools(doc, dialect)
    expanded = scan.expanded or any(
        v is not None
        for v in (doc.previous_response_id, doc.conversation, doc.prompt, doc.mcp_servers,
                  doc.container)
    )  # fmt: skip
    if doc.mcp_servers is not None:
        uses = None  # remote MCP calls run upstream with no cap on their number
    cache = scan.cache
    if doc.cache_control is not None or any(t.cache_control is not None for t in doc.tools or ()):
        cache = _dearer(cache, _ttl(doc.cache_control))
        for tool in doc.tools or ():
            if tool.cache_control is not None:
                cache = _dearer(cache, _ttl(tool.cache_control))
    if dialect != ANTHROPIC:
        cache = "1h"  # OpenAI caches without markers: any input rate may apply
    asked = doc.speed if doc.speed not in (None, "standard") else doc.service_tier
    if asked in ("default", "standard"):
        asked = None
    tier = _TIER_MULTIPLIER.get(asked or "", Decimal(1))
    thinking = isinstance(doc.thinking, dict) and doc.thinking.get("budget_tokens") is not None
    return RequestShape(
        len(body),
        cap,
        choices,
        expanded,
        uses,
        fee,
        typed,
        cache,
        tier,
        dialect == ANTHROPIC and thinking,
        asked,
        _fee_kinds(doc, dialect),
    )


def token_bound(shape: RequestShape, limits: ModelLimits) -> tuple[int, int, int]:
    """(prompt tokens, output tokens, server tool uses) at most, for any price."""
    out = (
        limits.max_output if shape.output_cap is None else min(shape.output_cap, limits.max_output)
    )
    out = max(0, out) * shape.choices
    uses = out if shape.server_tool_uses is None else shape.server_tool_uses
    if shape.expanded or uses:
        prompt = (uses + 1) * limits.context_window
    else:
        prompt = shape.body_bytes + PROVIDER_PROMPT_OVERHEAD_TOKENS
        prompt = min(prompt + shape.typed_tools * TYPED_TOOL_OVERHEAD_TOKENS,
                     limits.context_window)  # fmt: skip
    return prompt, out, uses


def request_bound(shape: RequestShape, price: ModelPrice, limits: ModelLimits) -> Bound:
    """The most ``shape`` can cost at ``price`` for a model with ``limits``.

    The context window is the larger of the price data's and the limits table's (the
    table keeps beta-raised windows); a service tier the price knows is priced at that
    tier's rates, ``auto`` or an unknown tier at the dearest of every tier, a tier the
    price does not know by ``RequestShape.tier_multiplier``.
    """
    if price.context_window is not None and price.context_window > limits.context_window:
        limits = replace(limits, context_window=price.context_window)
    prompt, out, uses = token_bound(shape, limits)
    multiplier = Decimal(1)
    if shape.tier is None:
        priced = [price]
    elif shape.tier in price.service_tiers:
        priced = [price, price.service_tiers[shape.tier]]
    elif shape.tier == "auto" or shape.tier_multiplier == 1:
        priced = [price, *price.service_tiers.values()]
    else:
        priced, multiplier = [price], shape.tier_multiplier
    tiers = []
    for p in priced:
        tiers.append(p.rates)
        tier = p.long_context
        if tier is not None and prompt > tier.above_input_tokens:
            tiers.append(tier.rates)
    input_rate = max(_dearest_input(r, shape.cache_write) for r in tiers) * multiplier
    output_rate = max(_dearest_output(r) for r in tiers) * multiplier
    fee = max([shape.server_tool_fee, *(price.tool_fees.get(k, Decimal(0))
                                        for k in shape.fee_kinds)])  # fmt: skip
    per_request = price.tool_fees.get("request", Decimal(0))
    cost = _usd(prompt, input_rate) + _usd(out, output_rate) + uses * fee + per_request
    return Bound(prompt, out, uses, cost, input_rate, output_rate)


def _usd(tokens: int, per_million: Decimal) -> Decimal:
    return (per_million * tokens).scaleb(-6)


def _dearest_input(rates: Rates, cache_write: str | None) -> Decimal:
    candidates = [rates.input, rates.cache_read]
    if cache_write is not None:
        candidates.append(rates.cache_write_5m)
    if cache_write == "1h":
        candidates.append(rates.cache_write_1h)
    return max(candidates)


def _dearest_output(rates: Rates) -> Decimal:
    return rates.output if rates.reasoning is None else max(rates.output, rates.reasoning)


def _output_cap(doc: RequestBody, dialect: str) -> int | None:
    if dialect == OPENAI_CHAT:
        named = [v for v in (doc.max_completion_tokens, doc.max_tokens) if v is not None]
    elif dialect == OPENAI_RESPONSES:
        named = [doc.max_output_tokens] if doc.max_output_tokens is not None else []
    elif dialect == GEMINI:
        config = doc.generation_config
        cap = config.max_output_tokens if config is not None else None
        named = [cap] if cap is not None else []
    else:
        named = [doc.max_tokens] if doc.max_tokens is not None else []
    if any(v < 1 for v in named):
        raise InvalidRequest("an output token cap must be a positive integer")
    return max(named) if named else None


def _server_tools(doc: RequestBody, dialect: str) -> tuple[int | None, Decimal, int]:
    """(total uses or None when unbounded, the dearest per-use fee, schema-less tools)."""
    uses: int | None = 0
    fee = Decimal(0)
    typed = 0
    for tool in doc.tools or ():
        kind = tool.type or ""
        if dialect == ANTHROPIC:
            if kind in ("", "custom"):
                continue
            if kind.startswith(_CLIENT_TYPED):
                typed += 1
                continue
            if uses is not None:
                uses = None if tool.max_uses is None else uses + max(0, tool.max_uses)
        elif dialect == OPENAI_RESPONSES:
            if kind in _CLIENT_TOOLS_RESPONSES or not kind:
                continue
            uses = None if doc.max_tool_calls is None else max(0, doc.max_tool_calls)
        else:
            continue  # Chat tools are all run by the client
        fee = max(fee, _fee(kind))
    return uses, fee, typed


def _fee_kinds(doc: RequestBody, dialect: str) -> tuple[str, ...]:
    """The price data's fee names (``web_search``...) of the server tools present."""
    kinds = []
    for tool in doc.tools or ():
        kind = tool.type or ""
        for prefix, _ in _TOOL_FEES:
            if kind.startswith(prefix):
                kinds.append(prefix)
    return tuple(kinds) if dialect != OPENAI_CHAT else ()


def _fee(kind: str) -> Decimal:
    for prefix, fee in _TOOL_FEES:
        if kind.startswith(prefix):
            return fee
    return UNKNOWN_TOOL_FEE


def _ttl(cache_control: Any) -> str:
    # Any TTL but the default may be billed at the dearest (1-hour) write rate.
    if isinstance(cache_control, dict) and cache_control.get("ttl") not in (None, "5m"):
        return "1h"
    return "5m"


def _dearer(a: str | None, b: str | None) -> str | None:
    if a == "1h" or b == "1h":
        return "1h"
    return a or b


class _Scan:
    """Walks system, messages or input: finds provider-side content and cache markers."""

    __slots__ = ("inline", "expanded", "cache")

    def __init__(self, inline: frozenset[str]) -> None:
        self.inline = inline
        self.expanded = False
        self.cache: str | None = None

    def walk(self, node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                self.walk(item)
        elif isinstance(node, dict):
            self._block(node)

    def _block(self, block: dict[str, Any]) -> None:
        marker = block.get("cache_control")
        if marker is not None:
            self.cache = _dearer(self.cache, _ttl(marker))
        kind = block.get("type")
        # A type that is not a string names no inline kind: assume the worst (and never
        # hash a hostile object or list).
        if kind is not None and (not isinstance(kind, str) or kind not in self.inline):
            self.expanded = True
            return
        if "audio" in block or "file_id" in block:  # Chat: audio by id; any file by id
            self.expanded = True
        # Only content holds further blocks; a tool's input or arguments are plain data.
        for name in ("content", "output"):
            inner = block.get(name)
            if isinstance(inner, list | dict):
                self.walk(inner)


MIN_FIT_OUTPUT: Final = 1024
"""The smallest output cap a request is shrunk to; below it the request is refused
(Anthropic's smallest thinking budget is 1,024 tokens, and must stay under max_tokens)."""


def fit_output(
    shape: RequestShape, price: ModelPrice, limits: ModelLimits, room: Decimal
) -> int | None:
    """The largest output cap (at least ``MIN_FIT_OUTPUT``) whose bound fits in ``room``
    USD, or None. The bound only grows with the cap, so a binary search finds it."""

    def fits(cap: int) -> bool:
        return request_bound(replace(shape, output_cap=cap), price, limits).cost <= room

    # Thinking needs budget_tokens >= 1,024 and below max_tokens.
    low = MIN_FIT_OUTPUT + 1 if shape.thinking_budget else MIN_FIT_OUTPUT
    high = request_bound(shape, price, limits).output_tokens
    high //= shape.choices
    if high < low or not fits(low):
        return None
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    return low


_raw_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])
_encoder = msgspec.json.Encoder()


def with_output_cap(body: bytes, dialect: str, cap: int) -> bytes:
    """``body`` with its output cap lowered to ``cap`` (every other value's bytes kept).

    Anthropic: ``max_tokens``, and a thinking ``budget_tokens`` kept below it. Chat: both
    ``max_completion_tokens`` and ``max_tokens`` where present (``max_completion_tokens``
    when neither is). Responses: ``max_output_tokens``.
    """
    doc = _raw_decoder.decode(body)
    value = msgspec.Raw(_encoder.encode(cap))
    if dialect == OPENAI_CHAT:
        names = [n for n in ("max_completion_tokens", "max_tokens") if n in doc]
        for name in names or ["max_completion_tokens"]:
            doc[name] = value
    elif dialect == OPENAI_RESPONSES:
        doc["max_output_tokens"] = value
    elif dialect == GEMINI:
        raw = doc.get("generationConfig")
        config = msgspec.json.decode(raw) if raw is not None else {}
        config = config if isinstance(config, dict) else {}
        doc["generationConfig"] = msgspec.Raw(_encoder.encode({**config, "maxOutputTokens": cap}))
    else:
        doc["max_tokens"] = value
        thinking = doc.get("thinking")
        if thinking is not None:
            spec = msgspec.json.decode(thinking)
            budget = spec.get("budget_tokens") if isinstance(spec, dict) else None
            if isinstance(budget, int) and budget >= cap:
                spec["budget_tokens"] = cap - 1
                doc["thinking"] = msgspec.Raw(_encoder.encode(spec))
    return _encoder.encode(doc)
