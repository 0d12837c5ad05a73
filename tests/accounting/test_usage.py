from __future__ import annotations

import json
from typing import Any, Protocol

import pytest

from tollway.accounting.usage import (
    AnthropicStreamUsage,
    OpenAIChatStreamUsage,
    ResponsesStreamUsage,
    Usage,
    anthropic_usage,
    ensure_stream_usage,
    estimate_tokens,
    is_usage_only_chunk,
    openai_chat_usage,
    responses_usage,
)
from tollway.sse import SSEEvent, SSEParser

Events = list[tuple[str | None, Any]]


class Tracker(Protocol):
    def observe(self, event: SSEEvent) -> None: ...


def wire(events: Events) -> bytes:
    """SSE bytes as the upstream sends them (``data`` that is a str is sent verbatim)."""
    out = b""
    for name, data in events:
        if name is not None:
            out += b"event: " + name.encode() + b"\n"
        payload = data if isinstance(data, str) else json.dumps(data)
        out += b"data: " + payload.encode() + b"\n\n"
    return out


def observe(tracker: Tracker, events: Events, chunk_size: int = 7) -> None:
    """Relay-style: parse the wire bytes in small chunks and feed every event."""
    stream = wire(events)
    parser = SSEParser()
    for i in range(0, len(stream), chunk_size):
        for event in parser.feed(stream[i : i + chunk_size]):
            tracker.observe(event)
    for event in parser.flush():
        tracker.observe(event)


# --- Anthropic ------------------------------------------------------------------------

# The usage block Claude Code got back (claude_ssedrop_n1.jsonl seq 6, non-streamed retry).
CAPTURED_USAGE = {
    "input_tokens": 19405,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
    "output_tokens": 5,
    "service_tier": "standard",
}


def message(usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "msg_mock_0bd7bdab4bcd4ebc839e",
        "type": "message",
        "role": "assistant",
        "model": "claude-opus-4-8",
        "content": [{"type": "text", "text": "OK"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }


def block_delta(index: int, delta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})


def claude_turn(start_usage: dict[str, Any], delta_usage: dict[str, Any] | None) -> Events:
    """Shaped like claude_tool_think.jsonl seq 3: thinking, text, tool_use, then the end."""
    start = message(start_usage) | {"content": [], "stop_reason": None}
    events: Events = [
        ("message_start", {"type": "message_start", "message": start}),
        ("content_block_start", {"type": "content_block_start", "index": 0}),
        block_delta(0, {"type": "thinking_delta", "thinking": "The user wants echo hi. Use Bash."}),
        block_delta(0, {"type": "signature_delta", "signature": "EqMOCKSIGNATURE0123456789=="}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("ping", {"type": "ping"}),
        block_delta(1, {"type": "text_delta", "text": "I'll run it."}),
        block_delta(2, {"type": "input_json_delta", "partial_json": '{"command"'}),
        block_delta(2, {"type": "input_json_delta", "partial_json": ': "echo hi"}'}),
    ]
    if delta_usage is not None:
        delta = {"stop_reason": "tool_use", "stop_sequence": None}
        events.append(
            ("message_delta", {"type": "message_delta", "delta": delta, "usage": delta_usage})
        )
        events.append(("message_stop", {"type": "message_stop"}))
    return events


# thinking (33) + text (12) + tool input (10 + 13) characters; the signature is not output
TURN_CHARS = 33 + 12 + 10 + 13


def test_anthropic_non_streamed_capture() -> None:
    body = json.dumps(message(CAPTURED_USAGE)).encode()
    assert anthropic_usage(body) == Usage(input_tokens=19405, output_tokens=5)


def test_anthropic_cache_write_without_split_is_all_5m() -> None:
    usage = {"input_tokens": 12, "cache_creation_input_tokens": 3000, "output_tokens": 9}
    assert anthropic_usage(json.dumps(message(usage)).encode()) == Usage(
        input_tokens=12, output_tokens=9, cache_write_5m_tokens=3000
    )


def test_anthropic_cache_write_split_by_ttl_is_not_double_counted() -> None:
    usage = {
        "input_tokens": 12,
        "cache_read_input_tokens": 18000,
        "cache_creation_input_tokens": 3000,
        "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000},
        "output_tokens": 9,
    }
    got = anthropic_usage(json.dumps(message(usage)).encode())
    assert got == Usage(
        input_tokens=12,
        output_tokens=9,
        cache_read_tokens=18000,
        cache_write_5m_tokens=1000,
        cache_write_1h_tokens=2000,
    )
    assert got.prompt_tokens == 12 + 18000 + 3000


def test_anthropic_total_beyond_the_split_is_billed_as_5m() -> None:
    usage = {
        "cache_creation_input_tokens": 3000,
        "cache_creation": {"ephemeral_1h_input_tokens": 2000},
    }
    got = anthropic_usage(json.dumps(message(usage)).encode())
    assert got is not None
    assert (got.cache_write_5m_tokens, got.cache_write_1h_tokens) == (1000, 2000)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"type":"message"}',
        b'{"usage":null}',
        b'{"usage":{"input_tokens":"x"}}',
    ],
)
def test_anthropic_without_usable_usage_is_none(body: bytes) -> None:
    assert anthropic_usage(body) is None


