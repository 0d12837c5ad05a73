"""Bedrock's Converse API for non-Claude models: the Bedrock fake's SigV4 check (botocore,
reused from ``cloud_fakes``) in front of a Converse responder; the provider's body
conversion, the ConverseStream frames as Anthropic SSE, and the whole gateway with the
anthropic SDK: a tool call round trip, metered tokens and cost, an error."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import anthropic
import httpx2
import pytest

from cloud_fakes import EVENT_STREAM, AwsIdentity, BedrockFake, _frame, bedrock_error
from inprocess import running
from tollway.accounting.cost import compute_cost
from tollway.accounting.usage import Usage
from tollway.errors import InvalidRequest, UpstreamError
from tollway.providers.base import ANTHROPIC, AwsKey, KeyChoice, UpstreamRequest
from tollway.providers.bedrock import BedrockProvider
from tollway.providers.converse import is_converse
from tollway.sse import SSEParser
from upstream_mock import RecordedRequest, Reply

IDENT = AwsIdentity("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "FQoGZXIvYXdzE")
SIGV4 = KeyChoice("aws", IDENT.secret_access_key)
NOVA = "amazon.nova-pro-v1:0"
LLAMA = "us.meta.llama3-3-70b-instruct-v1:0"
USAGE = {"inputTokens": 31, "outputTokens": 9, "totalTokens": 40}


def converse_event(kind: str, payload: dict[str, Any]) -> bytes:
    return _frame(
        {":event-type": kind, ":content-type": "application/json", ":message-type": "event"},
        json.dumps({**payload, "p": "abcdef"}).encode(),
    )


def text_stream(text: str, usage: dict[str, int]) -> list[bytes]:
    half = len(text) // 2
    return [
        converse_event("messageStart", {"role": "assistant"}),
        converse_event(
            "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": text[:half]}}
        ),
        converse_event(
            "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": text[half:]}}
        ),
        converse_event("contentBlockStop", {"contentBlockIndex": 0}),
        converse_event("messageStop", {"stopReason": "end_turn"}),
        converse_event("metadata", {"usage": usage, "metrics": {"latencyMs": 120}}),
    ]


def tool_stream(tool_id: str, name: str, args: str, usage: dict[str, int]) -> list[bytes]:
    return [
        converse_event("messageStart", {"role": "assistant"}),
        converse_event(
            "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Reading."}}
        ),
        converse_event("contentBlockStop", {"contentBlockIndex": 0}),
        converse_event(
            "contentBlockStart",
            {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": tool_id, "name": name}}},
        ),
        converse_event(
            "contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": args[:5]}}}
        ),
        converse_event(
            "contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": args[5:]}}}
        ),
        converse_event("contentBlockStop", {"contentBlockIndex": 1}),
        converse_event("messageStop", {"stopReason": "tool_use"}),
        converse_event("metadata", {"usage": usage, "metrics": {"latencyMs": 90}}),
    ]


class ConverseFake(BedrockFake):
    """The Bedrock fake's authentication, then ``/converse`` and ``/converse-stream``:
    a body in Converse's shape is required (no Anthropic fields), replies from ``script``
    or a default text answer."""

    def __init__(self, region: str, identities: list[AwsIdentity]) -> None:
        super().__init__(region, identities)
        self.responder = self._converse

    def _converse(self, req: RecordedRequest) -> Reply | None:
        problem = self._verify(req)
        if problem is not None:
            return bedrock_error(403, "UnrecognizedClientException", problem)
        m = re.fullmatch(r"/model/([^/]+)/(converse|converse-stream)", req.raw_path)
        if m is None or req.method != "POST":
            return bedrock_error(404, "UnknownOperationException", f"no route {req.raw_path}")
        if ":" in m[1]:
            return bedrock_error(400, "ValidationException", "model id must be URL-encoded")
        body = req.json()
        extra = sorted(set(body) - {"messages", "system", "inferenceConfig", "toolConfig"})
        if extra or not body.get("messages"):
            return bedrock_error(400, "ValidationException", f"bad Converse body: {extra}")
        if self.script:
            return self.script.pop(0)
        if m[2] == "converse-stream":
            return Reply(
                chunks=text_stream(self.text, USAGE),
                headers=[("Content-Type", EVENT_STREAM)],
                provider_headers=False,
            )
        return Reply(
            json={
                "output": {"message": {"role": "assistant", "content": [{"text": self.text}]}},
                "stopReason": "end_turn",
                "usage": USAGE,
                "metrics": {"latencyMs": 100},
            },
            provider_headers=False,
        )


@pytest.fixture
def fake() -> Iterator[ConverseFake]:
    with ConverseFake("us-west-2", [IDENT]) as f:
        yield f


@pytest.fixture
async def provider(fake: ConverseFake) -> AsyncIterator[BedrockProvider]:
    p = BedrockProvider(
        "bedrock",
        region="us-west-2",
        base_url=fake.base_url,
        keys=[SIGV4],
        aws={SIGV4: AwsKey(IDENT.access_key_id, IDENT.session_token)},
        inference_profile="us",
    )
    yield p
    await p.close()


def _request(
    model: str, stream: bool, doc: dict[str, Any], path: str = "/v1/messages"
) -> UpstreamRequest:
    return UpstreamRequest(
        dialect=ANTHROPIC,
        method="POST",
        path=path,
        query=b"",
        headers=[],
        body=json.dumps(doc).encode(),
        stream=stream,
        model=model,
    )


FULL = {
    "model": NOVA,
    "max_tokens": 300,
    "temperature": 0.2,
    "top_p": 0.9,
    "stop_sequences": ["END"],
    "system": [{"type": "text", "text": "Be brief."}],
    "metadata": {"user_id": "u"},
    "top_k": 5,
    "tools": [
        {
            "name": "read",
            "description": "Read a file",
            "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
        },
        {"type": "web_search_20250305", "name": "web_search"},
    ],
    "tool_choice": {"type": "tool", "name": "read"},
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "read a"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "read", "input": {"path": "a"}}],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "t1",
                    "content": "no such file",
                    "is_error": True,
                }
            ],
        },
    ],
}


def test_which_ids_go_to_converse() -> None:
    assert [
        is_converse(m)
        for m in (
            NOVA,
            LLAMA,
            "mistral.mistral-large-2407-v1:0",
            "arn:aws:bedrock:us-east-1:1:inference-profile/us.meta.llama3-3-70b-instruct-v1:0",
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "claude-sonnet-4-5",
            "anthropic.claude-opus-4-6-v1",
        )
    ] == [True, True, True, True, False, False, False]


async def test_converse_body_signed_and_answer_as_anthropic(
    fake: ConverseFake, provider: BedrockProvider
) -> None:
    resp = await provider.send(_request(NOVA, False, FULL), SIGV4)
    body = json.loads(await resp.read())
    resp.close()
    assert resp.status == 200 and fake.auth_seen == ["sigv4"]
    (req,) = fake.requests
    assert req.raw_path == "/model/amazon.nova-pro-v1%3A0/converse"  # no profile added
    assert req.json() == {
        "system": [{"text": "Be brief."}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"text": "read a"},
                    {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"toolUse": {"toolUseId": "t1", "name": "read", "input": {"path": "a"}}}
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "toolResult": {
                            "toolUseId": "t1",
                            "content": [{"text": "no such file"}],
                            "status": "error",
                        }
                    }
                ],
            },
        ],
        "inferenceConfig": {
            "maxTokens": 300,
            "temperature": 0.2,
            "topP": 0.9,
            "stopSequences": ["END"],
        },
        "toolConfig": {
            "tools": [
                {
                    "toolSpec": {
                        "name": "read",
                        "inputSchema": {"json": FULL["tools"][0]["input_schema"]},
                        "description": "Read a file",
                    }
                }
            ],
            "toolChoice": {"tool": {"name": "read"}},
        },
    }
    assert body["content"] == [{"type": "text", "text": fake.text}]
    assert body["model"] == NOVA and body["stop_reason"] == "end_turn"
    assert body["usage"] == {
        "input_tokens": 31,
        "output_tokens": 9,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0,
    }


async def test_converse_stream_as_anthropic_sse(
    fake: ConverseFake, provider: BedrockProvider
) -> None:
    usage = {
        "inputTokens": 50,
        "outputTokens": 7,
        "cacheReadInputTokens": 20,
        "cacheWriteInputTokens": 4,
    }
    fake.script.append(
        Reply(
            chunks=tool_stream("tooluse_1", "read", '{"path": "a"}', usage),
            headers=[("Content-Type", EVENT_STREAM)],
            provider_headers=False,
        )
    )
    doc = {
        "model": LLAMA,
        "max_tokens": 64,
        "stream": True,
        "messages": [{"role": "user", "content": "read a"}],
    }
    resp = await provider.send(_request(LLAMA, True, doc), SIGV4)
    assert (b"content-type", b"text/event-stream") in resp.headers
    raw = b"".join([c async for c in resp.chunks()])
    resp.close()
    assert fake.requests[0].raw_path == f"/model/{LLAMA.replace(':', '%3A')}/converse-stream"
    events = [(e.event, json.loads(e.data)) for e in SSEParser().feed(raw)]
    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[4][1]["content_block"] == {
        "type": "tool_use",
        "id": "tooluse_1",
        "name": "read",
        "input": {},
    }
    args = "".join(d["delta"].get("partial_json", "") for _, d in events[5:7])
    assert args == '{"path": "a"}'
    assert events[8][1]["delta"]["stop_reason"] == "tool_use"
    assert events[8][1]["usage"] == {
        "input_tokens": 50,
        "output_tokens": 7,
        "cache_read_input_tokens": 20,
        "cache_creation_input_tokens": 4,
    }


async def test_errors_and_a_mid_stream_exception(
    fake: ConverseFake, provider: BedrockProvider
) -> None:
    fake.script.append(bedrock_error(400, "ValidationException", "maxTokens exceeds 5120"))
    resp = await provider.send(_request(NOVA, False, FULL), SIGV4)
    body = json.loads(await resp.read())
    resp.close()
    assert resp.status == 400 and body["error"] == {
        "type": "invalid_request_error",
        "message": "provider bedrock (ValidationException): maxTokens exceeds 5120",
    }
    exception = _frame(
        {
            ":exception-type": "throttlingException",
            ":message-type": "exception",
            ":content-type": "application/json",
        },
        b'{"message": "slow down"}',
    )
    fake.script.append(
        Reply(
            chunks=[text_stream("hi", USAGE)[0], exception],
            headers=[("Content-Type", EVENT_STREAM)],
            provider_headers=False,
        )
    )
    resp = await provider.send(_request(NOVA, True, {**FULL, "stream": True}), SIGV4)
    got: list[bytes] = []
    with pytest.raises(UpstreamError, match=r"\(throttlingException\): slow down"):
        async for chunk in resp.chunks():
            got.append(chunk)
    resp.close()
    assert b"".join(got).startswith(b"event: message_start\n")
    with pytest.raises(InvalidRequest, match="token counting is not available"):
        await provider.send(_request(NOVA, False, FULL, "/v1/messages/count_tokens"), SIGV4)


def _config(fake: ConverseFake) -> str:
    return f"""
