"""VertexProvider against the Vertex fake: a service account exchanged for a token at its
token_uri (the fake checks the JWT's signature), the bearer checked, bodies converted."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest

from cloud_fakes import VertexFake, google_error
from tollway.errors import UpstreamError
from tollway.providers.base import ANTHROPIC, KeyChoice, UpstreamRequest
from tollway.providers.betas import VERTEX_BETAS, BetaPolicy
from tollway.providers.cloud_models import from_vertex as anthropic_model
from tollway.providers.cloud_models import vertex_id as model_id
from tollway.providers.vertex import VertexProvider
from tollway.sse import SSEParser

BETAS = "claude-code-20250219,interleaved-thinking-2025-05-14,effort-2025-11-24,oauth-2025-04-20"


def _request(
    stream: bool, path: str = "/v1/messages", beta_in_body: bool = False
) -> UpstreamRequest:  # noqa: E501
    doc: dict[str, object] = {
        "model": "claude-sonnet-4-5-20250929", "max_tokens": 64, "stream": stream,
        "messages": [{"role": "user", "content": "hi"}], "output_config": {"effort": "low"},
    }  # fmt: skip
    if beta_in_body:
        doc["anthropic_beta"] = ["context-1m-2025-08-07", "tool-examples-2025-10-29"]
    headers = [("anthropic-version", "2023-06-01"), ("anthropic-beta", BETAS)]
    return UpstreamRequest(
        dialect=ANTHROPIC, method="POST", path=path, query=b"", headers=headers,
        body=json.dumps(doc).encode(), stream=stream, model="claude-sonnet-4-5-20250929",
    )  # fmt: skip


@pytest.fixture
def fake() -> Iterator[VertexFake]:
    with VertexFake("proj-1", "us-east5") as f:
        yield f


@pytest.fixture
async def provider(fake: VertexFake) -> AsyncIterator[VertexProvider]:
    key = KeyChoice("sa", json.dumps(fake.service_account().info))
    p = VertexProvider(
        "vertex",
        project="proj-1",
        region="us-east5",
        keys=[key],
        base_url=fake.base_url,
        policy=BetaPolicy.of(VERTEX_BETAS),
    )
    yield p
    await p.close()


def test_model_names_both_ways() -> None:
    assert model_id("claude-sonnet-4-5-20250929", {}) == "claude-sonnet-4-5@20250929"
    assert model_id("claude-opus-4-6", {}) == "claude-opus-4-6"
    assert model_id("claude-haiku-4-5@20251001", {}) == "claude-haiku-4-5@20251001"
    assert model_id("x", {"x": "claude-3-5-sonnet-v2@20241022"}) == "claude-3-5-sonnet-v2@20241022"
    assert anthropic_model("claude-sonnet-4-5@20250929") == "claude-sonnet-4-5-20250929"


async def test_service_account_token_then_raw_predict(
    fake: VertexFake, provider: VertexProvider
) -> None:
    for _ in range(2):
        resp = await provider.send(_request(False), provider.keys[0])
        body = json.loads(await resp.read())
        resp.close()
        assert resp.status == 200 and body["content"][0]["text"] == "Hello from the Vertex fake."
    assert fake.token_requests == 1  # the token is cached until it expires
    calls = [r for r in fake.requests if r.path != "/token"]
    assert calls[0].path == (
        "/v1/projects/proj-1/locations/us-east5/publishers/anthropic/models/"
        "claude-sonnet-4-5@20250929:rawPredict"
    )
    assert calls[0].header("authorization") == "Bearer ya29.fake-1"
    sent = calls[0].json()
    assert sent["anthropic_version"] == "vertex-2023-10-16" and "model" not in sent
    assert "output_config" not in sent  # effort is not accepted on Vertex: dropped with it
    assert calls[0].header("anthropic-beta") == (
        "claude-code-20250219,interleaved-thinking-2025-05-14"
    )


async def test_stream_and_body_betas_lifted(fake: VertexFake, provider: VertexProvider) -> None:
    resp = await provider.send(_request(True, beta_in_body=True), provider.keys[0])
    raw = b"".join([c async for c in resp.chunks()])
    resp.close()
    events = SSEParser().feed(raw)
    assert events[0].event == "message_start" and events[-1].event == "message_stop"
    call = fake.requests[-1]
    assert call.path.endswith(":streamRawPredict") and call.json()["stream"] is True
    assert "anthropic_beta" not in call.json()
    assert call.header("anthropic-beta") == (
        "claude-code-20250219,interleaved-thinking-2025-05-14,context-1m-2025-08-07"
    )


async def test_access_token_key_and_google_errors(fake: VertexFake) -> None:
    fake.static_tokens.add("ya29.static")
    key = KeyChoice("token", "ya29.static")
    p = VertexProvider(
        "vx",
        project="proj-1",
        region="us-east5",
        keys=[key],
        base_url=fake.base_url,
        policy=BetaPolicy.of(VERTEX_BETAS),
    )
    try:
        fake.script.append(
            google_error(
                429,
                "RESOURCE_EXHAUSTED",
                "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests",
            )
        )
        resp = await p.send(_request(False), key)
        body = json.loads(await resp.read())
        resp.close()
        assert resp.status == 429 and body["error"] == {
            "type": "rate_limit_error",
            "message": "provider vx (RESOURCE_EXHAUSTED): Quota exceeded for "
            "aiplatform.googleapis.com/online_prediction_requests",
        }
        resp = await p.send(_request(False, "/v1/messages/count_tokens"), key)
        assert json.loads(await resp.read()) == {"input_tokens": 17}
        resp.close()
        count = fake.requests[-1]
        assert count.path.endswith("/models/count-tokens:rawPredict")
        assert count.json()["model"] == "claude-sonnet-4-5@20250929"
        bad = KeyChoice("token", "ya29.revoked")
        resp = await p.send(_request(False), bad)
        body = json.loads(await resp.read())
        resp.close()
        assert resp.status == 401 and body["error"]["type"] == "authentication_error"
        assert "UNAUTHENTICATED" in body["error"]["message"]
    finally:
        await p.close()


async def test_a_refused_service_account_names_the_key(fake: VertexFake) -> None:
    account = fake.service_account()
    fake.accounts.remove(account)  # the token endpoint no longer knows its key
    key = KeyChoice("ops-sa", json.dumps(account.info))
    p = VertexProvider(
        "vx", project="proj-1", region="us-east5", keys=[key], base_url=fake.base_url
    )
    try:
        with pytest.raises(UpstreamError, match="cannot get a Google access token for key "
                                                "'ops-sa'.*invalid_grant"):  # fmt: skip
            await p.send(_request(False), key)
    finally:
        await p.close()