def test_anthropic_null_counts_are_zero() -> None:
    body = b'{"usage":{"input_tokens":7,"output_tokens":null,"cache_creation_input_tokens":null}}'
    assert anthropic_usage(body) == Usage(input_tokens=7)


def test_anthropic_stream_merges_start_and_delta() -> None:
    tracker = AnthropicStreamUsage()
    start = {"input_tokens": 19406, "cache_creation_input_tokens": 0, "output_tokens": 1}
    observe(tracker, claude_turn(start, CAPTURED_USAGE | {"input_tokens": 19406}))
    assert tracker.result(complete=True) == Usage(input_tokens=19406, output_tokens=5)


def test_anthropic_stream_delta_fields_override_start() -> None:
    tracker = AnthropicStreamUsage()
    start = {"input_tokens": 50, "cache_read_input_tokens": 0, "output_tokens": 1}
    delta = {
        "output_tokens": 420,
        "cache_read_input_tokens": 18000,
        "cache_creation_input_tokens": 2500,
        "cache_creation": {"ephemeral_5m_input_tokens": 500, "ephemeral_1h_input_tokens": 2000},
    }
    observe(tracker, claude_turn(start, delta))
    assert tracker.result(complete=True) == Usage(
        input_tokens=50,
        output_tokens=420,
        cache_read_tokens=18000,
        cache_write_5m_tokens=500,
        cache_write_1h_tokens=2000,
    )


def test_anthropic_stream_dropped_after_start() -> None:
    # claude_ssedrop_n1.jsonl seq 5: message_start, content_block_start, then nothing.
    tracker = AnthropicStreamUsage()
    observe(tracker, claude_turn({"input_tokens": 19405, "output_tokens": 1}, None)[:2])
    assert tracker.result(complete=False) == Usage(
        input_tokens=19405, output_tokens=1, partial=True
    )


def test_anthropic_stream_cut_is_billed_for_delivered_characters() -> None:
    tracker = AnthropicStreamUsage()
    observe(tracker, claude_turn({"input_tokens": 19405, "output_tokens": 1}, None))
    got = tracker.result(complete=False)
    assert got == Usage(input_tokens=19405, output_tokens=estimate_tokens(TURN_CHARS), partial=True)
    assert got.output_tokens == 17


def test_anthropic_stream_without_message_delta_is_partial_even_if_said_complete() -> None:
    tracker = AnthropicStreamUsage()
    events = claude_turn({"input_tokens": 10, "output_tokens": 1}, None)
    events.append(("error", {"type": "error", "error": {"type": "overloaded_error"}}))
    observe(tracker, events)  # claude_sseerr_n1.jsonl: an error event mid-stream
    assert tracker.result(complete=True).partial


def test_anthropic_client_disconnect_after_the_final_usage_keeps_the_larger_count() -> None:
    tracker = AnthropicStreamUsage()
    observe(tracker, claude_turn({"input_tokens": 10, "output_tokens": 1}, {"output_tokens": 90}))
    assert tracker.result(complete=False) == Usage(input_tokens=10, output_tokens=90, partial=True)


def test_anthropic_stream_ignores_garbage_and_unnamed_events_still_count() -> None:
    tracker = AnthropicStreamUsage()
    tracker.observe(SSEEvent("content_block_delta", b'{"delta": {"text": "cut mid-js'))
    tracker.observe(SSEEvent(None, b'{"type":"content_block_delta","delta":{"text":"abcdefgh"}}'))
    assert tracker.result(complete=False).output_tokens == 2


# --- OpenAI Chat Completions ----------------------------------------------------------


def chat_usage(prompt: int, cached: int, completion: int, reasoning: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": reasoning, "audio_tokens": 0},
    }


def chunk(delta: dict[str, Any] | None, usage: dict[str, Any] | None = None) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": None}]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": "gpt-5-2025-08-07",
        "choices": choices,
        "usage": usage,
    }


