"""The mock upstream speaks the real wire formats: the real SDKs, pointed straight at it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from upstream_mock import (
    ANTHROPIC_USAGE,
    DEFAULT_TEXT,
    OPENAI_USAGE,
    RESPONSES_USAGE,
    SSE,
    MockUpstream,
    RecordedRequest,
    Reply,
    SentRequests,
    anthropic_error,
    anthropic_events,
    chat_events,
    text_block,
    thinking_block,
    tool_use_block,
)


@pytest.fixture
def recorder() -> SentRequests:
    return SentRequests()


@pytest.fixture
def claude(mock_upstream: MockUpstream, recorder: SentRequests) -> Iterator[anthropic.Anthropic]:
    http_client = anthropic.DefaultHttpxClient(event_hooks={"request": [recorder]}, timeout=10)
    client = anthropic.Anthropic(
        api_key="sk-ant-direct", base_url=mock_upstream.base_url, http_client=http_client,
        max_retries=0,
    )  # fmt: skip
    with client:
        yield client


@pytest.fixture
def oai(mock_upstream: MockUpstream, recorder: SentRequests) -> Iterator[openai.OpenAI]:
    http_client = openai.DefaultHttpxClient(event_hooks={"request": [recorder]}, timeout=10)
    client = openai.OpenAI(
        api_key="sk-openai-direct", base_url=mock_upstream.base_url + "/v1",
        http_client=http_client, max_retries=0,
    )  # fmt: skip
    with client:
        yield client


def test_anthropic_message(
    claude: anthropic.Anthropic, mock_upstream: MockUpstream, recorder: SentRequests
) -> None:
    raw = claude.messages.with_raw_response.create(
        model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    )
    message = raw.parse()
    assert message.content[0].type == "text" and message.content[0].text == DEFAULT_TEXT
    assert message.usage.input_tokens == ANTHROPIC_USAGE["input_tokens"]
    assert message.usage.output_tokens == ANTHROPIC_USAGE["output_tokens"]
    assert message.model == "claude-sonnet-4-5"
    (req,) = mock_upstream.requests
    assert (req.method, req.path, req.query_string) == ("POST", "/v1/messages", "")
    assert req.body == recorder.bodies[0]
    # anthropic 2.x sends its api_key as a Bearer token (older SDKs: x-api-key)
    assert "sk-ant-direct" in (req.header("x-api-key"), (req.header("authorization") or "")[7:])
    assert raw.headers["request-id"] == req.reply_header("request-id")
    assert raw.headers["anthropic-ratelimit-requests-remaining"] == "3999"


def test_anthropic_stream_text(
    claude: anthropic.Anthropic, mock_upstream: MockUpstream, recorder: SentRequests
) -> None:
    with claude.messages.stream(
        model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
        request_id = stream.response.headers["request-id"]
    assert "".join(texts) == DEFAULT_TEXT and len(texts) > 1
    assert final.usage.output_tokens == ANTHROPIC_USAGE["output_tokens"]
    assert final.stop_reason == "end_turn"
    (req,) = mock_upstream.requests
    assert req.stream and req.completed and not req.disconnected
    assert req.body == recorder.bodies[0]
    assert request_id == req.reply_header("request-id")
    assert req.reply_header("content-type") == "text/event-stream; charset=utf-8"


def test_anthropic_stream_thinking_and_tool_use(
    claude: anthropic.Anthropic, mock_upstream: MockUpstream
) -> None:
    blocks = [
        thinking_block("The user wants echo hi. Use Bash.", "EqMOCKSIGNATURE0123456789abcdef=="),
        text_block("I'll run it."),
        tool_use_block("Bash", {"command": "echo hi", "description": "Print hi"}, "toolu_x1"),
    ]
    mock_upstream.enqueue(Reply(events=anthropic_events(blocks)))
    with claude.messages.stream(
        model="claude-opus-4-8", max_tokens=64, messages=[{"role": "user", "content": "run"}]
    ) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text", "tool_use"]
    assert final.content[0].signature == "EqMOCKSIGNATURE0123456789abcdef=="  # type: ignore[union-attr]
    assert final.content[2].input == {"command": "echo hi", "description": "Print hi"}  # type: ignore[union-attr]
    assert final.stop_reason == "tool_use"


def test_anthropic_event_sequence_matches_the_captures(mock_upstream: MockUpstream) -> None:
    with httpx.Client(timeout=10) as client:
        resp = client.post(
            mock_upstream.base_url + "/v1/messages?beta=true",
            json={"model": "m", "stream": True, "messages": []},
        )
    names = [line[7:] for line in resp.text.splitlines() if line.startswith("event: ")]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[3:-3]) == {"content_block_delta"}
    assert mock_upstream.requests[0].query_string == "beta=true"


def test_count_tokens(claude: anthropic.Anthropic, mock_upstream: MockUpstream) -> None:
    count = claude.messages.count_tokens(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}]
    )
    assert count.input_tokens >= 1
    assert mock_upstream.requests[0].path == "/v1/messages/count_tokens"


def test_anthropic_error_reply(claude: anthropic.Anthropic, mock_upstream: MockUpstream) -> None:
    reply = anthropic_error(429, "rate_limit_error", "slow down")
    reply.headers = [("retry-after", "3")]
    mock_upstream.enqueue(reply)
    with pytest.raises(anthropic.RateLimitError) as info:
        claude.messages.create(model="m", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert info.value.body == {"type": "error", "error": {"type": "rate_limit_error",
                                                          "message": "slow down"}}  # fmt: skip
    assert info.value.response.headers["retry-after"] == "3"


def test_openai_chat(
    oai: openai.OpenAI, mock_upstream: MockUpstream, recorder: SentRequests
) -> None:
    raw = oai.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == DEFAULT_TEXT
    assert completion.usage is not None
    assert completion.usage.total_tokens == OPENAI_USAGE["total_tokens"]
    (req,) = mock_upstream.requests
    assert req.path == "/v1/chat/completions"
    assert req.header("authorization") == "Bearer sk-openai-direct"
    assert req.body == recorder.bodies[0]
    assert raw.headers["x-request-id"] == req.reply_header("x-request-id")


@pytest.mark.parametrize("include_usage", [True, False])
def test_openai_chat_stream(
    oai: openai.OpenAI, mock_upstream: MockUpstream, include_usage: bool
) -> None:
    options = {"include_usage": True} if include_usage else openai.omit
    stream = oai.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options=options,
    )  # fmt: skip
    with stream:
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == DEFAULT_TEXT
    usage = [c.usage for c in chunks if c.usage is not None]
    if include_usage:
        assert [u.total_tokens for u in usage] == [OPENAI_USAGE["total_tokens"]]
    else:
        assert usage == []
    assert mock_upstream.requests[0].completed


def test_openai_responses(oai: openai.OpenAI, mock_upstream: MockUpstream) -> None:
    response = oai.responses.create(model="gpt-4o", input="hi")
    assert response.output_text == DEFAULT_TEXT
    assert response.usage is not None
    assert response.usage.total_tokens == RESPONSES_USAGE["total_tokens"]
    assert mock_upstream.requests[0].path == "/v1/responses"


def test_openai_responses_stream(oai: openai.OpenAI) -> None:
    stream = oai.responses.create(model="gpt-4o", input="hi", stream=True)
    with stream:
        events = list(stream)
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == DEFAULT_TEXT
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == DEFAULT_TEXT
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_records_headers_in_wire_order_and_raw_query(mock_upstream: MockUpstream) -> None:
    headers = [("X-First", "1"), ("x-second", "2"), ("X-First", "3")]
    with httpx.Client(timeout=10) as client:
        client.post(
            mock_upstream.base_url + "/v1/messages?beta=true&x=%2F",
            content=b'{"model":"m",  "messages":[]}',
            headers=headers,
        )
    (req,) = mock_upstream.requests
    assert req.raw_path == "/v1/messages?beta=true&x=%2F"
    assert req.query_string == "beta=true&x=%2F"
    sent = [(k, v) for k, v in req.headers if k.lower().startswith("x-")]
    assert sent == headers
    assert req.header_all("x-first") == ["1", "3"]
    assert req.body == b'{"model":"m",  "messages":[]}'


def test_queue_when_and_responder(mock_upstream: MockUpstream) -> None:
    def wants_tool_result(req: RecordedRequest) -> bool:
        return b"tool_result" in req.body

    mock_upstream.enqueue(Reply(json={"n": "second"}, when=wants_tool_result))
    mock_upstream.enqueue(Reply(json={"n": "first"}))
    mock_upstream.responder = lambda req: Reply(status=418, json={"n": "responder"})
    url = mock_upstream.base_url + "/v1/messages"
    with httpx.Client(timeout=10) as client:
        first = client.post(url, json={"messages": []}).json()
        second = client.post(url, json={"messages": [{"type": "tool_result"}]}).json()
        third = client.post(url, json={})
    assert (first, second) == ({"n": "first"}, {"n": "second"})
    assert (third.status_code, third.json()) == (418, {"n": "responder"})
    assert mock_upstream.pending == 0


def test_cut_after_drops_the_connection(mock_upstream: MockUpstream) -> None:
    mock_upstream.enqueue(Reply(events=anthropic_events(), cut_after=3))
    seen: list[str] = []
    with httpx.Client(timeout=10) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            with client.stream(
                "POST", mock_upstream.base_url + "/v1/messages", json={"stream": True}
            ) as resp:
                for line in resp.iter_lines():
                    if line.startswith("event: "):
                        seen.append(line[7:])
    assert seen == ["message_start", "content_block_start", "ping"]
    (req,) = mock_upstream.requests
    assert req.cut and req.events_sent == 3
    assert not req.disconnected and not req.completed


def test_detects_client_disconnect(mock_upstream: MockUpstream) -> None:
    mock_upstream.enqueue(Reply(events=anthropic_events("word " * 200), event_delay=0.05))
    with httpx.Client(timeout=10) as client:
        with client.stream(
            "POST", mock_upstream.base_url + "/v1/messages", json={"stream": True}
        ) as resp:
            events = 0
            for line in resp.iter_lines():
                events += line.startswith("event: ")
                if events == 2:
                    break
    req = mock_upstream.wait_disconnect(5)
    assert req is not None and req.disconnected and not req.completed
    assert req.events_sent < 100


def test_detects_disconnect_while_holding_open(mock_upstream: MockUpstream) -> None:
    mock_upstream.enqueue(Reply(events=chat_events(include_usage=False)[:2], hold_open=30))
    with httpx.Client(timeout=10) as client:
        with client.stream("POST", mock_upstream.base_url + "/v1/chat/completions") as resp:
            first = next(resp.iter_lines())
    assert json.loads(first.removeprefix("data: "))["object"] == "chat.completion.chunk"
    assert mock_upstream.wait_disconnect(5) is not None


async def test_usable_from_async_tests(mock_upstream: MockUpstream) -> None:
    mock_upstream.enqueue(Reply(events=[SSE({"a": 1}, delay=0.01), SSE("[DONE]")]))
    async with httpx.AsyncClient(timeout=10) as client:
        resp = await client.post(mock_upstream.base_url + "/v1/chat/completions")
    assert resp.text == 'data: {"a":1}\n\ndata: [DONE]\n\n'
    assert await mock_upstream.wait_disconnect_async(0.05) is None


def test_wait_for_requests_from_another_thread(mock_upstream: MockUpstream) -> None:
    def later() -> None:
        with httpx.Client(timeout=10) as client:
            client.head(mock_upstream.base_url + "/")

    thread = threading.Thread(target=later)
    thread.start()
    (req,) = mock_upstream.wait_for_requests(1, timeout=5)
    thread.join(5)
    assert (req.method, req.path, req.reply_status) == ("HEAD", "/", 200)
