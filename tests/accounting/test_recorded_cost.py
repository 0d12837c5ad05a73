"""Recorded cost, end to end: a loopback upstream answers with known usage, the gateway
records the request, and the stored figures match the price table to the picodollar.

Prices used (USD per million tokens, accounting/prices.json): claude-opus-4-5 input 5,
output 25, cache write 5m 6.25, 1h 10, cache read 0.50; gpt-5 input 1.25, output 10,
cached input 0.125.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from conftest import gateway_config
from inprocess import Running, running
from upstream_mock import (
    MockUpstream,
    Reply,
    anthropic_events,
    anthropic_message,
    chat_completion,
    chat_events,
    responses_events,
)

M = Decimal(1_000_000)
PICO = Decimal(10) ** 12
OPUS_USAGE = {
    "input_tokens": 1000,
    "output_tokens": 500,
    "cache_read_input_tokens": 2000,
    "cache_creation_input_tokens": 3000,
    "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000},
}
OPUS_COST = {
    "input": 1000 * Decimal(5) / M,
    "output": 500 * Decimal(25) / M,
    "cache_read": 2000 * Decimal("0.50") / M,
    "cache_write_5m": 1000 * Decimal("6.25") / M,
    "cache_write_1h": 2000 * Decimal(10) / M,
}
GPT_USAGE = {
    "prompt_tokens": 1000,
    "completion_tokens": 300,
    "total_tokens": 1300,
    "prompt_tokens_details": {"cached_tokens": 400},
    "completion_tokens_details": {"reasoning_tokens": 100},
}
GPT_COST = {
    "input": 600 * Decimal("1.25") / M,
    "cache_read": 400 * Decimal("0.125") / M,
    "output": 300 * Decimal(10) / M,  # reasoning is part of completion_tokens, priced once
}


def _msg(stream: bool = False, model: str = "claude-opus-4-5") -> dict[str, Any]:
    return {"model": model, "max_tokens": 1000, "stream": stream,
            "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip


async def _record(gw: Running) -> dict[str, Any]:
    await gw.services.writer.flush()
    rows = await gw.services.store.query("SELECT * FROM requests ORDER BY started_at DESC")
    return rows[0]


def _assert_costs(row: dict[str, Any], expected: dict[str, Decimal]) -> None:
    for kind in ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h"):
        got = Decimal(row[f"cost_{kind}_pico"]) / PICO
        assert got == expected.get(kind, Decimal(0)), kind
    assert Decimal(row["cost_total_pico"]) / PICO == sum(expected.values())
    assert row["cost_unknown"] == 0


async def test_anthropic_non_stream_with_cache_split_by_ttl(
    tmp_path: Path, mock_upstream: MockUpstream
) -> None:
    mock_upstream.enqueue(Reply(json=anthropic_message(model="claude-opus-4-5", usage=OPUS_USAGE)))
    async with running(tmp_path, gateway_config(mock_upstream)) as gw:
        key = await gw.key()
        r = await gw.client.post("/v1/messages", json=_msg(), headers={"x-api-key": key})
        assert r.status_code == 200
        row = await _record(gw)
        assert (row["input_tokens"], row["output_tokens"], row["cache_read_tokens"]) == (
            1000,
            500,
            2000,
        )
        assert (row["cache_write_5m_tokens"], row["cache_write_1h_tokens"]) == (1000, 2000)
        _assert_costs(row, OPUS_COST)
        assert sum(OPUS_COST.values()) == Decimal("0.04475")


async def test_anthropic_stream_merges_start_and_delta_usage(
    tmp_path: Path, mock_upstream: MockUpstream
) -> None:
    events = anthropic_events("streamed words here", model="claude-opus-4-5", usage=OPUS_USAGE)
    mock_upstream.enqueue(Reply(events=events))
    async with running(tmp_path, gateway_config(mock_upstream)) as gw:
        key = await gw.key()
        r = await gw.client.post("/v1/messages", json=_msg(True), headers={"x-api-key": key})
        assert r.status_code == 200 and "message_stop" in r.text
        row = await _record(gw)
        assert row["stream"] == 1 and row["partial"] == 0 and row["ttft_ms"] is not None
        _assert_costs(row, OPUS_COST)


async def test_cut_stream_is_billed_for_what_was_delivered(
    tmp_path: Path, mock_upstream: MockUpstream
) -> None:
    text = " ".join(["word"] * 40)
    events = anthropic_events(text, model="claude-opus-4-5", usage=OPUS_USAGE)
    mock_upstream.enqueue(Reply(events=events, cut_after=12))
    async with running(tmp_path, gateway_config(mock_upstream)) as gw:
        key = await gw.key()
        r = await gw.client.post("/v1/messages", json=_msg(True), headers={"x-api-key": key})
        assert r.status_code == 200
        row = await _record(gw)
        assert row["partial"] == 1 and row["output_tokens"] >= 1
        # Input and cache usage came in message_start, so it is exact; output is estimated.
        expected = {**OPUS_COST, "output": row["output_tokens"] * Decimal(25) / M}
        _assert_costs(row, expected)


async def test_openai_chat_cached_and_reasoning(
    tmp_path: Path, mock_upstream: MockUpstream
) -> None:
    mock_upstream.enqueue(Reply(json=chat_completion(model="gpt-5", usage=GPT_USAGE)))
    async with running(tmp_path, gateway_config(mock_upstream)) as gw:
        key = await gw.key()
        body = {"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}]}
        r = await gw.client.post("/v1/chat/completions", json=body,
                                 headers={"authorization": f"Bearer {key}"})  # fmt: skip
        assert r.status_code == 200
        row = await _record(gw)
        assert (row["input_tokens"], row["cache_read_tokens"], row["reasoning_tokens"]) == (
            600,
            400,
            100,
        )
        _assert_costs(row, GPT_COST)


async def test_openai_stream_usage_added_upstream_and_hidden_from_client(
    tmp_path: Path, mock_upstream: MockUpstream
) -> None:
    mock_upstream.enqueue(Reply(events=chat_events(model="gpt-5", usage=GPT_USAGE)))
    async with running(tmp_path, gateway_config(mock_upstream)) as gw:
        key = await gw.key()
        body = {"model": "gpt-5", "stream": True, "messages": [{"role": "user", "content": "x"}]}
        r = await gw.client.post("/v1/chat/completions", json=body,
                                 headers={"authorization": f"Bearer {key}"})  # fmt: skip
        assert r.status_code == 200 and r.text.rstrip().endswith("data: [DONE]")
        chunks = [json.loads(line[6:]) for line in r.text.splitlines()
                  if line.startswith("data: {")]  # fmt: skip
        assert chunks and all(c.get("usage") is None for c in chunks)  # the client did not ask
        assert b'"include_usage":true' in mock_upstream.requests[-1].body.replace(b" ", b"")
        _assert_costs(await _record(gw), GPT_COST)


async def test_responses_stream_priced_from_response_completed(
    tmp_path: Path, mock_upstream: MockUpstream
) -> None:
    usage = {"input_tokens": 1000, "input_tokens_details": {"cached_tokens": 400},
             "output_tokens": 300, "output_tokens_details": {"reasoning_tokens": 100},
             "total_tokens": 1300}  # fmt: skip
    mock_upstream.enqueue(Reply(events=responses_events(model="gpt-5", usage=usage)))
    async with running(tmp_path, gateway_config(mock_upstream)) as gw:
        key = await gw.key()
        body = {"model": "gpt-5", "stream": True, "input": "hi"}
        r = await gw.client.post("/v1/responses", json=body,
                                 headers={"authorization": f"Bearer {key}"})  # fmt: skip
        assert r.status_code == 200 and "response.completed" in r.text
        _assert_costs(await _record(gw), GPT_COST)


async def test_unknown_model_is_recorded_as_cost_unknown(
    tmp_path: Path, mock_upstream: MockUpstream
) -> None:
    mock_upstream.enqueue(Reply(json=anthropic_message(model="mystery-1", usage=OPUS_USAGE)))
    async with running(tmp_path, gateway_config(mock_upstream)) as gw:
        key = await gw.key()
        body = _msg(model="anthropic/mystery-1")
        r = await gw.client.post("/v1/messages", json=body, headers={"x-api-key": key})
        assert r.status_code == 200
        row = await _record(gw)
        assert row["cost_unknown"] == 1 and row["cost_total_pico"] == 0
        assert row["input_tokens"] == 1000  # tokens are still recorded


async def test_unpriced_models_can_be_refused(tmp_path: Path, mock_upstream: MockUpstream) -> None:
    config = gateway_config(mock_upstream) + "gateway: {refuse_unpriced_models: true}\n"
    async with running(tmp_path, config) as gw:
        key = await gw.key(budgets=[{"max_limit": 10, "reset_duration": "1d"}])
        body = _msg(model="anthropic/mystery-1")
        r = await gw.client.post("/v1/messages", json=body, headers={"x-api-key": key})
        assert r.status_code == 403 and "no price" in r.json()["error"]["message"]
        assert mock_upstream.requests == [] or all(
            q.path != "/v1/messages" for q in mock_upstream.requests
        )


async def test_ten_thousand_requests_lose_no_record(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        key = await gw.key()
        body = _msg(model="claude-sonnet-4-5")

        async def batch(client: httpx.AsyncClient, n: int) -> list[int]:
            out = []
            for _ in range(n):
                r = await client.post("/v1/messages", json=body, headers={"x-api-key": key})
                out.append(r.status_code)
            return out

        results = await asyncio.gather(*(batch(gw.client, 200) for _ in range(50)))
        assert sum(len(r) for r in results) == 10_000 and {s for r in results for s in r} == {200}
        await gw.services.writer.flush()
        rows = await gw.services.store.query("SELECT COUNT(*) AS n FROM requests")
        assert rows[0]["n"] == 10_000 and gw.services.writer.dropped_records == 0
