"""Request bodies the load generators send and response bodies the mock upstream answers.

Three request shapes: a small OpenAI chat completion, a small Anthropic message, and the
Claude Code request recorded in ``shared/wire/claude_p_apikey.jsonl`` (about 77 KB, 24
tools, streaming), sent with the headers Claude Code sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
WIRE = REPO.parent / "shared" / "wire" / "claude_p_apikey.jsonl"
if not WIRE.exists():  # a clone with shared/ beside the repository, as in CI
    WIRE = REPO / ".." / "shared" / "wire" / "claude_p_apikey.jsonl"
if not WIRE.exists():  # the same capture, copied into the repository's test fixtures
    WIRE = REPO / "tests" / "fixtures" / "wire" / "claude_p_apikey.jsonl"

OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-haiku-4-5"
# Claude Code's body names claude-opus-4-8; Tollway prices it with the claude-opus-4-* entry.
CLAUDE_CODE_INPUT_TOKENS = 19405


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Shape:
    """One kind of request: where it goes, what it carries, and whether it streams."""

    name: str
    path: str  # path and query, as the client sends it
    body: bytes
    headers: tuple[tuple[str, str], ...]
    stream: bool
    key_header: str  # the header that carries the key ("x-api-key" or "authorization")

    def with_key(self, key: str) -> list[tuple[str, str]]:
        value = f"Bearer {key}" if self.key_header == "authorization" else key
        return [*self.headers, (self.key_header, value)]


def openai_small() -> Shape:
    body = {
        "model": OPENAI_MODEL,
        "messages": [
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": "Say hi in five words."},
        ],
        "max_tokens": 64,
    }
    return Shape(
        "openai-small",
        "/v1/chat/completions",
        dumps(body),
        (("content-type", "application/json"), ("user-agent", "bench/1")),
        False,
        "authorization",
    )


def anthropic_small() -> Shape:
    body = {
        "model": ANTHROPIC_MODEL,
        "max_tokens": 64,
        "system": "You are a terse assistant.",
        "messages": [{"role": "user", "content": "Say hi in five words."}],
    }
    headers = (
        ("content-type", "application/json"),
        ("anthropic-version", "2023-06-01"),
        ("user-agent", "bench/1"),
    )
    return Shape("anthropic-small", "/v1/messages", dumps(body), headers, False, "x-api-key")


_DROP = {"x-api-key", "authorization", "host", "content-length", "connection"}


def claude_code() -> Shape:
    """The recorded Claude Code request: its body and headers, the key left for the caller."""
    with WIRE.open(encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            if rec["method"] == "POST" and rec["path"] == "/v1/messages":
                break
        else:
            raise SystemExit(f"no POST /v1/messages in {WIRE}")
    headers = tuple((k.lower(), v) for k, v in rec["headers"] if k.lower() not in _DROP)
    return Shape(
        "claude-code-stream", rec["raw_path"], dumps(rec["body"]), headers, True, "x-api-key"
    )


def shapes() -> dict[str, Shape]:
    return {s.name: s for s in (openai_small(), anthropic_small(), claude_code())}


# --------------------------------------------------------------------------- responses


def openai_completion(model: str) -> bytes:
    return dumps(
        {
            "id": "chatcmpl-bench0000000000000000",
            "object": "chat.completion",
            "created": 1760000000,
            "model": model,
            "system_fingerprint": "fp_bench",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "logprobs": None,
                    "message": {
                        "role": "assistant",
                        "content": "Hi there, how are you?",
                        "refusal": None,
                    },
                }
            ],
            "usage": {
                "prompt_tokens": 24,
                "completion_tokens": 7,
                "total_tokens": 31,
                "prompt_tokens_details": {"cached_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0},
            },
        }
    )


def anthropic_message(model: str) -> bytes:
    return dumps(
        {
            "id": "msg_bench00000000000000000000",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": "Hi there, how are you?"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": 24,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 7,
                "service_tier": "standard",
            },
        }
    )


def _sse(event: str | None, data: Any) -> bytes:
    head = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else dumps(data).decode()
    return f"{head}data: {payload}\n\n".encode()


def _texts(tokens: int, pieces: int) -> list[str]:
    """``pieces`` text deltas that hold ``tokens`` tokens at about 4 characters a token."""
    words = ("the ", "gateway ", "relays ", "each ", "event ", "as ", "it ", "comes ")
    per = tokens // pieces
    out = []
    for i in range(pieces):
        n = per + (1 if i < tokens - per * pieces else 0)
        out.append("".join(words[(i + j) % len(words)] for j in range(n)))
    return out


def anthropic_events(model: str, events: int, tokens: int) -> list[bytes]:
    """An Anthropic stream of exactly ``events`` events carrying ``tokens`` output tokens."""
    deltas = events - 6
    usage = {
        "input_tokens": CLAUDE_CODE_INPUT_TOKENS,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    out = [
        _sse(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_bench00000000000000000000",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {**usage, "output_tokens": 1, "service_tier": "standard"},
                },
            },
        ),
        _sse(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        _sse("ping", {"type": "ping"}),
    ]
    for text in _texts(tokens, deltas):
        out.append(
            _sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": text},
                },
            )
        )
    out += [
        _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {**usage, "output_tokens": tokens},
            },
        ),
        _sse("message_stop", {"type": "message_stop"}),
    ]
    return out


def openai_events(model: str, events: int, tokens: int) -> list[bytes]:
    """A Chat Completions stream: deltas, a usage chunk and ``[DONE]``."""
    base = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1760000000,
        "model": model,
    }
    out = []
    for text in _texts(tokens, max(1, events - 2)):
        out.append(
            _sse(
                None,
                {
                    **base,
                    "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
                },
            )
        )
    out.append(
        _sse(
            None,
            {
                **base,
                "choices": [],
                "usage": {
                    "prompt_tokens": CLAUDE_CODE_INPUT_TOKENS,
                    "completion_tokens": tokens,
                    "total_tokens": CLAUDE_CODE_INPUT_TOKENS + tokens,
                },
            },
        )
    )
    out.append(_sse(None, "[DONE]"))
    return out
