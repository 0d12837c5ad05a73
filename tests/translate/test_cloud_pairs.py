"""The bedrock -> anthropic and vertex -> anthropic translation pairs."""

from __future__ import annotations

import base64
import json

from botocore.eventstream import EventStreamBuffer

from tollway import translate
from tollway.providers.base import ANTHROPIC, BEDROCK, VERTEX
from tollway.sse import SSEParser
from tollway.translate import bedrock as _bedrock  # noqa: F401 (registers)
from tollway.translate import vertex as _vertex  # noqa: F401 (registers)
from upstream_mock import ANTHROPIC_USAGE, SSE, anthropic_events

BEDROCK_BODY = {
    "anthropic_version": "bedrock-2023-05-31", "max_tokens": 32000,
    "anthropic_beta": ["interleaved-thinking-2025-05-14"],
    "messages": [{"role": "user", "content": "hi"}], "thinking": {"type": "enabled",
                                                                 "budget_tokens": 31999},
}  # fmt: skip


def _encode(events: list[SSE]) -> bytes:
    return b"".join(e.encode() for e in events)


def test_bedrock_request_and_answers() -> None:
    t = translate.pair(BEDROCK, ANTHROPIC)
    assert t is not None and translate.supported(BEDROCK, ANTHROPIC)
    out = json.loads(t.request(json.dumps(BEDROCK_BODY).encode(), "claude-sonnet-4-5", True))
    assert t.upstream_path("generate", "claude-sonnet-4-5", True) == "/v1/messages"
    assert out["model"] == "claude-sonnet-4-5" and out["stream"] is True
    assert "anthropic_version" not in out
    assert out["anthropic_beta"] == ["interleaved-thinking-2025-05-14"]  # placed by the provider
    assert out["thinking"] == BEDROCK_BODY["thinking"]
    assert t.content_type(True) == b"application/vnd.amazon.eventstream"
    message = b'{"type":"message","content":[]}'
    assert t.response(message) == message
    err = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    assert json.loads(t.error(529, err)) == {"message": "Overloaded"}


def test_bedrock_stream_becomes_event_stream_frames() -> None:
    t = translate.pair(BEDROCK, ANTHROPIC)
    assert t is not None
    st = t.stream()
    upstream = SSEParser().feed(_encode(anthropic_events("Hi there", model="claude-x")))
    out = b"".join(piece for event in upstream for piece in st.feed(event))
    out += b"".join(st.close(True))
    buf = EventStreamBuffer()
    buf.add_data(out)
    frames = list(buf)
    events = [json.loads(base64.b64decode(json.loads(f.payload)["bytes"])) for f in frames]
    kinds = [e["type"] for e in events]
    assert "ping" not in kinds  # Bedrock has no pings
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert len(frames) == len(upstream) - 1
    assert events[-1]["amazon-bedrock-invocationMetrics"] == {
        "inputTokenCount": ANTHROPIC_USAGE["input_tokens"],
        "outputTokenCount": ANTHROPIC_USAGE["output_tokens"],
    }
    assert all(f.headers[":event-type"] == "chunk" for f in frames)


def test_bedrock_count_tokens_envelope() -> None:
    t = translate.pair(BEDROCK, ANTHROPIC)
    assert t is not None
    inner = base64.b64encode(json.dumps(BEDROCK_BODY).encode()).decode()
    body = json.dumps({"input": {"invokeModel": {"body": inner}}}).encode()
    out = json.loads(t.request(body, "claude-sonnet-4-5", False))
    assert t.upstream_path("count_tokens", "claude-sonnet-4-5", False) == (
        "/v1/messages/count_tokens"
    )
    assert out["model"] == "claude-sonnet-4-5" and "max_tokens" not in out
    assert out["messages"] == BEDROCK_BODY["messages"]
    assert json.loads(t.response(b'{"input_tokens": 9}')) == {"inputTokens": 9}


def test_vertex_request_and_stream() -> None:
    t = translate.pair(VERTEX, ANTHROPIC)
    assert t is not None
    body = {"anthropic_version": "vertex-2023-10-16", "stream": True, "max_tokens": 5,
            "messages": []}  # fmt: skip
    out = json.loads(t.request(json.dumps(body).encode(), "claude-sonnet-4-5@20250929", True))
    assert out == {"stream": True, "max_tokens": 5, "messages": [],
                   "model": "claude-sonnet-4-5-20250929"}  # fmt: skip
    raw = _encode(anthropic_events("x"))
    st = t.stream()
    out_raw = b"".join(p for e in SSEParser().feed(raw) for p in st.feed(e))
    assert out_raw == raw  # the same events, byte for byte
    assert t.content_type(True) == b"text/event-stream"
    err = b'{"type":"error","error":{"type":"rate_limit_error","message":"x"}}'
    assert t.error(429, err) == err