def chat_stream(with_usage: bool) -> Events:
    call = {"index": 0, "id": "call_1", "type": "function"}
    events: Events = [
        (None, chunk({"role": "assistant", "content": ""})),
        (None, chunk({"content": "Hello"})),
        (None, chunk({"content": ", world"})),
        (None, chunk({"tool_calls": [call | {"function": {"name": "sh", "arguments": ""}}]})),
        (None, chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"cmd":"ls"}'}}]})),
    ]
    if with_usage:
        events.append((None, chunk(None, chat_usage(10000, 8000, 3000, 2000))))
        events.append((None, "[DONE]"))
    return events


def test_openai_chat_non_streamed_cached_and_reasoning() -> None:
    body = json.dumps({"choices": [], "usage": chat_usage(10000, 8000, 3000, 2000)}).encode()
    assert openai_chat_usage(body) == Usage(
        input_tokens=2000, output_tokens=3000, cache_read_tokens=8000, reasoning_tokens=2000
    )


def test_openai_chat_without_details() -> None:
    body = b'{"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}}'
    assert openai_chat_usage(body) == Usage(input_tokens=9, output_tokens=4)
    assert openai_chat_usage(b'{"choices":[]}') is None


def test_openai_chat_stream_usage_from_the_final_chunk() -> None:
    tracker = OpenAIChatStreamUsage()
    observe(tracker, chat_stream(with_usage=True))
    assert tracker.result(complete=True) == Usage(
        input_tokens=2000, output_tokens=3000, cache_read_tokens=8000, reasoning_tokens=2000
    )


def test_openai_chat_stream_cut_is_estimated_from_content_and_arguments() -> None:
    tracker = OpenAIChatStreamUsage()
    observe(tracker, chat_stream(with_usage=False))
    chars = len("Hello, world") + len('{"cmd":"ls"}')
    assert tracker.result(complete=False) == Usage(
        output_tokens=estimate_tokens(chars), partial=True
    )


def test_usage_only_chunk_is_recognised() -> None:
    usage_chunk = json.dumps(chunk(None, chat_usage(1, 0, 1, 0))).encode()
    assert is_usage_only_chunk(usage_chunk)
    assert not is_usage_only_chunk(json.dumps(chunk({"content": "hi"})).encode())
    assert not is_usage_only_chunk(json.dumps(chunk(None)).encode())  # "usage": null
    assert not is_usage_only_chunk(b"[DONE]")
    assert not is_usage_only_chunk(b'{"usage": {"x": 1}, "choices": [')


STREAM_REQUEST = (
    b'{"model":"gpt-5","stream":true,"messages":[{"role":"user","content":"caf\\u00e9 1.0"}],'
    b'"temperature":1.0}'
)


def test_ensure_stream_usage_splices_the_option_leaving_the_rest_byte_identical() -> None:
    body, added = ensure_stream_usage(b"  " + STREAM_REQUEST)
    assert added
    assert body == b'  {"stream_options":{"include_usage":true},' + STREAM_REQUEST[1:]
    assert json.loads(body)["stream_options"] == {"include_usage": True}


def test_ensure_stream_usage_leaves_a_request_that_asked_alone() -> None:
    asked = STREAM_REQUEST[:-1] + b',"stream_options":{"include_usage":true}}'
    assert ensure_stream_usage(asked) == (asked, False)


@pytest.mark.parametrize(
    "body",
    [b'{"model":"gpt-5","messages":[]}', b'{"stream":false}', b'{"stream":"true"}', b"{", b"[]"],
)
def test_ensure_stream_usage_leaves_other_bodies_alone(body: bytes) -> None:
    assert ensure_stream_usage(body) == (body, False)


@pytest.mark.parametrize(
    ("options", "want"),
    [
        ({"include_usage": False}, {"include_usage": True}),
        (None, {"include_usage": True}),
        ({"continuous_usage_stats": True}, {"continuous_usage_stats": True, "include_usage": True}),
    ],
)
def test_ensure_stream_usage_rewrites_existing_options(
    options: dict[str, Any] | None, want: dict[str, Any]
) -> None:
    request = {"model": "gpt-5", "stream": True, "stream_options": options, "messages": []}
    body, added = ensure_stream_usage(json.dumps(request).encode())
    assert added
    assert json.loads(body) == request | {"stream_options": want}


# --- OpenAI Responses -----------------------------------------------------------------


def response(status: str, usage: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": "resp_mock50f13d0e4c6b43f4",
        "object": "response",
        "status": status,
        "model": "gpt-5",
        "output": [],
        "usage": usage,
    }