providers:
  bedrock:
    base_url: "{fake.base_url}"
    region: us-west-2
    keys: [{{name: iam, value: "{IDENT.secret_access_key}",
             access_key_id: "{IDENT.access_key_id}", session_token: "{IDENT.session_token}"}}]
"""


async def test_anthropic_sdk_tool_round_trip_metered_and_priced(
    tmp_path: Path, fake: ConverseFake
) -> None:
    usage = {"inputTokens": 120, "outputTokens": 15}
    fake.script.append(
        Reply(
            chunks=tool_stream("tooluse_9", "read", '{"path": "a.txt"}', usage),
            headers=[("Content-Type", EVENT_STREAM)],
            provider_headers=False,
        )
    )
    async with running(tmp_path, _config(fake)) as gw:
        key = await gw.key()
        app = gw.client._transport.app  # type: ignore[attr-defined]
        http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://gw")
        client = anthropic.AsyncAnthropic(
            api_key=key, base_url="http://gw", http_client=http, max_retries=0
        )
        tools: Any = [
            {
                "name": "read",
                "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
            }
        ]
        model = f"bedrock/{NOVA}"
        first = [{"role": "user", "content": "read a.txt"}]
        async with client.messages.stream(
            model=model,
            max_tokens=100,
            messages=first,  # type: ignore[arg-type]
            tools=tools,
        ) as stream:
            message = await stream.get_final_message()
        assert message.stop_reason == "tool_use"
        use = message.content[1]
        assert use.type == "tool_use" and use.input == {"path": "a.txt"} and use.id == "tooluse_9"
        second: Any = [
            *first,
            {"role": "assistant", "content": message.content},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "hello"}],
            },
        ]
        reply = await client.messages.create(
            model=model, max_tokens=100, messages=second, tools=tools
        )
        assert reply.content[0].type == "text" and reply.content[0].text == fake.text
        sent = fake.requests[1].json()["messages"]
        assert sent[1]["content"][1] == {
            "toolUse": {"toolUseId": "tooluse_9", "name": "read", "input": {"path": "a.txt"}}
        }
        assert sent[2]["content"] == [
            {"toolResult": {"toolUseId": "tooluse_9", "content": [{"text": "hello"}]}}
        ]
        fake.script.append(bedrock_error(400, "ValidationException", "maxTokens exceeds 5120"))
        with pytest.raises(anthropic.BadRequestError) as failed:
            await client.messages.create(model=model, max_tokens=10, messages=first)  # type: ignore[arg-type]
        assert "provider bedrock (ValidationException): maxTokens exceeds 5120" in str(failed.value)
        await gw.services.writer.flush()
        rows = list(await gw.services.store.query("SELECT * FROM requests ORDER BY started_at"))
        assert [(r["provider"], r["served_model"], r["status"]) for r in rows] == [
            ("bedrock", NOVA, 200),
            ("bedrock", NOVA, 200),
            ("bedrock", NOVA, 400),
        ]
        assert [(r["input_tokens"], r["output_tokens"]) for r in rows[:2]] == [(120, 15), (31, 9)]
        price = gw.services.prices.resolve(NOVA, "bedrock")
        assert price is not None
        expected = compute_cost(Usage(input_tokens=120, output_tokens=15), price).total
        assert rows[0]["cost_total_pico"] == int(expected * 10**12) == 144_000_000
        assert unquote(fake.requests[0].raw_path) == f"/model/{NOVA}/converse-stream"


async def test_an_openai_chat_client_reaches_a_converse_model(
    tmp_path: Path, fake: ConverseFake
) -> None:
    async with running(tmp_path, _config(fake)) as gw:
        key = await gw.key()
        r = await gw.client.post(
            "/v1/chat/completions",
            headers={"authorization": f"Bearer {key}"},
            json={
                "model": f"bedrock/{LLAMA}",
                "max_tokens": 50,
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "hi"},
                ],
            },
        )
        assert r.status_code == 200
        body = r.json()
        assert body["choices"][0]["message"]["content"] == fake.text
        assert body["choices"][0]["finish_reason"] == "stop"
        assert (body["usage"]["prompt_tokens"], body["usage"]["completion_tokens"]) == (31, 9)
        sent = fake.requests[0].json()
        assert sent["system"] == [{"text": "Be brief."}]
        assert sent["messages"] == [{"role": "user", "content": [{"text": "hi"}]}]
        assert sent["inferenceConfig"] == {"maxTokens": 50}
