"""The Bedrock and Vertex surfaces through the in-process gateway to an Anthropic upstream."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.eventstream import EventStreamBuffer

from inprocess import running
from upstream_mock import MockUpstream

BEDROCK_PATH = "/model/us.anthropic.claude-sonnet-4-5-20250929-v1:0"
VERTEX_PATH = ("/v1/projects/p/locations/us-east5/publishers/anthropic/models/"
               "claude-sonnet-4-5@20250929")  # fmt: skip


@pytest.fixture
def mock() -> Iterator[MockUpstream]:
    with MockUpstream() as m:
        yield m


def _config(mock: MockUpstream) -> str:
    return (f"providers:\n  anthropic:\n    base_url: {mock.base_url}\n"
            "    keys: [{value: sk-ant-upstream}]\n")  # fmt: skip


async def test_bedrock_mode_invoke_and_stream(mock: MockUpstream, tmp_path: Path) -> None:
    async with running(tmp_path, _config(mock)) as gw:
        vk = await gw.key()
        body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50,
                "anthropic_beta": ["interleaved-thinking-2025-05-14"],
                "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
        headers = {"authorization": f"Bearer {vk}", "anthropic-beta": "claude-code-20250219"}
        resp = await gw.client.post(BEDROCK_PATH + "/invoke", json=body, headers=headers)
        assert resp.status_code == 200, resp.text
        assert resp.json()["type"] == "message"
        sent = mock.requests[-1]
        assert sent.path == "/v1/messages" and sent.header("x-api-key") == "sk-ant-upstream"
        doc = sent.json()
        assert doc["model"] == "claude-sonnet-4-5-20250929" and "stream" not in doc
        assert "anthropic_version" not in doc and "anthropic_beta" not in doc
        assert sent.header("anthropic-beta") == (
            "claude-code-20250219,interleaved-thinking-2025-05-14"
        )
        resp = await gw.client.post(BEDROCK_PATH + "/invoke-with-response-stream", json=body,
                                    headers=headers)  # fmt: skip
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "application/vnd.amazon.eventstream"
        buf = EventStreamBuffer()
        buf.add_data(resp.content)
        events = [json.loads(base64.b64decode(json.loads(f.payload)["bytes"])) for f in buf]
        assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_stop"
        assert mock.requests[-1].json()["stream"] is True
        resp = await gw.client.post(
            BEDROCK_PATH + "/invoke", json=body, headers={"authorization": "Bearer tw-unknown"}
        )
        assert resp.status_code == 401 and "not known to this gateway" in resp.json()["message"]


async def test_vertex_mode_stream(mock: MockUpstream, tmp_path: Path) -> None:
    async with running(tmp_path, _config(mock)) as gw:
        vk = await gw.key()
        body = {"anthropic_version": "vertex-2023-10-16", "max_tokens": 50, "stream": True,
                "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
        resp = await gw.client.post(VERTEX_PATH + ":streamRawPredict", json=body,
                                    headers={"x-api-key": vk})  # fmt: skip
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        assert b"event: message_stop" in resp.content
        doc = mock.requests[-1].json()
        assert doc["model"] == "claude-sonnet-4-5-20250929" and doc["stream"] is True
        assert "anthropic_version" not in doc
        resp = await gw.client.post(VERTEX_PATH + ":rawPredict", json={**body, "stream": False},
                                    headers={"x-api-key": vk})  # fmt: skip
        assert resp.status_code == 200 and resp.json()["type"] == "message"