def responses_usage_block(inp: int, cached: int, out: int, reasoning: int) -> dict[str, Any]:
    return {
        "input_tokens": inp,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": inp + out,
    }


def typed(kind: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    return kind, {"type": kind, **fields}


def codex_stream(final: str | None, usage: dict[str, Any] | None) -> Events:
    """Shaped like codex_exec_responses.jsonl seq 47."""
    item = {"item_id": "msg_mockc461d9940581", "output_index": 0, "content_index": 0}
    pending = response("in_progress", None)
    events: Events = [
        typed("response.created", response=pending),
        typed("response.in_progress", response=pending),
        typed("response.reasoning_summary_text.delta", delta="Thinking about it"),
        typed("response.output_text.delta", delta="OK", **item),
        typed("response.output_text.done", text="OK", **item),
        typed("response.function_call_arguments.delta", delta='{"command":["ls"]}'),
    ]
    if final is not None:
        events.append((final, {"type": final, "response": response("completed", usage)}))
    return events


def test_responses_non_streamed() -> None:
    body = json.dumps(response("completed", responses_usage_block(5269, 4096, 300, 256))).encode()
    assert responses_usage(body) == Usage(
        input_tokens=1173, output_tokens=300, cache_read_tokens=4096, reasoning_tokens=256
    )
    assert responses_usage(json.dumps(response("in_progress", None)).encode()) is None


def test_responses_stream_capture() -> None:
    tracker = ResponsesStreamUsage()
    observe(tracker, codex_stream("response.completed", responses_usage_block(5269, 0, 2, 0)))
    assert tracker.result(complete=True) == Usage(input_tokens=5269, output_tokens=2)


def test_responses_incomplete_still_carries_exact_usage() -> None:
    tracker = ResponsesStreamUsage()
    observe(tracker, codex_stream("response.incomplete", responses_usage_block(100, 0, 64, 60)))
    assert tracker.result(complete=True) == Usage(
        input_tokens=100, output_tokens=64, reasoning_tokens=60
    )


def test_responses_stream_dropped_is_estimated() -> None:
    # codex_ssedrop_n2.jsonl: the stream ends before response.completed.
    tracker = ResponsesStreamUsage()
    observe(tracker, codex_stream(None, None))
    chars = len("Thinking about it") + len("OK") + len('{"command":["ls"]}')
    assert tracker.result(complete=False) == Usage(
        output_tokens=estimate_tokens(chars), partial=True
    )
    assert tracker.result(complete=True).partial  # no terminal event, so never exact


def test_responses_unnamed_events_are_decoded() -> None:
    tracker = ResponsesStreamUsage()
    for _, data in codex_stream("response.completed", responses_usage_block(7, 2, 3, 1)):
        tracker.observe(SSEEvent(None, json.dumps(data).encode()))
    assert tracker.result(complete=True) == Usage(
        input_tokens=5, output_tokens=3, cache_read_tokens=2, reasoning_tokens=1
    )


def test_service_tiers_searches_and_cache_writes_are_read() -> None:
    from tollway.accounting.usage import responses_usage

    body = {
        "service_tier": "priority",
        "output": [{"type": "web_search_call"}, {"type": "message"}, {"type": "web_search_call"}],
        "usage": {"input_tokens": 100, "output_tokens": 7,
                  "input_tokens_details": {"cached_tokens": 30, "cache_write_tokens": 20}},
    }  # fmt: skip
    assert responses_usage(json.dumps(body).encode()) == Usage(
        input_tokens=50, output_tokens=7, cache_read_tokens=30, cache_write_5m_tokens=20,
        service_tier="priority", web_searches=2,
    )  # fmt: skip
    chat = {"service_tier": "default", "usage": {"prompt_tokens": 9, "completion_tokens": 1}}
    assert openai_chat_usage(json.dumps(chat).encode()) == Usage(input_tokens=9, output_tokens=1)
    # Anthropic: fast mode and server tool use arrive in the stream's usage.
    tracker = AnthropicStreamUsage()
    start = {"type": "message_start", "message": {"usage": {"input_tokens": 10, "speed": "fast"}}}
    delta = {"type": "message_delta", "usage": {"output_tokens": 4,
             "server_tool_use": {"web_search_requests": 2}}}  # fmt: skip
    for name, data in (("message_start", start), ("message_delta", delta)):
        tracker.observe(SSEEvent(name, json.dumps(data).encode()))
    assert tracker.result(complete=True) == Usage(
        input_tokens=10, output_tokens=4, service_tier="fast", web_searches=2
    )
