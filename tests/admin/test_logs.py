"""``/api/logs`` and ``/api/usage`` in-process: real requests through the simulated provider."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tollway.accounting.cost import compute_cost
from tollway.accounting.pricing import PriceBook
from tollway.accounting.usage import Usage
from tollway.admin.logs import LOG_CSV_COLUMNS, USAGE_CSV_COLUMNS
from tollway.app import build_app
from tollway.config import Config, LoggingConfig, ProviderConfig, SimulatedSettings
from tollway.services import Services
from tollway.storage.records import Batch, RequestRecord
from tollway.storage.sqlite import SQLiteStore

AUTH = {"authorization": "Bearer t"}
T0 = 1_760_000_000.0

# Billed at Anthropic's prices: the simulated provider alone costs nothing.
PRICED = ProviderConfig(type="simulated", simulated=SimulatedSettings(price_as="anthropic"))


@dataclass
class Gateway:
    services: Services
    client: httpx.AsyncClient

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params, headers=AUTH)


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gateway]:
    config = Config(
        providers={"simulated": PRICED},
        logging=LoggingConfig(flush_interval_ms=10),
    )
    services = Services(config, SQLiteStore(f"sqlite:///{tmp_path / 'gw.db'}"))
    await services.start()
    services.admin_token = "t"
    transport = httpx.ASGITransport(app=build_app(services))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            yield Gateway(services, client)
    finally:
        await services.stop()


def body(model: str, stream: bool = False) -> bytes:
    return json.dumps({"model": model, "max_tokens": 50, "stream": stream,
                       "messages": [{"role": "user", "content": "hello"}]}).encode()  # fmt: skip


async def traffic(gw: Gateway) -> str:
    """Three requests from two keys; returns the secret of the first key."""
    secrets = []
    for name in ("alpha", "beta"):
        r = await gw.client.post("/api/virtual-keys", json={"name": name}, headers=AUTH)
        assert r.status_code == 201, r.text
        secrets.append(r.json()["key"])
    claude = {"x-api-key": secrets[0], "user-agent": "claude-cli/2.0.1",
              "x-claude-code-session-id": "sess-1", "x-tollway-user": "ann"}  # fmt: skip
    r = await gw.client.post("/v1/messages", content=body("claude-sonnet-4-5"), headers=claude)
    assert r.status_code == 200, r.text
    r = await gw.client.post(
        "/v1/messages", content=body("claude-sonnet-4-5", stream=True), headers=claude
    )
    assert r.status_code == 200 and "message_stop" in r.text
    r = await gw.client.post("/v1/messages", content=body("claude-haiku-4-5"),
                             headers={"x-api-key": secrets[1]})  # fmt: skip
    assert r.status_code == 200, r.text
    await gw.services.writer.flush()
    return str(secrets[0])


def expected_cost(model: str, sent: bytes) -> Decimal:
    usage = Usage(input_tokens=max(1, math.ceil(len(sent) / 4)), output_tokens=12)
    return compute_cost(usage, PriceBook().lookup(model)).total


async def test_logs_list_filter_and_detail(gw: Gateway) -> None:
    await traffic(gw)
    r = await gw.get("/api/logs")
    assert r.status_code == 200
    page = r.json()
    assert page["next_cursor"] is None and len(page["data"]) == 3
    newest = page["data"][0]
    assert newest["vk_name"] == "beta" and newest["client"] == "sdk"
    assert Decimal(newest["cost"]["total"]) == expected_cost("claude-haiku-4-5",
                                                             body("claude-haiku-4-5"))  # fmt: skip
    assert newest["tokens"]["output"] == 12 and newest["attempts"][0]["provider"] == "simulated"
    alpha = (await gw.get("/api/logs", key="alpha")).json()["data"]
    assert [d["stream"] for d in alpha] == [True, False]
    assert {d["session_id"] for d in alpha} == {"sess-1"}
    assert {d["client"] for d in alpha} == {"claude-code"}
    assert {d["user_id"] for d in alpha} == {"ann"}
    assert len((await gw.get("/api/logs", model="claude-haiku-4-5")).json()["data"]) == 1
    assert len((await gw.get("/api/logs", client="claude-code", status=200)).json()["data"]) == 2
    assert (await gw.get("/api/logs", session="nope")).json()["data"] == []

    detail = (await gw.get(f"/api/logs/{alpha[1]['id']}")).json()
    assert detail["content"]["request"] == json.loads(body("claude-sonnet-4-5"))
    assert detail["content"]["response"]["type"] == "message"
    streamed = (await gw.get(f"/api/logs/{alpha[0]['id']}")).json()
    assert isinstance(streamed["content"]["response"], str)
    assert streamed["content"]["response"].startswith("event: message_start")
    missing = await gw.get("/api/logs/req_nope")
    assert missing.status_code == 404
    assert "req_nope" in missing.json()["error"]["message"]


async def seed(gw: Gateway, n: int) -> list[RequestRecord]:
    records = [
        RequestRecord(id=f"r{i:03d}", started_at=T0 + i // 2, latency_ms=5.0, surface="anthropic",
                      status=200 if i % 5 else 500, vk_id="vk_1", vk_name="k", provider="p",
                      served_model=f"m{i % 3}", requested_model=f"m{i % 3}", input_tokens=i,
                      cost_input=Decimal(i) / 10**9, cost_total=Decimal(i) / 10**9)
        for i in range(n)
    ]  # fmt: skip
    await gw.services.store.write_batch(Batch(requests=records))
    return records


async def test_cursor_pagination(gw: Gateway) -> None:
    records = await seed(gw, 23)
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 5}
    while True:
        page = (await gw.get("/api/logs", **params)).json()
        seen += [d["id"] for d in page["data"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    expected = sorted(records, key=lambda r: (r.started_at, r.id), reverse=True)
    assert seen == [r.id for r in expected]
    ranged = await gw.get("/api/logs", **{"from": "2025-10-09T08:53:21Z", "to": T0 + 3})
    assert [d["id"] for d in ranged.json()["data"]] == ["r005", "r004", "r003", "r002"]
    costly = await gw.get("/api/logs", min_cost="0.000000021")
    assert [d["id"] for d in costly.json()["data"]] == ["r022", "r021"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"from": "last tuesday"}, "from"),
        ({"to": "nan"}, "to"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"status": "teapot"}, "status"),
        ({"min_cost": "-1"}, "min_cost"),
        ({"format": "xml"}, "format"),
    ],
)
async def test_bad_parameters_are_422_naming_the_field(
    gw: Gateway, params: dict[str, Any], field: str
) -> None:
    r = await gw.get("/api/logs", **params)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["fields"][0]["field"] == f"query.{field}"


async def test_usage_report_and_422(gw: Gateway) -> None:
    records = await seed(gw, 30)
    r = await gw.get("/api/usage", group_by="model")
    assert r.status_code == 200
    doc = r.json()
    assert doc["group_by"] == "model" and doc["from"] is None
    groups = {g["group"]: g for g in doc["data"]}
    for model, g in groups.items():
        mine = [x for x in records if x.served_model == model]
        assert g["requests"] == len(mine) and g["errors"] == sum(x.status >= 400 for x in mine)
        assert g["tokens"]["input"] == sum(x.input_tokens for x in mine)
        assert Decimal(g["cost"]["total"]) == sum((x.cost_total for x in mine), Decimal(0))
    assert doc["total"]["cost"]["total"] == "0.000000435"  # sum(range(30)) nano-dollars
    assert doc["total"]["requests"] == 30
    days = (await gw.get("/api/usage", group_by="day", **{"from": T0})).json()
    assert [(g["group"], g["requests"]) for g in days["data"]] == [("2025-10-09", 30)]
    assert days["from"] == "2025-10-09T08:53:20.000Z"
    bad = await gw.get("/api/usage", group_by="colour")
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "query.group_by"


async def test_csv_and_jsonl_exports(gw: Gateway) -> None:
    records = await seed(gw, 12)
    r = await gw.get("/api/logs", format="csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.text)))
    assert tuple(rows[0]) == LOG_CSV_COLUMNS and len(rows) == 13
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["id"] == "r011" and first["cost_total_usd"] == "0.000000011"
    assert first["stream"] == "false" and first["attempts"] == "0"
    r = await gw.get("/api/logs", format="jsonl", limit=4, model="m0")
    assert r.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert [d["id"] for d in lines] == ["r009", "r006", "r003", "r000"]
    assert lines[0]["cost"]["total"] == "0.000000009"
    empty = await gw.get("/api/logs", format="csv", key="nobody")
    assert list(csv.reader(io.StringIO(empty.text))) == [list(LOG_CSV_COLUMNS)]
    usage = await gw.get("/api/usage", group_by="key", format="csv")
    rows = list(csv.reader(io.StringIO(usage.text)))
    assert tuple(rows[0]) == USAGE_CSV_COLUMNS
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["group"] == "vk_1" and row["name"] == "k" and row["requests"] == "12"
    assert Decimal(row["cost_total_usd"]) == sum((x.cost_total for x in records), Decimal(0))
    jl = await gw.get("/api/usage", group_by="provider", format="jsonl")
    assert [json.loads(x)["group"] for x in jl.text.splitlines()] == ["p"]


async def test_logs_need_the_admin_token(gw: Gateway) -> None:
    r = await gw.client.get("/api/logs")
    assert r.status_code == 401
    r = await gw.client.get("/api/usage", headers={"authorization": "Bearer wrong"})
    assert r.status_code == 401
