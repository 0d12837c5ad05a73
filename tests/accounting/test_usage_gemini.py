"""Gemini usageMetadata, whole and streamed: thoughts billed as output, cache reads apart."""

from __future__ import annotations

import json

from tollway.accounting.usage import GeminiStreamUsage, Usage, gemini_usage
from tollway.sse import SSEEvent

META = {"promptTokenCount": 1200, "candidatesTokenCount": 80,
        "cachedContentTokenCount": 1000, "thoughtsTokenCount": 40,
        "toolUsePromptTokenCount": 5, "totalTokenCount": 1325}  # fmt: skip
USAGE = Usage(input_tokens=205, output_tokens=120, cache_read_tokens=1000, reasoning_tokens=40)


def _chunk(text: str, meta: dict[str, int] | None = None, finish: bool = False) -> SSEEvent:
    candidate: dict[str, object] = {"content": {"role": "model", "parts": [{"text": text}]}}
    if finish:
        candidate["finishReason"] = "STOP"
    doc: dict[str, object] = {"candidates": [candidate]}
    if meta is not None:
        doc["usageMetadata"] = meta
    return SSEEvent(None, json.dumps(doc).encode())


def test_a_whole_answer() -> None:
    body = json.dumps({"candidates": [], "usageMetadata": META}).encode()
    assert gemini_usage(body) == USAGE
    assert USAGE.prompt_tokens == 1205
    assert gemini_usage(b'{"candidates": []}') is None
    assert gemini_usage(b"not json") is None


def test_a_stream_takes_the_last_cumulative_count() -> None:
    tracker = GeminiStreamUsage()
    tracker.observe(_chunk("Hello", {"promptTokenCount": 1200, "candidatesTokenCount": 1}))
    assert not tracker.seen
    tracker.observe(_chunk(" there", META, finish=True))
    assert tracker.seen
    assert tracker.result(complete=True) == USAGE


def test_a_cut_stream_is_partial_and_bills_what_arrived() -> None:
    tracker = GeminiStreamUsage()
    tracker.observe(_chunk("x" * 400, {"promptTokenCount": 50}))
    usage = tracker.result(complete=False)
    assert (usage.input_tokens, usage.output_tokens, usage.partial) == (50, 100, True)
