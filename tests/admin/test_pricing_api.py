"""``/api/pricing`` in-process: list, resolve, override (stored and re-applied at start)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import httpx

from tollway.app import build_app
from tollway.config import Config, ProviderConfig, SimulatedSettings
from tollway.services import Services
from tollway.storage.sqlite import SQLiteStore

AUTH = {"authorization": "Bearer t"}
MSG = b'{"model":"house-model","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}'

# Billed at Anthropic's prices: the simulated provider alone costs nothing.
PRICED = ProviderConfig(type="simulated", simulated=SimulatedSettings(price_as="anthropic"))


@asynccontextmanager
async def gateway(db: Path, config: Config | None = None) -> AsyncIterator[httpx.AsyncClient]:
    config = config or Config(providers={"simulated": PRICED})
    services = Services(config, SQLiteStore(f"sqlite:///{db}"))
    await services.start()
    services.admin_token = "t"
    transport = httpx.ASGITransport(app=build_app(services))
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gw", headers=AUTH
        ) as client:
            yield client
    finally:
        await services.stop()


async def test_list_and_resolve(tmp_path: Path) -> None:
    config = Config(
        providers={"simulated": PRICED},
        pricing={"gpt-5": {"input": "1.00"}},
    )
    async with gateway(tmp_path / "p.db", config) as client:
        doc = (await client.get("/api/pricing")).json()
        assert doc["as_of"] and doc["unit"] == "USD per 1,000,000 tokens"
        by_model = {p["model"]: p for p in doc["data"]}
        assert "claude-sonnet-4-5" in by_model and by_model["gpt-5"]["overridden"] is True
        assert by_model["gpt-5"]["input"] == "1.00"
        assert by_model["claude-sonnet-4-5"]["overridden"] is False

        r = await client.get("/api/pricing/anthropic/claude-sonnet-4-5-20250929")
        assert r.status_code == 200
        price = r.json()
        assert price["requested"] == "anthropic/claude-sonnet-4-5-20250929"
        assert price["model"] == "claude-sonnet-4-5"
        assert Decimal(price["cache_read"]) == Decimal(price["input"]) / 10

        r = await client.get("/api/pricing/house-model")
        assert r.status_code == 404
        message = r.json()["error"]["message"]
        assert "house-model" in message and "cost_unknown" in message and "PUT" in message


async def test_override_is_validated_applied_and_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    async with gateway(db) as client:
        for bad, field in (
            ({"input": "-1"}, "input"),
            ({"input": "lots"}, "input"),
            ({"inptu": "1"}, "inptu"),
            ({"long_context": {"input": "1"}}, "above_input_tokens"),
        ):
            r = await client.put("/api/pricing/house-model", json=bad)
            assert r.status_code == 422, (bad, r.text)
            assert field in json.dumps(r.json()["error"]), r.text
        # A new model needs input and output: refused whole, nothing stored.
        r = await client.put("/api/pricing/house-model", json={"input": "2"})
        assert r.status_code == 422 and "'input' and 'output'" in r.json()["error"]["message"]
        assert (await client.get("/api/pricing/house-model")).status_code == 404

        r = await client.put("/api/pricing/House-Model", json={"input": 0.3, "output": "4.5"})
        assert r.status_code == 200, r.text
        assert r.json()["input"] == "0.3" and r.json()["cache_read"] == "0.3"
        r = await client.put("/api/pricing/house-model", json={"cache_read": "0.03"})
        assert r.json()["input"] == "0.3" and r.json()["cache_read"] == "0.03"

        # Requests for the model are now priced.
        key = (await client.post("/api/virtual-keys", json={"name": "k"})).json()["key"]
        r = await client.post("/v1/messages", content=MSG, headers={"x-api-key": key})
        assert r.status_code == 200, r.text

    async with gateway(db) as client:  # a new process on the same database
        price = (await client.get("/api/pricing/house-model")).json()
        assert (price["input"], price["output"], price["cache_read"]) == ("0.3", "4.5", "0.03")
        listed = {p["model"]: p for p in (await client.get("/api/pricing")).json()["data"]}
        assert listed["house-model"]["overridden"] is True
        logs = (await client.get("/api/logs")).json()["data"]
        assert logs[0]["cost_unknown"] is False
        tokens = logs[0]["tokens"]
        expected = (Decimal("0.3") * tokens["input"] + Decimal("4.5") * tokens["output"]) / 10**6
        assert Decimal(logs[0]["cost"]["total"]) == expected


async def test_sources_layers_time_and_provider(tmp_path: Path) -> None:
    config = Config(
        providers={
            "simulated": PRICED,
            "fast-llama": ProviderConfig(type="openai", base_url="https://api.groq.com/openai/v1"),
        },
        pricing={"claude-opus-4-8": {"output": "24"}},
    )
    async with gateway(tmp_path / "s.db", config) as client:
        doc = (await client.get("/api/pricing")).json()
        assert doc["base"]["package"] == "genai-prices" and doc["base"]["checked"]
        by_key = {p["key"]: p for p in doc["data"]}
        assert by_key["claude-opus-4-8"]["layer"] == "config"
        assert by_key["claude-opus-4-5"]["layer"] == "genai-prices"
        assert by_key["claude-opus-4-5"]["source"]["url"].startswith("https://")
        assert by_key["claude-opus-4-*"]["layer"] == "tollway"
        assert by_key["claude-opus-4-*"]["assumption"]

        r = await client.get("/api/pricing/llama-3.3-70b-versatile?provider=fast-llama")
        assert r.status_code == 200 and r.json()["provider"] == "groq"
        assert r.json()["input"] == "0.59"
        r = await client.get("/api/pricing/claude-sonnet-4-6?at=2026-03-01T00:00:00Z")
        assert r.json()["long_context"]["input"] == "6"
        r = await client.get("/api/pricing/claude-sonnet-4-6")
        assert "long_context" not in r.json() and r.json()["layer"] == "genai-prices"


async def test_put_takes_tiers_fees_and_context_window_merged_by_name(tmp_path: Path) -> None:
    async with gateway(tmp_path / "t.db") as client:
        r = await client.put("/api/pricing/gpt-5.2", json={
            "service_tiers": {"priority": {"output": "30"}}, "tool_fees": {"web_search": "0.02"},
            "context_window": 300_000,
        })  # fmt: skip
        assert r.status_code == 200, r.text
        price = r.json()
        assert price["layer"] == "api" and price["context_window"] == 300_000
        assert price["service_tiers"]["priority"]["output"] == "30"
        assert price["service_tiers"]["priority"]["input"] == "3.5"  # kept from genai-prices
        assert price["service_tiers"]["flex"]["output"] == "7"
        assert price["tool_fees"] == {"web_search": "0.02", "file_search": "0.0025"}
        r = await client.put("/api/pricing/gpt-5.2", json={"tool_fees": {"file_search": None}})
        assert r.json()["tool_fees"] == {"web_search": "0.02"}  # merged by name, one removed
        assert r.json()["service_tiers"]["priority"]["output"] == "30"
        r = await client.put("/api/pricing/gpt-5.2", json={"context_window": 0})
        assert r.status_code == 422
    async with gateway(tmp_path / "t.db") as client:  # stored and re-applied at start
        price = (await client.get("/api/pricing/gpt-5.2")).json()
        assert price["tool_fees"] == {"web_search": "0.02"}
        assert price["service_tiers"]["priority"]["output"] == "30"
