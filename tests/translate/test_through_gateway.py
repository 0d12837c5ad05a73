"""Translated exchanges through the whole gateway (in-process) to loopback fakes: the
upstream gets its own dialect, the client its own, usage is metered on the upstream's
bytes and priced for the model that served, and errors keep the upstream's words."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from wire import datas

from inprocess import Running, running
from tollway.accounting.cost import compute_cost
from tollway.accounting.usage import Usage
from upstream_mock import (
    DEFAULT_TEXT,
    MockUpstream,
    Reply,
    anthropic_error,
    anthropic_events,
    chat_events,
    chat_tool_events,
    gemini_error,
    openai_error,
    text_block,
    tool_use_block,
)

TOO_LONG = "prompt is too long: 250000 tokens > 200000 maximum"
OPENAI_TOO_LONG = "This model's maximum context length is 128000 tokens."


@pytest.fixture
def mock() -> AsyncIterator[MockUpstream]:
    with MockUpstream() as upstream:
        yield upstream


def _config(mock: MockUpstream) -> str:
    return f"""
providers:
  openai: {{base_url: "{mock.base_url}/v1", keys: [{{name: main, value: sk-openai}}]}}
  anthropic: {{base_url: "{mock.base_url}", keys: [{{name: main, value: sk-ant}}]}}
  gemini: {{base_url: "{mock.base_url}", keys: [{{name: main, value: gm-key}}]}}
