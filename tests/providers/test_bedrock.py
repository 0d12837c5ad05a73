"""BedrockProvider against the Bedrock fake: SigV4 recomputed by the fake with botocore,
Bedrock API keys, body conversion, the binary event stream decoded to Anthropic SSE."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest

from cloud_fakes import (
    AwsIdentity,
    BedrockFake,
    bedrock_chunk,
    bedrock_error,
    bedrock_exception,
)
from tollway.errors import UpstreamError
from tollway.providers.base import ANTHROPIC, AwsKey, KeyChoice, UpstreamRequest
from tollway.providers.bedrock import BedrockProvider
from tollway.providers.betas import BEDROCK_BETAS, BetaPolicy
from tollway.providers.cloud_models import bedrock_id as model_id
from tollway.providers.cloud_models import from_bedrock as anthropic_model
from tollway.sse import SSEParser
from upstream_mock import Reply

IDENT = AwsIdentity("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "FQoGZXIvYXdzE")
SIGV4 = KeyChoice("aws", IDENT.secret_access_key)
BEARER = KeyChoice("api-key", "ABSKQmVkcm9ja0FQSUtleS1leGFtcGxl")
CC_BETAS = "claude-code-20250219,context-1m-2025-08-07,interleaved-thinking-2025-05-14,effort-2025-11-24,prompt-caching-scope-2026-01-05"  # noqa: E501


def _request(stream: bool, body: dict[str, object] | None = None, path: str = "/v1/messages",
             betas: str | None = CC_BETAS) -> UpstreamRequest:  # fmt: skip
    doc = body or {
        "model": "claude-sonnet-4-5-20250929", "max_tokens": 64, "stream": stream,
        "messages": [{"role": "user", "content": "hi"}],
        "output_config": {"effort": "high"}, "metadata": {"user_id": "u"},
    }  # fmt: skip
    headers = [("anthropic-version", "2023-06-01"), ("x-app", "cli")]
    if betas:
        headers.append(("anthropic-beta", betas))
    return UpstreamRequest(
        dialect=ANTHROPIC, method="POST", path=path, query=b"beta=true", headers=headers,
        body=json.dumps(doc).encode(), stream=stream, model="claude-sonnet-4-5-20250929",
    )  # fmt: skip


@pytest.fixture
def fake() -> Iterator[BedrockFake]:
    with BedrockFake("eu-west-1", [IDENT], [BEARER.secret]) as f:
        yield f


@pytest.fixture
async def provider(fake: BedrockFake) -> AsyncIterator[BedrockProvider]:
    p = BedrockProvider(
        "bedrock", region="eu-west-1", base_url=fake.base_url, keys=[SIGV4, BEARER],
        aws={SIGV4: AwsKey(IDENT.access_key_id, IDENT.session_token)},
        policy=BetaPolicy.of(BEDROCK_BETAS), inference_profile="eu",
    )  # fmt: skip
    yield p
    await p.close()


def test_model_ids_both_ways() -> None:
    assert model_id("claude-sonnet-4-5-20250929", {}, None) == (
        "anthropic.claude-sonnet-4-5-20250929-v1:0"
    )
    assert model_id("claude-opus-4-6", {}, "us") == "us.anthropic.claude-opus-4-6-v1"
    assert model_id("claude-haiku-4-5", {"claude-haiku-4-5": "arn:aws:bedrock:x"}, "us") == (
        "arn:aws:bedrock:x"
    )
    assert model_id("global.anthropic.claude-sonnet-4-5-20250929-v1:0", {}, "us") == (
        "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
    )
    assert anthropic_model("us.anthropic.claude-sonnet-4-5-20250929-v1:0") == (
        "claude-sonnet-4-5-20250929"
    )
    assert anthropic_model("anthropic.claude-3-5-sonnet-20241022-v2:0") == (
        "claude-3-5-sonnet-20241022"
    )
    assert anthropic_model("us.anthropic.claude-opus-4-6-v1") == "claude-opus-4-6"


async def test_invoke_signed_with_sigv4(fake: BedrockFake, provider: BedrockProvider) -> None:
    resp = await provider.send(_request(False), SIGV4)
    body = json.loads(await resp.read())
    resp.close()
    assert resp.status == 200 and body["content"][0]["text"] == "Hello from the Bedrock fake."
    (req,) = fake.requests
    assert fake.auth_seen == ["sigv4"]
    assert req.raw_path == "/model/eu.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke"
    sent = req.json()
    assert sent["anthropic_version"] == "bedrock-2023-05-31"
    assert "model" not in sent and "stream" not in sent
    # Betas moved into the body, only those Bedrock takes; the effort field kept with its beta.
    assert sent["anthropic_beta"] == [
        "context-1m-2025-08-07",
        "interleaved-thinking-2025-05-14",
        "effort-2025-11-24",
    ]
    assert sent["output_config"] == {"effort": "high"} and sent["metadata"] == {"user_id": "u"}
    assert req.header("anthropic-beta") is None and req.header("x-api-key") is None
    assert req.header("x-amz-security-token") == IDENT.session_token


async def test_stream_decoded_to_anthropic_sse(
    fake: BedrockFake, provider: BedrockProvider
) -> None:
    resp = await provider.send(_request(True), BEARER)
    assert resp.status == 200
    assert (b"content-type", b"text/event-stream") in resp.headers
    raw = b"".join([c async for c in resp.chunks()])
    resp.close()
    events = SSEParser().feed(raw)
    names = [e.event for e in events]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    text = "".join(json.loads(e.data)["delta"].get("text", "") for e in events
                   if e.event == "content_block_delta")  # fmt: skip
    assert text == "Hello from the Bedrock fake."
    final = json.loads(events[-1].data)
    assert final["amazon-bedrock-invocationMetrics"]["outputTokenCount"] == 12
    assert fake.auth_seen == ["bearer"]
    assert fake.requests[0].raw_path.endswith("/invoke-with-response-stream")
    assert fake.requests[0].header("authorization") == f"Bearer {BEARER.secret}"


async def test_a_wrong_secret_fails_the_recomputed_signature(fake: BedrockFake) -> None:
    wrong = KeyChoice("aws", "not-the-secret")
    p = BedrockProvider(
        "bedrock",
        region="eu-west-1",
        base_url=fake.base_url,
        keys=[wrong],
        aws={wrong: AwsKey(IDENT.access_key_id, IDENT.session_token)},
    )
    try:
        resp = await p.send(_request(False, betas=None), wrong)
        body = json.loads(await resp.read())
        resp.close()
    finally:
        await p.close()
    assert resp.status == 403
    assert body["error"]["type"] == "permission_error"
    assert body["error"]["message"].startswith(
        "provider bedrock (UnrecognizedClientException): The request signature we calculated"
    )


async def test_errors_and_a_mid_stream_exception(
    fake: BedrockFake, provider: BedrockProvider
) -> None:
    fake.script.append(bedrock_error(429, "ThrottlingException", "Too many requests, slow down"))
    resp = await provider.send(_request(True), SIGV4)
    body = json.loads(await resp.read())
    resp.close()
    assert resp.status == 429 and body == {
        "type": "error",
        "error": {
            "type": "rate_limit_error",
            "message": "provider bedrock (ThrottlingException): Too many requests, slow down",
        },
    }
    start = {"type": "message_start", "message": {"id": "m", "usage": {"input_tokens": 3}}}
    fake.script.append(Reply(chunks=[bedrock_chunk(start), bedrock_exception(
        "modelStreamErrorException", "the model stopped")],
        headers=[("Content-Type", "application/vnd.amazon.eventstream")]))  # fmt: skip
    resp = await provider.send(_request(True), SIGV4)
    got: list[bytes] = []
    with pytest.raises(UpstreamError, match=r"stream failed \(modelStreamErrorException\): "
                                            "the model stopped"):  # fmt: skip
        async for chunk in resp.chunks():
            got.append(chunk)
    resp.close()
    assert b"".join(got).startswith(b"event: message_start\ndata: ")


async def test_a_stream_cut_mid_frame_is_an_error(
    fake: BedrockFake, provider: BedrockProvider
) -> None:
    whole = bedrock_chunk({"type": "message_start", "message": {"id": "m"}})
    fake.script.append(
        Reply(
            chunks=[whole, whole[:9]],
            headers=[("Content-Type", "application/vnd.amazon.eventstream")],
        )
    )
    resp = await provider.send(_request(True), SIGV4)
    with pytest.raises(UpstreamError, match="in the middle of a frame"):
        async for _ in resp.chunks():
            pass
    resp.close()


async def test_count_tokens(fake: BedrockFake, provider: BedrockProvider) -> None:
    body = {"model": "claude-sonnet-4-5-20250929", "messages": [{"role": "user", "content": "x"}]}
    resp = await provider.send(_request(False, body, "/v1/messages/count_tokens"), SIGV4)
    assert json.loads(await resp.read()) == {"input_tokens": 42}
    resp.close()
    assert fake.requests[0].raw_path.endswith("%3A0/count-tokens")
