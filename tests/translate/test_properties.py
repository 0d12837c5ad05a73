"""Properties: Anthropic -> X -> Anthropic keeps the semantic content of requests and
answers, and a translated stream is the same however its bytes are split."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from wire import datas, sse_bytes, translate_stream

from tollway.errors import InvalidRequest, UpstreamError
from tollway.providers.base import ANTHROPIC, GEMINI, OPENAI_CHAT, OPENAI_RESPONSES
from tollway.sse import SSEEvent
from tollway.translate.common import Context
from tollway.translate.pairs import CODECS, PivotTranslator
from upstream_mock import anthropic_events, chat_tool_events, gemini_events, text_block

OTHERS = [OPENAI_CHAT, OPENAI_RESPONSES, GEMINI]
MODEL = "test-model"  # not in the limits table: caps pass unchanged
_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
                max_size=20)  # fmt: skip
_names = st.sampled_from(["Bash", "Read", "Edit", "grep_search"])
_json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)
_inputs = st.dictionaries(st.sampled_from(["command", "path", "n", "flags"]), _json_value,
                          max_size=3)  # fmt: skip
_image = st.builds(lambda d: {"type": "image", "source": {"type": "base64",
                                                           "media_type": "image/png",
                                                           "data": d}},
                   st.sampled_from(["iVBORw0KGgo=", "R0lGODlhAQABAAAAACw="]))  # fmt: skip
_document = st.just({"type": "document", "source": {"type": "base64",
                                                    "media_type": "application/pdf",
                                                    "data": "JVBERi0xLjQK"}})  # fmt: skip


@st.composite
def conversations(draw: st.DrawFn) -> dict[str, Any]:
    tools = sorted(set(draw(st.lists(_names, min_size=1, max_size=3))))
    messages: list[dict[str, Any]] = []
    pending: list[str] = []
    counter = 0
    for turn in range(draw(st.integers(1, 4))):
        user: list[dict[str, Any]] = [
            {"type": "tool_result", "tool_use_id": tid,
             "content": [{"type": "text", "text": draw(_text)}]} for tid in pending
        ]  # fmt: skip
        pending = []
        parts = st.builds(text_block, _text) | _image | _document
        user += draw(st.lists(parts, min_size=0 if user else 1, max_size=2))
        messages.append({"role": "user", "content": user})
        if turn == 3 or not draw(st.booleans()):
            continue
        assistant: list[dict[str, Any]] = [text_block(t) for t in draw(st.lists(_text, max_size=2))]
        for _ in range(draw(st.integers(0 if assistant else 1, 2))):
            counter += 1
            tid = f"toolu_{counter:04d}"
            pending.append(tid)
            assistant.append({"type": "tool_use", "id": tid, "name": draw(st.sampled_from(tools)),
                              "input": draw(_inputs)})  # fmt: skip
        messages.append({"role": "assistant", "content": assistant})
    if pending:
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": tid, "content": [{"type": "text", "text": "ok"}]}
            for tid in pending]})  # fmt: skip
    doc: dict[str, Any] = {
        "model": MODEL, "max_tokens": draw(st.integers(1, 100000)), "messages": messages,
        "tools": [{"name": n, "description": f"the {n} tool",
                   "input_schema": {"type": "object", "properties": {"x": {"type": "string"}}}}
                  for n in tools],
    }  # fmt: skip
    if draw(st.booleans()):
        doc["system"] = [text_block(draw(_text))]
    choice = draw(st.sampled_from([None, "auto", "any", "none", "tool"]))
    if choice == "tool":
        doc["tool_choice"] = {"type": "tool", "name": draw(st.sampled_from(tools))}
    elif choice is not None:
        doc["tool_choice"] = {"type": choice}
    if draw(st.booleans()):
        doc["temperature"] = draw(st.sampled_from([0.0, 0.5, 1.0]))
    if draw(st.booleans()):
        doc["stop_sequences"] = draw(st.lists(_text, min_size=1, max_size=2))
    return doc


def _message_meaning(message: dict[str, Any]) -> tuple[Any, ...]:
    blocks = message["content"]
    if isinstance(blocks, str):
        blocks = [text_block(blocks)]
    text = "".join(b["text"] for b in blocks if b["type"] == "text")
    images = [(b["type"], b["source"]) for b in blocks if b["type"] in ("image", "document")]
    calls = [(b["id"], b["name"], b["input"]) for b in blocks if b["type"] == "tool_use"]
    results = [(b["tool_use_id"], "".join(c["text"] for c in b["content"]))
               for b in blocks if b["type"] == "tool_result"]  # fmt: skip
    return message["role"], text, images, calls, results


def _turns(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive messages of one role as one turn (as the Messages API reads them)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        content = m["content"] if isinstance(m["content"], list) else [text_block(m["content"])]
        if out and out[-1]["role"] == m["role"]:
            out[-1]["content"] += content
        else:
            out.append({"role": m["role"], "content": list(content)})
    return out


def meaning(doc: dict[str, Any]) -> dict[str, Any]:
    choice = doc.get("tool_choice")
    system = doc.get("system") or []
    return {
        "system": "".join(b["text"] for b in system) if isinstance(system, list) else system,
        "messages": [_message_meaning(m) for m in _turns(doc["messages"])],
        "tools": [(t["name"], t.get("description"), t["input_schema"]) for t in doc["tools"]],
        "tool_choice": None if choice in (None, {"type": "auto"}) else choice,
        "max_tokens": doc["max_tokens"],
        "temperature": doc.get("temperature"),
    }


@settings(max_examples=150)
@given(conversations(), st.sampled_from(OTHERS))
def test_a_request_keeps_its_meaning_through_any_dialect(doc: dict[str, Any], via: str) -> None:
    codec = CODECS[via]
    ctx = Context(model=MODEL)
    there = json.loads(json.dumps(codec.from_pivot(json.loads(json.dumps(doc)), ctx)))
    back = codec.to_pivot(there, Context(model=MODEL))
    assert meaning(back) == meaning(doc)
    if doc.get("stop_sequences") and back.get("stop_sequences") != doc["stop_sequences"]:
        assert "stop_sequences" in ctx.dropped  # lost only where the target has no place
    if "tool_choice" in doc and doc["tool_choice"]["type"] == "tool":
        assert doc["tool_choice"]["name"] in json.dumps(there)


@st.composite
def answers(draw: st.DrawFn) -> dict[str, Any]:
    content: list[dict[str, Any]] = [text_block(t) for t in draw(st.lists(_text, max_size=2))]
    calls = draw(st.lists(st.tuples(_names, _inputs), max_size=3))
    content += [{"type": "tool_use", "id": f"toolu_{i}", "name": n, "input": x}
                for i, (n, x) in enumerate(calls)]  # fmt: skip
    stop = "tool_use" if calls else draw(st.sampled_from(["end_turn", "max_tokens"]))
    usage = {"input_tokens": draw(st.integers(0, 10**6)),
             "output_tokens": draw(st.integers(0, 10**5)),
             "cache_read_input_tokens": draw(st.integers(0, 10**5)),
             "cache_creation_input_tokens": 0}  # fmt: skip
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage,
    }


@settings(max_examples=150)
@given(answers(), st.sampled_from(OTHERS))
def test_an_answer_keeps_its_meaning_through_any_dialect(msg: dict[str, Any], via: str) -> None:
    codec = CODECS[via]
    there = json.loads(json.dumps(codec.response_from_pivot(msg, Context(model=MODEL))))
    back = codec.response_to_pivot(there, Context(model=MODEL))
    assert _message_meaning(back) == _message_meaning(msg)
    assert back["stop_reason"] == msg["stop_reason"]
    assert back["usage"] == msg["usage"]


# --- streams, split anywhere ------------------------------------------------------------

_STREAMS = {
    ANTHROPIC: b"".join(e.encode() for e in anthropic_events(
        [{"type": "thinking", "thinking": "hmm, two files", "signature": "EqSIG=="},
         text_block("Reading both."),
         {"type": "tool_use", "id": "toolu_a", "name": "Read", "input": {"path": "a"}},
         {"type": "tool_use", "id": "toolu_b", "name": "Read", "input": {"path": "b"}}])),
    OPENAI_CHAT: b"".join(e.encode() for e in chat_tool_events(
        [("call_a", "Read", {"path": "a"}), ("call_b", "Read", {"path": "b"})],
        text="Reading both.")),
    GEMINI: b"".join(e.encode() for e in gemini_events(
        [{"text": "Reading both."},
         {"functionCall": {"name": "Read", "args": {"path": "a"}}, "thoughtSignature": "c2ln"},
         {"functionCall": {"name": "Read", "args": {"path": "b"}}}])),
    OPENAI_RESPONSES: sse_bytes("codex_tool_default_tool.jsonl", 63),
}  # fmt: skip
_GENERATED = frozenset({"id", "created", "created_at", "item_id", "responseId", "call_id"})


def _stable(value: Any) -> Any:
    """Events without the ids and times the translator makes up for each stream."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in _GENERATED}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    if isinstance(value, str) and value.startswith(("toolu_tw", "msg_tw", "fc_tw")):
        return "<generated>"
    return value