"""


async def _rows(gw: Running) -> list[dict[str, Any]]:
    await gw.services.writer.flush()
    return list(await gw.services.store.query("SELECT * FROM requests ORDER BY started_at"))


def _messages(model: str, stream: bool) -> dict[str, Any]:
    return {"model": model, "max_tokens": 200, "stream": stream,
            "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip


async def test_anthropic_client_on_an_openai_upstream_is_metered_as_openai(
    tmp_path: Path, mock: MockUpstream
) -> None:
    async with running(tmp_path, _config(mock)) as gw:
        key = await gw.key()
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01",
                   "anthropic-beta": "context-1m-2025-08-07"}  # fmt: skip
        r = await gw.client.post("/v1/messages?beta=true", headers=headers,
                                 json=_messages("openai/gpt-4o-mini", True))  # fmt: skip
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
        events = datas(r.content)
        assert [e["type"] for e in events][-3:] == ["content_block_stop", "message_delta",
                                                    "message_stop"]  # fmt: skip
        text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
        assert text == DEFAULT_TEXT
        assert events[-2]["usage"]["input_tokens"] == 17
        sent = mock.requests[-1]
        assert sent.raw_path == "/v1/chat/completions"  # no ?beta=true: that was Anthropic's
        assert sent.header("authorization") == "Bearer sk-openai"
        assert sent.header("anthropic-beta") is None and sent.header("anthropic-version") is None
        assert sent.json()["stream_options"] == {"include_usage": True}
        row = (await _rows(gw))[-1]
        assert (row["provider"], row["served_model"], row["status"]) == ("openai", "gpt-4o-mini",
                                                                          200)  # fmt: skip
        assert (row["input_tokens"], row["output_tokens"], row["partial"]) == (17, 6, 0)
        assert row["translation"] == "anthropic>openai_chat"
        price = gw.services.prices.resolve("gpt-4o-mini", "openai")
        expected = compute_cost(Usage(input_tokens=17, output_tokens=6), price).total
        assert row["cost_total_pico"] == int(expected * 10**12) and expected > 0


async def test_openai_sdk_on_claude_streams_tool_calls_and_usage(
    tmp_path: Path, mock: MockUpstream
) -> None:
    blocks = [text_block("Let me look."), tool_use_block("read", {"path": "a"}, "toolu_1"),
              tool_use_block("read", {"path": "b"}, "toolu_2")]  # fmt: skip
    mock.enqueue(Reply(events=anthropic_events(blocks, model="claude-sonnet-4-5")))
    async with running(tmp_path, _config(mock)) as gw:
        key = await gw.key()
        http = httpx.AsyncClient(transport=gw.client._transport, base_url="http://gw/v1")
        client = openai.AsyncOpenAI(api_key=key, base_url="http://gw/v1", http_client=http)
        tool = {"type": "function", "function": {"name": "read", "parameters": {
            "type": "object", "properties": {"path": {"type": "string"}}}}}  # fmt: skip
        stream = await client.chat.completions.create(
            model="claude-sonnet-4-5", messages=[{"role": "user", "content": "read a and b"}],
            tools=[tool], tool_choice={"type": "function", "function": {"name": "read"}},
            stream=True, stream_options={"include_usage": True},
        )  # fmt: skip
        text, calls, usage, finish = "", {}, None, None
        async for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                text += choice.delta.content or ""
                finish = choice.finish_reason or finish
                for call in choice.delta.tool_calls or []:
                    entry = calls.setdefault(call.index, {"id": call.id, "args": ""})
                    entry["args"] += call.function.arguments or "" if call.function else ""
        assert text == "Let me look." and finish == "tool_calls"
        assert calls == {0: {"id": "toolu_1", "args": '{"path": "a"}'},
                         1: {"id": "toolu_2", "args": '{"path": "b"}'}}  # fmt: skip
        assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (21, 9)
        sent = mock.requests[-1].json()
        assert mock.requests[-1].path == "/v1/messages"
        assert mock.requests[-1].header("anthropic-version") == "2023-06-01"
        assert sent["tool_choice"] == {"type": "tool", "name": "read"}
        row = (await _rows(gw))[-1]
        assert row["translation"] == "openai_chat>anthropic"
        assert sent["tools"][0]["name"] == "read"
        await http.aclose()


@pytest.mark.parametrize(
    ("path", "body", "reply", "want"),
    [
        ("/v1/messages", _messages("openai/gpt-4o", False),
         openai_error(400, "invalid_request_error", OPENAI_TOO_LONG, "context_length_exceeded"),
         {"type": "error", "error": {"type": "invalid_request_error",
                                     "message": f"prompt is too long: {OPENAI_TOO_LONG}"}}),
        ("/v1/chat/completions", {"model": "claude-sonnet-4-5",
                                  "messages": [{"role": "user", "content": "hi"}]},
         anthropic_error(400, "invalid_request_error", TOO_LONG),
         {"error": {"message": TOO_LONG, "type": "invalid_request_error", "param": None,
                    "code": "context_length_exceeded"}}),
        ("/v1beta/models/claude-sonnet-4-5:generateContent",
         {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
         anthropic_error(429, "rate_limit_error", "Number of request tokens has exceeded"),
         {"error": {"code": 429, "message": "Number of request tokens has exceeded",
                    "status": "RESOURCE_EXHAUSTED"}}),
        ("/v1/messages", _messages("gemini-2.5-flash", False),
         gemini_error(400, "The input token count (2000000) exceeds the maximum number of "
                           "tokens allowed (1048576)."),
         {"type": "error", "error": {"type": "invalid_request_error", "message":
          "prompt is too long: The input token count (2000000) exceeds the maximum number "
          "of tokens allowed (1048576)."}}),
    ],
    ids=["openai-to-anthropic-client", "anthropic-to-chat-client", "anthropic-to-gemini-client",
         "gemini-to-anthropic-client"],
)  # fmt: skip
async def test_upstream_errors_reach_the_client_in_its_dialect_with_their_words(
    tmp_path: Path, mock: MockUpstream, path: str, body: dict[str, Any], reply: Reply,
    want: dict[str, Any],
) -> None:  # fmt: skip
    mock.enqueue(reply)
    async with running(tmp_path, _config(mock)) as gw:
        key = await gw.key()
        headers = {"x-api-key": key, "authorization": f"Bearer {key}", "x-goog-api-key": key}
        r = await gw.client.post(path, headers=headers, json=body)
        assert r.status_code == reply.status
        assert r.json() == want
        assert r.headers["content-length"] == str(len(r.content))


async def test_a_cut_translated_stream_ends_with_the_clients_error_event(
    tmp_path: Path, mock: MockUpstream
) -> None:
    mock.enqueue(Reply(events=chat_events("one two three four five"), cut_after=3))
    async with running(tmp_path, _config(mock)) as gw:
        key = await gw.key()
        r = await gw.client.post("/v1/messages", headers={"x-api-key": key},
                                 json=_messages("openai/gpt-4o", True))  # fmt: skip
        events = datas(r.content)
        assert events[-1]["type"] == "error" and "message_stop" not in [e["type"] for e in events]
        broke = "the upstream stream broke: the connection closed before the body ended"
        assert events[-1]["error"]["message"] == broke
        text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
        assert text == "one two"
        row = (await _rows(gw))[-1]
        assert (row["status"], row["partial"], row["error_type"]) == (
            200,
            1,
            "upstream_stream_error",
        )


async def test_groq_shaped_upstream_serves_a_tool_call_to_an_anthropic_client(
    tmp_path: Path, mock: MockUpstream
) -> None:
    events = chat_tool_events([("call_g1", "Bash", {"command": "ls"})],
                              model="llama-3.3-70b-versatile", groq=True)  # fmt: skip
    mock.enqueue(Reply(events=events))
    config = (
        _config(mock)
        + f"""  groq:
    type: openai
    base_url: "{mock.base_url}/openai/v1"
    keys: [{{name: main, value: gsk-groq}}]
