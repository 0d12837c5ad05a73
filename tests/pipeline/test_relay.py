"""Relay over real sockets: cut streams end with the dialect's error, and a stream is
complete once its final event went out, whoever closes the connection afterwards."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest

from conftest import GatewayServer
from upstream_mock import (
    MockUpstream,
    Reply,
    anthropic_events,
    chat_events,
    responses_events,
)

LOG_WAIT_S = 10.0


def record(gw: GatewayServer, **filters: Any) -> dict[str, Any]:
    """The newest request-log row matching `filters`, waiting for the batched writer."""
    deadline = time.monotonic() + LOG_WAIT_S
    with httpx.Client(timeout=10) as client:
        while True:
            resp = client.get(f"{gw.base_url}/api/logs", params={"limit": 1, **filters},
                              headers=gw.admin_headers())  # fmt: skip
            rows = resp.json()["data"]
            if rows or time.monotonic() > deadline:
                assert rows, f"no log record for {filters} within {LOG_WAIT_S} s"
                return dict(rows[0])
            time.sleep(0.1)


def oai(gw: GatewayServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url + "/v1", api_key=key, max_retries=0, timeout=30)


def test_cut_chat_stream_raises_in_the_openai_sdk(
    gateway_server: GatewayServer, mock_upstream: MockUpstream
) -> None:
    key = gateway_server.key("cut-chat")
    mock_upstream.enqueue(Reply(events=chat_events("one two three four five"), cut_after=3))
    client = oai(gateway_server, key)
    got: list[str] = []
    with pytest.raises(openai.APIError) as info:
        stream = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "count"}], stream=True
        )
        for chunk in stream:
            got.extend(c.delta.content or "" for c in chunk.choices)
    assert "upstream" in str(info.value.message)
    assert "".join(got) == "one two"  # what arrived before the cut was relayed
    row = record(gateway_server, key="cut-chat")
    assert row["status"] == 200 and row["partial"] is True
    assert row["error_type"] == "upstream_stream_error"


def test_chat_stream_that_ends_without_done_is_an_error(
    gateway_server: GatewayServer, mock_upstream: MockUpstream
) -> None:
    """A clean EOF before ``[DONE]`` is a truncated answer, not a success."""
    key = gateway_server.key("eof-chat")
    events = chat_events("alpha beta")[:-3]  # no finish chunk, no usage, no [DONE]
    mock_upstream.enqueue(Reply(events=events))
    body = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    with httpx.Client(timeout=30) as client:
        resp = client.post(gateway_server.base_url + "/v1/chat/completions", json=body,
                           headers={"authorization": f"Bearer {key}"})  # fmt: skip
    datas = [line[6:] for line in resp.text.splitlines() if line.startswith("data: ")]
    assert "[DONE]" not in datas
    assert '"error"' in datas[-1] and "final event" in datas[-1]
    assert record(gateway_server, key="eof-chat")["partial"] is True


def test_cut_responses_stream_raises_in_the_openai_sdk(
    gateway_server: GatewayServer, mock_upstream: MockUpstream
) -> None:
    key = gateway_server.key("cut-resp")
    mock_upstream.enqueue(Reply(events=responses_events("a b c d e f"), cut_after=5))
    client = oai(gateway_server, key)
    types: list[str] = []
    with pytest.raises(openai.APIError):
        for event in client.responses.create(model="gpt-4o", input="count", stream=True):
            types.append(event.type)
    assert "response.completed" not in types and "response.output_text.delta" in types
    row = record(gateway_server, key="cut-resp")
    assert row["partial"] is True and row["error_type"] == "upstream_stream_error"


FINAL = {"/v1/messages": b"event: message_stop", "/v1/responses": b"event: response.completed",
         "/v1/chat/completions": b"data: [DONE]"}  # fmt: skip


@pytest.mark.parametrize("path", list(FINAL))
def test_stream_is_complete_once_its_final_event_is_relayed(
    gateway_server: GatewayServer, mock_upstream: MockUpstream, path: str
) -> None:
    """The client hangs up right after the final event while the upstream keeps its
    connection open: the record is a complete 200, not a 499."""
    name = "final-" + path.rsplit("/", 1)[-1]
    key = gateway_server.key(name)
    events = {"/v1/messages": anthropic_events, "/v1/responses": responses_events,
              "/v1/chat/completions": chat_events}[path]("done soon")  # fmt: skip
    mock_upstream.enqueue(Reply(events=events, hold_open=3.0))
    model = "claude-sonnet-4-5" if path == "/v1/messages" else "gpt-4o"
    body: dict[str, Any] = {"model": model, "stream": True, "max_tokens": 64,
                            "messages": [{"role": "user", "content": "x"}]}  # fmt: skip
    if path == "/v1/responses":
        body = {"model": model, "stream": True, "input": "x"}
    if path == "/v1/chat/completions":
        body = {"model": model, "stream": True, "messages": body["messages"],
                "stream_options": {"include_usage": True}}  # fmt: skip
    headers = {"x-api-key": key, "authorization": f"Bearer {key}"}
    seen = b""
    with httpx.Client(timeout=30) as client:
        with client.stream("POST", gateway_server.base_url + path, json=body,
                           headers=headers) as resp:  # fmt: skip
            for chunk in resp.iter_raw():
                seen += chunk
                if FINAL[path] in seen:
                    break  # leave at once, like Codex after response.completed
    assert FINAL[path] in seen
    row = record(gateway_server, key=name)
    assert row["status"] == 200, row
    assert row["partial"] is False and row["error_type"] is None
    assert row["tokens"]["output"] > 0