def _request_for(client: str) -> bytes:
    doc = {"model": MODEL, "max_tokens": 100, "stream": True,
           "messages": [{"role": "user", "content": "read a and b"}]}  # fmt: skip
    pivot = CODECS[client].from_pivot(doc, Context(model=MODEL, stream=True))
    return json.dumps(pivot).encode()


@settings(max_examples=120)
@given(st.sampled_from(list(_STREAMS)), st.sampled_from(list(CODECS)),
       st.lists(st.integers(0, 4000), max_size=12))  # fmt: skip
def test_a_stream_translates_the_same_however_it_is_split(
    upstream: str, client: str, cuts: list[int]
) -> None:
    if upstream == client:
        return
    stream = _STREAMS[upstream]
    outputs = []
    for pieces in ([], [c % (len(stream) + 1) for c in cuts]):
        t = PivotTranslator(client, upstream)
        t.upstream_path("generate", MODEL, True)
        t.request(_request_for(client), MODEL, True)
        outputs.append(_stable(datas(translate_stream(t, stream, pieces))))
    assert outputs[0] == outputs[1]
    assert outputs[0], "the translation said nothing"


def test_every_pair_ends_a_complete_stream_with_the_clients_final_event() -> None:
    finals = {ANTHROPIC: lambda d: d[-1] == {"type": "message_stop"},
              OPENAI_CHAT: lambda d: d[-1] == "[DONE]",
              OPENAI_RESPONSES: lambda d: d[-1]["type"] == "response.completed",
              GEMINI: lambda d: d[-1]["candidates"][0]["finishReason"] == "STOP"}  # fmt: skip
    for upstream, stream in _STREAMS.items():
        for client in CODECS:
            if client == upstream:
                continue
            t = PivotTranslator(client, upstream)
            t.upstream_path("generate", MODEL, True)
            t.request(_request_for(client), MODEL, True)
            out = datas(translate_stream(t, stream))
            assert finals[client](out), (upstream, client, out[-1])