"""
    )
    async with running(tmp_path, config) as gw:
        key = await gw.key()
        body = {**_messages("groq/llama-3.3-70b-versatile", True),
                "tools": [{"name": "Bash", "input_schema": {"type": "object"}}]}  # fmt: skip
        r = await gw.client.post("/v1/messages", headers={"x-api-key": key}, json=body)
        from tollway.translate.anthropic import collect

        message = collect(datas(r.content))
        assert message["content"] == [{"type": "tool_use", "id": "call_g1", "name": "Bash",
                                       "input": {"command": "ls"}}]  # fmt: skip
        assert message["stop_reason"] == "tool_use"
        assert mock.requests[-1].raw_path == "/openai/v1/chat/completions"
        row = (await _rows(gw))[-1]
        assert (row["provider"], row["served_model"]) == ("groq", "llama-3.3-70b-versatile")
        assert row["translation"] == "anthropic>openai_chat"
        assert (row["input_tokens"], row["output_tokens"]) == (17, 6)


async def test_gemini_client_passes_through_to_a_gemini_upstream_byte_for_byte(
    tmp_path: Path, mock: MockUpstream
) -> None:
    body = json.dumps({"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                       "generationConfig": {"temperature": 1}}).encode()  # fmt: skip
    async with running(tmp_path, _config(mock)) as gw:
        key = await gw.key()
        r = await gw.client.post(
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", content=body,
            headers={"x-goog-api-key": key, "content-type": "application/json"},
        )  # fmt: skip
        assert r.status_code == 200
        chunks = datas(r.content)
        text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
        assert text == DEFAULT_TEXT
        sent = mock.requests[-1]
        assert sent.raw_path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        assert sent.body == body and sent.header("x-goog-api-key") == "gm-key"
        row = (await _rows(gw))[-1]
        assert (row["provider"], row["surface"], row["input_tokens"], row["output_tokens"]) == (
            "gemini", "gemini", 31, 7)  # fmt: skip
        assert row["translation"] is None
        r = await gw.client.post("/v1beta/models/gemini-2.5-flash:countTokens", content=body,
                                 headers={"x-goog-api-key": key})  # fmt: skip
        assert r.status_code == 200 and r.json()["totalTokens"] > 0


async def test_model_lists_and_lookups_in_each_dialect(tmp_path: Path, mock: MockUpstream) -> None:
    config = _config(mock).replace("value: gm-key}]", "value: gm-key}], models: [gemini-2.5-flash]")
    async with running(tmp_path, config) as gw:
        key = await gw.key()
        r = await gw.client.get("/v1beta/models", headers={"x-goog-api-key": key})
        assert r.status_code == 200
        names = [m["name"] for m in r.json()["models"]]
        assert "models/gemini-2.5-flash" in names
        r = await gw.client.get("/v1beta/models/gemini-2.5-flash", headers={"x-goog-api-key": key})
        assert r.json()["name"] == "models/gemini-2.5-flash"
        assert r.json()["supportedGenerationMethods"] == ["generateContent", "countTokens"]
        r = await gw.client.get("/v1beta/models/nope-1", headers={"x-goog-api-key": key})
        assert r.status_code == 404 and r.json()["error"]["status"] == "NOT_FOUND"
        r = await gw.client.get(
            "/v1/models/gemini-2.5-flash",
            headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        )
        assert r.json() == {"type": "model", "id": "gemini-2.5-flash",
                            "display_name": "gemini-2.5-flash",
                            "created_at": "2025-01-01T00:00:00Z"}  # fmt: skip
        r = await gw.client.get("/openai/v1/models/gemini-2.5-flash",
                                headers={"authorization": f"Bearer {key}"})  # fmt: skip
        assert r.json() == {"id": "gemini-2.5-flash", "object": "model", "created": 0,
                            "owned_by": "tollway"}  # fmt: skip
        r = await gw.client.get("/v1/models/nope-1", headers={"authorization": f"Bearer {key}"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
        r = await gw.client.get("/v1beta/models")
        assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED"


async def test_count_tokens_on_a_chat_upstream_says_why_not(
    tmp_path: Path, mock: MockUpstream
) -> None:
    async with running(tmp_path, _config(mock)) as gw:
        key = await gw.key()
        r = await gw.client.post("/v1/messages/count_tokens", headers={"x-api-key": key},
                                 json={"model": "openai/gpt-4o", "messages": []})  # fmt: skip
        assert r.status_code == 400
        assert "no token-count endpoint" in r.json()["error"]["message"]
        assert mock.requests == []
        r = await gw.client.post(
            "/v1beta/models/claude-sonnet-4-5:countTokens",
            headers={"x-goog-api-key": key},
            json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        )
        assert r.status_code == 200 and r.json()["totalTokens"] > 0
        assert mock.requests[-1].path == "/v1/messages/count_tokens"
        assert "max_tokens" not in mock.requests[-1].json()


async def test_a_malformed_chat_request_for_claude_gets_a_400_in_its_dialect(
    tmp_path: Path, mock: MockUpstream
) -> None:
    body = {"model": "claude-sonnet-4-5", "max_tokens": 200, "reasoning_effort": {"x": 1},
            "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    async with running(tmp_path, _config(mock)) as gw:
        key = await gw.key()
        r = await gw.client.post("/v1/chat/completions", json=body,
                                 headers={"authorization": f"Bearer {key}"})  # fmt: skip
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert (
            "does not have the shape the OpenAI Chat Completions API gives it" in error["message"]
        )
        assert mock.requests == []  # nothing reached the provider
        rows = await _rows(gw)
        assert [(row["status"], row["error_type"]) for row in rows] == [
            (400, "invalid_request_error")
        ]


async def test_an_openai_answer_of_the_wrong_shape_reaches_a_claude_client_as_a_502(
    tmp_path: Path, mock: MockUpstream
) -> None:
    usage = {"prompt_tokens": 17, "completion_tokens": 3, "total_tokens": 20}
    mock.enqueue(Reply(json={"id": "x", "choices": 5, "usage": usage}))
    async with running(tmp_path, _config(mock)) as gw:
        key = await gw.key()
        r = await gw.client.post("/v1/messages", headers={"x-api-key": key},
                                 json=_messages("openai/gpt-4o-mini", False))  # fmt: skip
        assert r.status_code == 502, r.text
        assert r.json()["type"] == "error" and r.json()["error"]["type"] == "api_error"
        assert "not a valid OpenAI Chat Completions response" in r.json()["error"]["message"]
        (row,) = await _rows(gw)
        assert (row["status"], row["input_tokens"], row["output_tokens"]) == (502, 17, 3)


@pytest.mark.parametrize("body", [b"<html>upstream proxy says hello</html>", b"[1, 2]", b""])
async def test_a_200_that_is_no_answer_reaches_a_claude_client_as_a_502(
    tmp_path: Path, mock: MockUpstream, body: bytes
) -> None:
    mock.enqueue(Reply(body=body))
    async with running(tmp_path, _config(mock)) as gw:
        key = await gw.key()
        r = await gw.client.post("/v1/messages", headers={"x-api-key": key},
                                 json=_messages("openai/gpt-4o-mini", False))  # fmt: skip
        assert r.status_code == 502, r.text
        error = r.json()["error"]
        assert r.json()["type"] == "error" and error["type"] == "api_error"
        assert error["message"].startswith(
            "the provider answered 200 with a body that is not a valid OpenAI Chat Completions "
            "response (not a JSON object)"
        )
        (row,) = await _rows(gw)
        assert row["status"] == 502
