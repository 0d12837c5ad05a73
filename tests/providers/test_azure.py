"""Azure OpenAI deployments and Claude on Azure AI Foundry against the Azure fake."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from cloud_fakes import AzureFake
from tollway.providers.anthropic import FoundryProvider
from tollway.providers.azure import AzureOpenAIProvider
from tollway.providers.base import (
    ANTHROPIC,
    OPENAI_CHAT,
    OPENAI_RESPONSES,
    KeyChoice,
    UpstreamRequest,
)
from tollway.providers.betas import BetaPolicy

KEY = KeyChoice("main", "azure-key-123")


@pytest.fixture
def fake() -> Iterator[AzureFake]:
    with AzureFake(KEY.secret, ["gpt-4o-prod"]) as f:
        yield f


def _req(dialect: str, path: str, body: dict[str, object], model: str) -> UpstreamRequest:
    return UpstreamRequest(dialect=dialect, method="POST", path=path, query=b"",
                           headers=[("anthropic-version", "2023-06-01")] if dialect == ANTHROPIC
                           else [], body=json.dumps(body).encode(), stream=False,
                           model=model)  # fmt: skip


async def test_chat_goes_to_the_deployment_with_api_version(fake: AzureFake) -> None:
    p = AzureOpenAIProvider(
        "azure", base_url=fake.base_url + "/openai", keys=[KEY], model_map={"gpt-4o": "gpt-4o-prod"}
    )
    try:
        body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
        resp = await p.send(_req(OPENAI_CHAT, "/v1/chat/completions", body, "gpt-4o"), KEY)
        assert resp.status == 200 and json.loads(await resp.read())["model"] == "gpt-4o-prod"
        resp.close()
        req = fake.requests[-1]
        assert req.raw_path == (
            "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21"
        )
        assert req.header("api-key") == KEY.secret and req.header("authorization") is None
        body = {"model": "gpt-4o", "input": "hi"}
        resp = await p.send(_req(OPENAI_RESPONSES, "/v1/responses", body, "gpt-4o"), KEY)
        assert resp.status == 200
        resp.close()
        assert fake.requests[-1].path == "/openai/v1/responses"
        assert fake.requests[-1].json()["model"] == "gpt-4o-prod"  # the deployment
        wrong = KeyChoice("old", "revoked")
        resp = await p.send(_req(OPENAI_CHAT, "/v1/chat/completions", body, "gpt-4o"), wrong)
        assert resp.status == 401
        resp.close()
    finally:
        await p.close()


async def test_foundry_speaks_anthropic_under_anthropic(fake: AzureFake) -> None:
    p = FoundryProvider(
        "foundry",
        base_url=fake.base_url + "/anthropic",
        keys=[KEY],
        policy=BetaPolicy.of(None, drop=["fast-mode-2026-02-01"]),
    )
    try:
        body = {"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": []}
        req = _req(ANTHROPIC, "/v1/messages", body, "claude-sonnet-4-5")
        req = UpstreamRequest(
            **{
                **{f: getattr(req, f) for f in req.__slots__},
                "headers": [("anthropic-beta", "fast-mode-2026-02-01,x-1")],
            }
        )
        resp = await p.send(req, KEY)
        assert resp.status == 200
        assert json.loads(await resp.read())["model"] == "claude-sonnet-4-5"
        resp.close()
        sent = fake.requests[-1]
        assert sent.path == "/anthropic/v1/messages"
        assert sent.header("api-key") == KEY.secret and sent.header("x-api-key") == KEY.secret
        assert sent.header("anthropic-beta") == "x-1"
    finally:
        await p.close()
