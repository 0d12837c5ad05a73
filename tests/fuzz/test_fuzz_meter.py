"""Fuzzing what a hostile upstream sends into metering: bodies and streams never crash it.

``Outcome`` sees every upstream byte (JSON bodies and SSE streams, in each dialect); it
must relay them and settle a usage, whatever they are.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from tollway.pipeline.meter import Outcome
from tollway.providers.base import ANTHROPIC, GEMINI, OPENAI_CHAT, OPENAI_RESPONSES

_dialects = st.sampled_from([ANTHROPIC, OPENAI_CHAT, OPENAI_RESPONSES, GEMINI])
_numbers = st.integers(min_value=-(2**70), max_value=2**70) | st.floats() | st.text(max_size=5)
_usage = st.dictionaries(
    st.sampled_from(["input_tokens", "output_tokens", "prompt_tokens", "completion_tokens",
                     "cache_read_input_tokens", "cache_creation_input_tokens", "total_tokens",
                     "cache_creation", "input_tokens_details", "prompt_tokens_details",
                     "promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount",
                     "cachedContentTokenCount"]),
    _numbers | st.none() | st.dictionaries(st.text(max_size=12), _numbers, max_size=3),
    max_size=6,
)  # fmt: skip
_event_types = st.sampled_from(["message_start", "message_delta", "message_stop",
                                "response.completed", "error", "ping", ""])  # fmt: skip


@st.composite
def _documents(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["usage", "bytes", "deep"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "deep":
        depth = draw(st.integers(min_value=1, max_value=5000))
        return ('{"usage":' + "[" * depth + "]" * depth + "}").encode()
    doc = {"type": draw(_event_types), "usage": draw(_usage)}
    doc["message"] = {"usage": draw(_usage)}
    doc["response"] = {"usage": draw(_usage)}
    doc["usageMetadata"] = draw(_usage)
    return json.dumps(doc).encode()


@settings(max_examples=300)
@given(_dialects, _documents(), st.sampled_from([200, 400, 529]))
def test_any_upstream_body_is_metered_without_crashing(
    dialect: str, body: bytes, status: int
) -> None:
    outcome = Outcome(dialect, status, drop_usage_chunk=False, keep=True)
    outcome.body(body)
    outcome.complete = True
    usage = outcome.final_usage()
    assert usage.input_tokens >= 0 and usage.output_tokens >= 0


@settings(max_examples=300)
@given(
    _dialects,
    st.lists(st.tuples(st.none() | _event_types, _documents()), max_size=6),
    st.booleans(),
    st.booleans(),
)
def test_any_upstream_stream_is_relayed_and_metered_without_crashing(
    dialect: str, events: list[tuple[str | None, bytes]], drop_usage: bool, complete: bool
) -> None:
    outcome = Outcome(dialect, 200, drop_usage_chunk=drop_usage, keep=True)
    fed = sent = b""
    for name, data in events:
        head = f"event: {name}\n".encode() if name is not None else b""
        chunk = head + b"data: " + data.replace(b"\n", b" ").replace(b"\r", b" ") + b"\n\n"
        fed += chunk
        sent += outcome.feed(chunk)
    outcome.finish()  # observes a trailing event; sends nothing
    outcome.complete = complete
    usage = outcome.final_usage()
    assert usage.input_tokens >= 0 and usage.output_tokens >= 0
    if not drop_usage:
        assert sent == fed  # passthrough: every byte relayed as it came
