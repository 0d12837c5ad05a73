"""Token usage read from provider responses, whole or streamed.

Every extractor returns the same ``Usage`` whatever the dialect, with these invariants:
``input_tokens`` counts only uncached prompt tokens; cache reads and the two kinds of
cache write (OpenAI's ``cache_write_tokens`` count as 5-minute writes) are counted apart
and never overlap it; ``output_tokens`` includes
``reasoning_tokens``, which are reported, not charged twice.

A stream tracker is fed every event the client was sent, then asked for a result:

    tracker = AnthropicStreamUsage()
    for event in parser.feed(chunk):
        tracker.observe(event)
    usage = tracker.result(complete=upstream_finished)

A stream cut short (by the client or upstream) is billed for at least the output it
delivered, estimated at one token per four characters, and marked ``partial``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, TypeVar

import msgspec

from tollway.sse import SSEEvent

_UNSET = msgspec.UNSET
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of each billed kind in one response; ``partial`` when estimated."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0
    partial: bool = False
    service_tier: str | None = None  # as the response reports it; None when standard
    web_searches: int = 0  # server-side web searches the provider ran (billed per use)

    @property
    def cache_write_tokens(self) -> int:
        return self.cache_write_5m_tokens + self.cache_write_1h_tokens

    @property
    def prompt_tokens(self) -> int:
        """Every prompt token, cached or not: what long-context tiers are judged on."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens


def estimate_tokens(chars: int) -> int:
    """A rough token count for delivered text: one token per four characters, rounded up."""
    return -(-chars // 4)


def _n(value: int | None) -> int:
    return value if value is not None and value > 0 else 0


# --- Anthropic Messages ---------------------------------------------------------------


class _CacheCreation(msgspec.Struct):
    ephemeral_5m_input_tokens: int | None = None
    ephemeral_1h_input_tokens: int | None = None


class _ServerToolUse(msgspec.Struct):
    web_search_requests: int | None = None


class _AnthropicUsage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_creation: _CacheCreation | None = None
    server_tool_use: _ServerToolUse | None = None
    service_tier: str | None = None
    speed: str | None = None


class _AnthropicMessage(msgspec.Struct):
    usage: _AnthropicUsage | None = None


class _AnthropicDelta(msgspec.Struct):
    text: str | None = None
    thinking: str | None = None
    partial_json: str | None = None


class _AnthropicEvent(msgspec.Struct):
    type: str = ""
    message: _AnthropicMessage | None = None
    usage: _AnthropicUsage | None = None
    delta: _AnthropicDelta | None = None


_ANTHROPIC_MESSAGE = msgspec.json.Decoder(_AnthropicMessage)
_ANTHROPIC_EVENT = msgspec.json.Decoder(_AnthropicEvent)
# Events that carry no usage and no output text: skipped without decoding.
_ANTHROPIC_SKIP = frozenset(
    {"ping", "content_block_start", "content_block_stop", "message_stop", "error"}
)


def _cache_writes(total: int | None, split: _CacheCreation | None) -> tuple[int, int]:
    """Split the total cache write by TTL: (5m, 1h). All 5m when no split is given."""
    if split is None:
        return _n(total), 0
    write_1h = _n(split.ephemeral_1h_input_tokens)
    # The split is authoritative; any part of the total it leaves out has the default TTL.
    write_5m = max(_n(split.ephemeral_5m_input_tokens), _n(total) - write_1h)
    return write_5m, write_1h


def _anthropic(usage: _AnthropicUsage) -> Usage:
    write_5m, write_1h = _cache_writes(usage.cache_creation_input_tokens, usage.cache_creation)
    return Usage(
        input_tokens=_n(usage.input_tokens),  # excludes cache reads and writes
        output_tokens=_n(usage.output_tokens),
        cache_read_tokens=_n(usage.cache_read_input_tokens),
        cache_write_5m_tokens=write_5m,
        cache_write_1h_tokens=write_1h,
        service_tier=_anthropic_tier(usage),
        web_searches=_n(usage.server_tool_use.web_search_requests) if usage.server_tool_use else 0,
    )


def _anthropic_tier(usage: _AnthropicUsage) -> str | None:
    # Fast mode is reported as usage.speed; it is priced as a tier of its own.
    if usage.speed and usage.speed != "standard":
        return usage.speed
    if usage.service_tier and usage.service_tier != "standard":
        return usage.service_tier
    return None


def anthropic_usage(body: bytes) -> Usage | None:
    """Usage of a whole (non-streamed) Messages response, or None when it has none."""
    try:
        usage = _ANTHROPIC_MESSAGE.decode(body).usage
    except (msgspec.DecodeError, RecursionError):  # RecursionError: nested too deep
        return None
    return None if usage is None else _anthropic(usage)


class AnthropicStreamUsage:
    """Usage of a streamed Messages response, merged from message_start and message_delta.

    message_delta's counts are cumulative: each one present replaces the earlier value.
    """

    __slots__ = ("_usage", "_chars", "_final")

    def __init__(self) -> None:
        self._usage = _AnthropicUsage()
        self._chars = 0
        self._final = False

    def observe(self, event: SSEEvent) -> None:
        if event.event in _ANTHROPIC_SKIP:
            return
        try:
            decoded = _ANTHROPIC_EVENT.decode(event.data)
        except (msgspec.DecodeError, RecursionError):  # RecursionError: nested too deep
            return
        kind = decoded.type or event.event
        if kind == "content_block_delta":
            delta = decoded.delta
            if delta is not None:
                self._chars += (
                    len(delta.text or "")
                    + len(delta.thinking or "")
                    + len(delta.partial_json or "")
                )
        elif kind == "message_start":
            if decoded.message is not None and decoded.message.usage is not None:
                self._merge(decoded.message.usage)
        elif kind == "message_delta" and decoded.usage is not None:
            self._merge(decoded.usage)
            self._final = True

    @property
    def seen(self) -> bool:
        """The final usage (message_delta) was seen."""
        return self._final

    def _merge(self, new: _AnthropicUsage) -> None:
        old = self._usage
        self._usage = _AnthropicUsage(
            input_tokens=_pick(new.input_tokens, old.input_tokens),
            output_tokens=_pick(new.output_tokens, old.output_tokens),
            cache_read_input_tokens=_pick(new.cache_read_input_tokens, old.cache_read_input_tokens),
            cache_creation_input_tokens=_pick(
                new.cache_creation_input_tokens, old.cache_creation_input_tokens
            ),
            cache_creation=_pick(new.cache_creation, old.cache_creation),
            server_tool_use=_pick(new.server_tool_use, old.server_tool_use),
            service_tier=_pick(new.service_tier, old.service_tier),
            speed=_pick(new.speed, old.speed),
        )

    def result(self, complete: bool) -> Usage:
        """The usage so far; exact only if ``complete`` and message_delta was seen."""
        return _settle(_anthropic(self._usage), complete and self._final, self._chars)


def _settle(usage: Usage, exact: bool, chars: int) -> Usage:
    """Mark a stream's usage partial unless exact, billing at least the delivered text."""
    if exact:
        return usage
    return replace(
        usage, output_tokens=max(usage.output_tokens, estimate_tokens(chars)), partial=True
    )


def _pick(new: _T | None, old: _T | None) -> _T | None:
    return old if new is None else new


# --- OpenAI Chat Completions ----------------------------------------------------------


class _PromptDetails(msgspec.Struct):
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None


class _CompletionDetails(msgspec.Struct):
    reasoning_tokens: int | None = None


class _ChatUsage(msgspec.Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_tokens_details: _PromptDetails | None = None
    completion_tokens_details: _CompletionDetails | None = None


class _ChatResponse(msgspec.Struct):
    usage: _ChatUsage | None = None
    service_tier: str | None = None


class _ToolFunction(msgspec.Struct):
    arguments: str | None = None


class _ToolCall(msgspec.Struct):
    function: _ToolFunction | None = None


class _ChatDelta(msgspec.Struct):
    content: str | None = None
    refusal: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _ChatChoice(msgspec.Struct):
    delta: _ChatDelta | None = None


class _ChatChunk(msgspec.Struct):
    choices: list[_ChatChoice] | None = None
    usage: _ChatUsage | None = None
    service_tier: str | None = None


class _UsageProbe(msgspec.Struct):
    choices: list[msgspec.Raw] | None = None
    usage: Any = None


class _StreamRequestProbe(msgspec.Struct):
    stream: Any = None
    stream_options: Any = _UNSET


_CHAT_RESPONSE = msgspec.json.Decoder(_ChatResponse)
_CHAT_CHUNK = msgspec.json.Decoder(_ChatChunk)
_USAGE_PROBE = msgspec.json.Decoder(_UsageProbe)
_STREAM_REQUEST_PROBE = msgspec.json.Decoder(_StreamRequestProbe)
_INCLUDE_USAGE = b'"stream_options":{"include_usage":true},'


def _openai_tier(tier: str | None) -> str | None:
    return None if tier in (None, "default", "auto") else tier


def _cached(prompt: int, details: _PromptDetails | _InputDetails | None) -> tuple[int, int]:
    """(cache read, cache write) tokens, both within the prompt total that includes them."""
    if details is None:
        return 0, 0
    read = min(_n(details.cached_tokens), prompt)
    return read, min(_n(details.cache_write_tokens), prompt - read)


def _chat_usage(usage: _ChatUsage, tier: str | None = None) -> Usage:
    prompt = _n(usage.prompt_tokens)
    cached, written = _cached(prompt, usage.prompt_tokens_details)
    reasoning = usage.completion_tokens_details
    return Usage(
        input_tokens=prompt - cached - written,  # prompt_tokens includes cache reads, writes
        output_tokens=_n(usage.completion_tokens),
        cache_read_tokens=cached,
        cache_write_5m_tokens=written,
        reasoning_tokens=_n(reasoning.reasoning_tokens) if reasoning is not None else 0,
        service_tier=_openai_tier(tier),
    )


def openai_chat_usage(body: bytes) -> Usage | None:
    """Usage of a whole (non-streamed) Chat Completions response, or None."""
    try:
        response = _CHAT_RESPONSE.decode(body)
    except (msgspec.DecodeError, RecursionError):  # RecursionError: nested too deep
        return None
    usage = response.usage
    return None if usage is None else _chat_usage(usage, response.service_tier)


def is_usage_only_chunk(data: bytes) -> bool:
    """True for the extra stream chunk that only carries usage (empty ``choices``).

    The relay drops it when the gateway, not the client, asked for usage.
    """
    if b'"usage"' not in data:
        return False
    try:
        chunk = _USAGE_PROBE.decode(data)
    except (msgspec.DecodeError, RecursionError):  # RecursionError: nested too deep
        return False
    return isinstance(chunk.usage, dict) and not chunk.choices


def ensure_stream_usage(body: bytes) -> tuple[bytes, bool]:
    """Make a streaming Chat Completions request ask for usage in its last chunk.

    Returns the body to send and whether usage was added (the client did not ask, so the
    usage-only chunk must not reach it). Other bodies come back unchanged, byte for byte.
    """
    try:
        probe = _STREAM_REQUEST_PROBE.decode(body)
    except (msgspec.DecodeError, RecursionError):  # RecursionError: nested too deep
        return body, False
    if probe.stream is not True:
        return body, False
    options = probe.stream_options
    if isinstance(options, dict) and options.get("include_usage") is True:
        return body, False
    if options is _UNSET:
        # Splice the field in after the opening brace; the rest stays byte-identical.
        # The object is not empty ("stream" is in it), so a trailing comma is right.
        start = body.index(b"{") + 1
        return body[:start] + _INCLUDE_USAGE + body[start:], True
    document = msgspec.json.decode(body)
    kept = options if isinstance(options, dict) else {}
    document["stream_options"] = {**kept, "include_usage": True}
    return msgspec.json.encode(document), True


class OpenAIChatStreamUsage:
    """Usage of a streamed Chat Completions response (needs ``include_usage``)."""

    __slots__ = ("_usage", "_chars", "_tier")

    def __init__(self) -> None:
        self._usage: _ChatUsage | None = None
        self._chars = 0
        self._tier: str | None = None

    def observe(self, event: SSEEvent) -> None:
        data = event.data
        if data == b"[DONE]":
            return
        try:
            chunk = _CHAT_CHUNK.decode(data)
        except (msgspec.DecodeError, RecursionError):  # RecursionError: nested too deep
            return
        if chunk.service_tier is not None:
            self._tier = chunk.service_tier
        if chunk.usage is not None:
            self._usage = chunk.usage  # cumulative; the last one wins
        for choice in chunk.choices or ():
            delta = choice.delta
            if delta is None:
                continue
            self._chars += (
                len(delta.content or "")
                + len(delta.refusal or "")
                + len(delta.reasoning_content or "")
            )
            for call in delta.tool_calls or ():
                if call.function is not None:
                    self._chars += len(call.function.arguments or "")

    @property
    def seen(self) -> bool:
        return self._usage is not None

    def result(self, complete: bool) -> Usage:
        """The usage so far; exact only if ``complete`` and the usage chunk was seen."""
        exact = complete and self._usage is not None
        usage = _chat_usage(self._usage or _ChatUsage(), self._tier)
        return _settle(usage, exact, self._chars)


# --- OpenAI Responses -----------------------------------------------------------------


class _InputDetails(msgspec.Struct):
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None


class _OutputDetails(msgspec.Struct):
    reasoning_tokens: int | None = None


class _ResponsesUsage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    input_tokens_details: _InputDetails | None = None
    output_tokens_details: _OutputDetails | None = None


class _OutputItem(msgspec.Struct):
    type: str = ""


class _Response(msgspec.Struct):
    usage: _ResponsesUsage | None = None
    service_tier: str | None = None
    output: list[_OutputItem] | None = None


class _ResponsesEvent(msgspec.Struct):
    type: str = ""
    delta: Any = None
    response: _Response | None = None


_RESPONSE = msgspec.json.Decoder(_Response)
_RESPONSES_EVENT = msgspec.json.Decoder(_ResponsesEvent)
_RESPONSES_TEXT = frozenset(
    {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.function_call_arguments.delta",
        "response.custom_tool_call_input.delta",
        "response.reasoning_text.delta",
        "response.reasoning_summary_text.delta",
    }
)
# Terminal events; each carries the response object and, normally, its usage.
_RESPONSES_FINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


def _responses_usage(usage: _ResponsesUsage, response: _Response | None = None) -> Usage:
    prompt = _n(usage.input_tokens)
    cached, written = _cached(prompt, usage.input_tokens_details)
    reasoning = usage.output_tokens_details
    searches = 0
    if response is not None and response.output:
        searches = sum(1 for item in response.output if item.type == "web_search_call")
    return Usage(
        input_tokens=prompt - cached - written,  # input_tokens includes cache reads, writes
        output_tokens=_n(usage.output_tokens),
        cache_read_tokens=cached,
        cache_write_5m_tokens=written,
        reasoning_tokens=_n(reasoning.reasoning_tokens) if reasoning is not None else 0,
        service_tier=_openai_tier(response.service_tier) if response is not None else None,
        web_searches=searches,
    )


def responses_usage(body: bytes) -> Usage | None:
    """Usage of a whole (non-streamed) Responses API response, or None."""
    try:
        response = _RESPONSE.decode(body)
    except (msgspec.DecodeError, RecursionError):  # RecursionError: nested too deep
        return None
    usage = response.usage
    return None if usage is None else _responses_usage(usage, response)


class ResponsesStreamUsage:
    """Usage of a streamed Responses API response, from its terminal event."""

    __slots__ = ("_usage", "_chars", "_response")

    def __init__(self) -> None:
        self._usage: _ResponsesUsage | None = None
        self._chars = 0
        self._response: _Response | None = None

    def observe(self, event: SSEEvent) -> None:
        kind = event.event
        if kind is not None and kind not in _RESPONSES_TEXT and kind not in _RESPONSES_FINAL:
            return
        try:
            decoded = _RESPONSES_EVENT.decode(event.data)
        except (msgspec.DecodeError, RecursionError):  # RecursionError: nested too deep
            return
        kind = decoded.type or kind
        if kind in _RESPONSES_TEXT:
            if isinstance(decoded.delta, str):
                self._chars += len(decoded.delta)
        elif kind in _RESPONSES_FINAL and decoded.response is not None:
            if decoded.response.usage is not None:
                self._usage = decoded.response.usage
                self._response = decoded.response

    @property
    def seen(self) -> bool:
        return self._usage is not None

    def result(self, complete: bool) -> Usage:
        """The usage so far; exact only if ``complete`` and a terminal event had usage."""
        exact = complete and self._usage is not None
        usage = _responses_usage(self._usage or _ResponsesUsage(), self._response)
        return _settle(usage, exact, self._chars)


# --- Gemini generateContent -----------------------------------------------------------


class _GeminiUsage(msgspec.Struct, rename="camel"):
    prompt_token_count: int | None = None
    candidates_token_count: int | None = None
    cached_content_token_count: int | None = None
    thoughts_token_count: int | None = None
    tool_use_prompt_token_count: int | None = None


class _GeminiPart(msgspec.Struct):
    text: str | None = None


class _GeminiContent(msgspec.Struct):
    parts: list[_GeminiPart] | None = None


class _GeminiCandidate(msgspec.Struct, rename="camel"):
    content: _GeminiContent | None = None
    finish_reason: str | None = None


class _GeminiResponse(msgspec.Struct, rename="camel"):
    usage_metadata: _GeminiUsage | None = None
    candidates: list[_GeminiCandidate] | None = None


_GEMINI_RESPONSE = msgspec.json.Decoder(_GeminiResponse)


def _gemini(usage: _GeminiUsage) -> Usage:
    # promptTokenCount includes the cached part; thoughts are billed as output, apart
    # from candidatesTokenCount; tool-use prompt tokens are input.
    prompt = _n(usage.prompt_token_count) + _n(usage.tool_use_prompt_token_count)
    cached = min(_n(usage.cached_content_token_count), prompt)
    thoughts = _n(usage.thoughts_token_count)
    return Usage(
        input_tokens=prompt - cached,
        output_tokens=_n(usage.candidates_token_count) + thoughts,
        cache_read_tokens=cached,
        reasoning_tokens=thoughts,
    )


def gemini_usage(body: bytes) -> Usage | None:
    """Usage of a whole generateContent response (``usageMetadata``), or None."""
    try:
        usage = _GEMINI_RESPONSE.decode(body).usage_metadata
    except (msgspec.DecodeError, RecursionError):  # RecursionError: nested too deep
        return None
    return None if usage is None else _gemini(usage)


class GeminiStreamUsage:
    """Usage of a streamGenerateContent stream: each chunk's usageMetadata is cumulative."""

    __slots__ = ("_usage", "_chars", "_final")

    def __init__(self) -> None:
        self._usage: _GeminiUsage | None = None
        self._chars = 0
        self._final = False

    def observe(self, event: SSEEvent) -> None:
        try:
            chunk = _GEMINI_RESPONSE.decode(event.data)
        except (msgspec.DecodeError, RecursionError):  # RecursionError: nested too deep
            return
        if chunk.usage_metadata is not None:
            self._usage = chunk.usage_metadata
        for candidate in chunk.candidates or ():
            if candidate.finish_reason is not None:
                self._final = True
            if candidate.content is not None:
                self._chars += sum(len(p.text or "") for p in candidate.content.parts or ())

    @property
    def seen(self) -> bool:
        return self._usage is not None and self._final

    def result(self, complete: bool) -> Usage:
        """The usage so far; exact only if ``complete`` and the final chunk had usage."""
        exact = complete and self.seen
        return _settle(_gemini(self._usage or _GeminiUsage()), exact, self._chars)