def _json(keys: st.SearchStrategy[str], leaves: int) -> st.SearchStrategy[Any]:
    """Any JSON value (finite numbers: what a client or provider can send), objects keyed
    by ``keys``."""
    return st.recursive(
        st.none() | st.booleans() | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
        max_leaves=leaves,
    )  # fmt: skip


_hostile = _json(st.text(max_size=6), leaves=8)
# The fields each client codec reads, at any JSON type: what a buggy or hostile client sends.
_FIELDS = {
    OPENAI_CHAT: ["messages", "max_tokens", "max_completion_tokens", "temperature", "top_p",
                  "stop", "user", "reasoning_effort", "tools", "tool_choice", "stream_options",
                  "parallel_tool_calls", "response_format"],
    OPENAI_RESPONSES: ["input", "instructions", "max_output_tokens", "temperature", "top_p",
                       "reasoning", "tools", "tool_choice", "parallel_tool_calls", "text"],
    GEMINI: ["contents", "systemInstruction", "generationConfig", "tools", "toolConfig"],
    ANTHROPIC: ["messages", "system", "max_tokens", "tools", "tool_choice", "thinking",
                "stop_sequences", "temperature", "metadata"],
}  # fmt: skip


@settings(max_examples=300)
@given(st.sampled_from(list(CODECS)), st.sampled_from(list(CODECS)), st.data())
def test_a_malformed_request_is_translated_or_refused_with_a_400(
    client: str, upstream: str, data: st.DataObject
) -> None:
    if client == upstream:
        return
    doc = json.loads(_request_for(client))
    for name in data.draw(st.lists(st.sampled_from(_FIELDS[client]), max_size=3, unique=True)):
        doc[name] = data.draw(_hostile)
    t = PivotTranslator(client, upstream)
    t.upstream_path("generate", MODEL, False)
    try:
        out = t.request(json.dumps(doc).encode(), MODEL, False)
    except InvalidRequest as err:
        assert err.status == 400 and "does not have the shape" in err.message, err.message
    else:
        assert isinstance(json.loads(out), dict)


# Keys the reply codecs read, so that hostile values land where they look.
_reply_names = st.sampled_from([
    "type", "content", "choices", "message", "candidates", "parts", "output", "usage", "text",
    "role", "tool_calls", "function", "arguments", "id", "name", "input", "stop_reason",
    "finish_reason", "finishReason", "usageMetadata", "delta", "index", "error", "response",
    "item", "content_block", "functionCall", "args",
]) | st.text(max_size=5)  # fmt: skip
_reply_values = _json(_reply_names, leaves=12)
_PAIRS = [(c, u) for c in CODECS for u in CODECS if c != u]


@settings(max_examples=400)
@given(st.sampled_from(_PAIRS), _reply_values, st.sampled_from([200, 400, 529]))
def test_any_upstream_answer_translates_or_is_a_502(
    pair: tuple[str, str], doc: Any, status: int
) -> None:
    t = PivotTranslator(*pair)
    body = json.dumps(doc).encode()
    try:
        out = t.response(body) if status == 200 else t.error(status, body)
    except UpstreamError as err:
        assert status == 200 and err.status == 502 and "not a valid" in err.message
    else:
        assert isinstance(json.loads(out), dict)
        assert status != 200 or isinstance(doc, dict)  # a 200 that is no object is a 502


@settings(max_examples=300)
@given(st.sampled_from(_PAIRS), st.lists(st.tuples(st.none() | _reply_names, _reply_values),
                                          max_size=5))  # fmt: skip
def test_any_upstream_stream_translates_or_ends_with_an_upstream_error(
    pair: tuple[str, str], events: list[tuple[str | None, Any]]
) -> None:
    st_ = PivotTranslator(*pair).stream()
    try:
        for name, data in events:
            assert all(
                isinstance(p, bytes) for p in st_.feed(SSEEvent(name, json.dumps(data).encode()))
            )
    except UpstreamError as err:
        assert "could not be translated" in err.message
    assert all(isinstance(p, bytes) for p in st_.close(False))
