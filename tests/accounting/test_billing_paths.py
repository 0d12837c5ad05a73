"""What each billable path records, end to end against the loopback upstream.

Expected costs are worked from the providers' published prices (USD per million tokens),
as genai-prices 0.2.3 carries them:
- gpt-5.2 (https://developers.openai.com/api/docs/pricing): $1.75 in, $0.175 cached,
  $14 out; priority $3.50 / $0.35 / $28;
- gpt-6.1-sol: $2 in, $0.10 cached, $2.50 cache write, $10 out;
- claude-opus-4-8 (https://platform.claude.com/docs/en/about-claude/pricing): $5 in,
  $25 out, 1h cache write $10; fast mode $10 / $50 / $20;
- claude-sonnet-4-6: $3 / $15 flat across the context window; web search $10 per 1,000.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from conftest import gateway_config
from inprocess import Running, running
from tollway.accounting.genai import GENAI_PRICES_VERSION
from upstream_mock import MockUpstream, Reply, anthropic_message, chat_completion

PICO = Decimal(10) ** 12
BASE_VERSION = f"genai-prices:{GENAI_PRICES_VERSION}"


async def _row(gw: Running) -> dict[str, Any]:
    await gw.services.writer.flush()
    rows = await gw.services.store.query("SELECT * FROM requests ORDER BY started_at DESC")
    return rows[0]


def _usd(row: dict[str, Any], kind: str) -> Decimal:
    return Decimal(row[f"cost_{kind}_pico"]) / PICO


def _chat(model: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}]}


def _msg(model: str) -> dict[str, Any]:
    return {"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}


async def test_openai_priority_tier_as_the_response_reports_it(
    tmp_path: Path, mock_upstream: MockUpstream
) -> None:
    usage = {"prompt_tokens": 10_000, "completion_tokens": 500,
             "prompt_tokens_details": {"cached_tokens": 2_000}}  # fmt: skip
    reply = {**chat_completion(model="gpt-5.2", usage=usage), "service_tier": "priority"}
    mock_upstream.enqueue(Reply(json=reply))
    async with running(tmp_path, gateway_config(mock_upstream)) as gw:
        key = await gw.key()
        r = await gw.client.post("/v1/chat/completions", json=_chat("gpt-5.2"),
                                 headers={"authorization": f"Bearer {key}"})  # fmt: skip
        assert r.status_code == 200
        row = await _row(gw)
        assert row["service_tier"] == "priority" and row["price_version"] == BASE_VERSION
        assert _usd(row, "input") == Decimal("0.028")  # 8,000 x $3.50 / 1M
        assert _usd(row, "cache_read") == Decimal("0.0007")  # 2,000 x $0.35 / 1M
        assert _usd(row, "output") == Decimal("0.014")  # 500 x $28 / 1M
        assert _usd(row, "total") == Decimal("0.0427")  # twice the default tier's 0.02135


async def test_openai_default_and_flex_tiers(tmp_path: Path, mock_upstream: MockUpstream) -> None:
    usage = {"prompt_tokens": 1_000_000, "completion_tokens": 1_000_000}
    for tier in ("default", "flex"):
        reply = {**chat_completion(model="gpt-5.2", usage=usage), "service_tier": tier}
        mock_upstream.enqueue(Reply(json=reply))
    async with running(tmp_path, gateway_config(mock_upstream)) as gw:
        key = await gw.key()
        totals = []
        for _ in range(2):
            await gw.client.post("/v1/chat/completions", json=_chat("gpt-5.2"),
                                 headers={"authorization": f"Bearer {key}"})  # fmt: skip
            row = await _row(gw)
            totals.append((row["service_tier"], _usd(row, "total")))
        assert totals == [(None, Decimal("15.75")), ("flex", Decimal("7.875"))]


async def test_openai_cache_writes_are_billed_at_the_write_rate(
    tmp_path: Path, mock_upstream: MockUpstream
) -> None:
    usage = {
        "input_tokens": 10_000,
        "output_tokens": 100,
        "input_tokens_details": {"cached_tokens": 3_000, "cache_write_tokens": 4_000},
    }
    body = {"id": "resp_1", "object": "response", "model": "gpt-6.1-sol", "status": "completed",
            "output": [], "usage": usage}  # fmt: skip
    mock_upstream.enqueue(Reply(json=body))
    async with running(tmp_path, gateway_config(mock_upstream)) as gw:
        key = await gw.key()
        r = await gw.client.post("/v1/responses", json={"model": "gpt-6.1-sol", "input": "x"},
                                 headers={"authorization": f"Bearer {key}"})  # fmt: skip
        assert r.status_code == 200
        row = await _row(gw)
        assert (row["input_tokens"], row["cache_read_tokens"], row["cache_write_5m_tokens"]) == (
            3_000, 3_000, 4_000)  # fmt: skip
        assert _usd(row, "input") == Decimal("0.006")  # 3,000 x $2
        assert _usd(row, "cache_read") == Decimal("0.0003")  # 3,000 x $0.10
        assert _usd(row, "cache_write_5m") == Decimal("0.01")  # 4,000 x $2.50
        assert _usd(row, "output") == Decimal("0.001")  # 100 x $10
        assert _usd(row, "total") == Decimal("0.0173")


async def test_anthropic_fast_mode_and_web_search_fees(
    tmp_path: Path, mock_upstream: MockUpstream
) -> None:
    fast = {
        "input_tokens": 1_000,
        "output_tokens": 200,
        "speed": "fast",
        "cache_creation_input_tokens": 500,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 500},
    }
    search = {"input_tokens": 2_000, "output_tokens": 100,
              "server_tool_use": {"web_search_requests": 3}}  # fmt: skip
    mock_upstream.enqueue(Reply(json=anthropic_message(model="claude-opus-4-8", usage=fast)))
    mock_upstream.enqueue(Reply(json=anthropic_message(model="claude-sonnet-4-6", usage=search)))
    async with running(tmp_path, gateway_config(mock_upstream)) as gw:
        key = await gw.key()
        await gw.client.post("/v1/messages", json=_msg("claude-opus-4-8"),
                             headers={"x-api-key": key})  # fmt: skip
        row = await _row(gw)
        assert row["service_tier"] == "fast"
        assert (_usd(row, "input"), _usd(row, "output"), _usd(row, "cache_write_1h")) == (
            Decimal("0.01"),
            Decimal("0.01"),
            Decimal("0.01"),
        )  # $10, $50, $20 per 1M
        assert _usd(row, "total") == Decimal("0.03")
        await gw.client.post("/v1/messages", json=_msg("claude-sonnet-4-6"),
                             headers={"x-api-key": key})  # fmt: skip
        row = await _row(gw)
        assert row["web_searches"] == 3 and row["service_tier"] is None
        assert _usd(row, "server_tools") == Decimal("0.03")  # 3 x $0.01
        assert _usd(row, "total") == Decimal("0.0375")  # 2,000 x $3 + 100 x $15 + the fees


async def test_sonnet_4_6_long_prompt_is_priced_flat(
    tmp_path: Path, mock_upstream: MockUpstream
) -> None:
    usage = {"input_tokens": 275_000, "output_tokens": 1_000}
    mock_upstream.enqueue(Reply(json=anthropic_message(model="claude-sonnet-4-6", usage=usage)))
    async with running(tmp_path, gateway_config(mock_upstream)) as gw:
        key = await gw.key()
        await gw.client.post("/v1/messages", json=_msg("claude-sonnet-4-6"),
                             headers={"x-api-key": key})  # fmt: skip
        row = await _row(gw)
        # $0.825 + $0.015; the dropped long-context tier would have made it $1.6725.
        assert _usd(row, "total") == Decimal("0.84")


async def test_a_200_without_readable_usage_is_charged_its_reservation(
    tmp_path: Path, mock_upstream: MockUpstream
) -> None:
    message = anthropic_message(model="claude-opus-4-8")
    del message["usage"]
    mock_upstream.enqueue(Reply(json=message))
    async with running(tmp_path, gateway_config(mock_upstream)) as gw:
        key = await gw.key(budgets=[{"max_limit": 50, "reset_duration": "1d"}])
        ledger = gw.services.admission.ledger
        held: list[Decimal] = []
        reserve = ledger.reserve

        def spy(*args: Any, **kwargs: Any) -> Any:
            result = reserve(*args, **kwargs)
            held.append(result.amount)
            return result

        ledger.reserve = spy  # type: ignore[method-assign]
        r = await gw.client.post("/v1/messages", json=_msg("claude-opus-4-8"),
                                 headers={"x-api-key": key})  # fmt: skip
        assert r.status_code == 200
        row = await _row(gw)
        assert len(held) == 1 and held[0] > 0
        assert row["cost_unknown"] == 1
        assert _usd(row, "total") == held[0]  # the worst case it was admitted with
        status = (await gw.client.get(f"/api/virtual-keys/{row['vk_id']}/status",
                                      headers=gw.admin)).json()  # fmt: skip
        assert Decimal(status["budgets"][0]["spent"]) == held[0]
        logs = (await gw.client.get("/api/logs", headers=gw.admin)).json()["data"]
        assert logs[0]["cost_unknown"] is True


async def test_unpriced_model_is_refused_under_a_budget_unless_a_fallback_is_set(
    tmp_path: Path, mock_upstream: MockUpstream
) -> None:
    usage = {"input_tokens": 1_000, "output_tokens": 100}
    mock_upstream.enqueue(Reply(json=anthropic_message(model="mystery-1", usage=usage)))
    budget = [{"max_limit": 10, "reset_duration": "1d"}]
    async with running(tmp_path, gateway_config(mock_upstream)) as gw:
        key = await gw.key(budgets=budget)
        r = await gw.client.post("/v1/messages", json=_msg("anthropic/mystery-1"),
                                 headers={"x-api-key": key})  # fmt: skip
        assert r.status_code == 403
        assert "no price" in r.json()["error"]["message"]
        assert "fallback_price" in r.json()["error"]["message"]
        assert all(q.path != "/v1/messages" for q in mock_upstream.requests)
    fallback = {"gateway": {"fallback_price": {"input": "15", "output": "75"}}}
    async with running(tmp_path / "f", gateway_config(mock_upstream, fallback)) as gw:
        key = await gw.key(budgets=budget)
        r = await gw.client.post("/v1/messages", json=_msg("anthropic/mystery-1"),
                                 headers={"x-api-key": key})  # fmt: skip
        assert r.status_code == 200
        row = await _row(gw)
        assert row["cost_estimated"] == 1 and row["cost_unknown"] == 0
        assert row["price_version"].startswith("fallback:")
        assert _usd(row, "total") == Decimal("0.0225")  # 1,000 x $15 + 100 x $75


async def test_simulated_provider_costs_nothing_and_is_marked(tmp_path: Path) -> None:
    config = "providers: {simulated: {}}"
    async with running(tmp_path, config) as gw:
        key = await gw.key(budgets=[{"max_limit": 1, "reset_duration": "1d"}])
        r = await gw.client.post("/v1/messages", json=_msg("claude-opus-4-8"),
                                 headers={"x-api-key": key})  # fmt: skip
        assert r.status_code == 200
        await gw.services.writer.flush()
        logs = (await gw.client.get("/api/logs", headers=gw.admin)).json()["data"]
        assert logs[0]["simulated"] is True and logs[0]["price_version"] == "simulated"
        assert logs[0]["tokens"]["input"] > 0 and Decimal(logs[0]["cost"]["total"]) == 0
        assert logs[0]["cost_unknown"] is False
    async with running(
        tmp_path / "p", "providers: {simulated: {simulated: {price_as: anthropic}}}"
    ) as gw:
        key = await gw.key()
        await gw.client.post("/v1/messages", json=_msg("claude-opus-4-8"),
                             headers={"x-api-key": key})  # fmt: skip
        row = await _row(gw)
        assert row["simulated"] == 1 and row["price_version"] == BASE_VERSION
        assert _usd(row, "total") > 0


async def test_models_listing_comes_from_the_price_book(
    tmp_path: Path, mock_upstream: MockUpstream
) -> None:
    async with running(tmp_path, gateway_config(mock_upstream)) as gw:
        key = await gw.key()
        r = await gw.client.get("/v1/models", headers={"authorization": f"Bearer {key}"})
        ids = {m["id"] for m in r.json()["data"]}
        assert {"claude-opus-4-8", "claude-sonnet-4-6", "gpt-5.2", "gpt-5-pro"} <= ids
        assert not any("*" in m for m in ids)
