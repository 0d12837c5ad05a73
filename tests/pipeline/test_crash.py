"""kill -9 under load, restart, burst: a budget is never spent twice and no settled spend is
lost. The real gateway runs as a subprocess against a loopback upstream that counts what
it served; the reservation journal (storage/journal.py) carries open reservations across
the crash."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import GatewayServer, start_gateway
from tollway.accounting.bounds import read_shape, request_bound
from tollway.accounting.cost import compute_cost
from tollway.accounting.limits import model_limits
from tollway.accounting.pricing import PriceBook
from tollway.accounting.usage import anthropic_usage
from upstream_mock import MockUpstream, RecordedRequest, Reply, anthropic_message

pytestmark = pytest.mark.timeout(300)

MODEL = "claude-haiku-4-5"
BODY = json.dumps(
    {"model": MODEL, "max_tokens": 2000, "messages": [{"role": "user", "content": "hi"}]}
).encode()
# Flush the log rarely: whatever was settled must survive through the journal alone.
EXTRA = {"logging": {"flush_interval_ms": 600000}}


def _worst() -> Decimal:
    price = PriceBook().lookup(MODEL)
    assert price is not None
    return request_bound(read_shape(BODY, "anthropic"), price, model_limits(MODEL)).cost


class Upstream:
    """Answers with the most usage the provider may bill for BODY, after ``delay`` s."""

    def __init__(self, mock: MockUpstream) -> None:
        self.mock = mock
        self.delay = 0.0
        mock.responder = self.reply

    def reply(self, req: RecordedRequest) -> Reply:
        body = json.loads(req.body)
        usage = {"input_tokens": len(req.body) + 1024, "output_tokens": body["max_tokens"],
                 "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}  # fmt: skip
        return Reply(json=anthropic_message(model=MODEL, usage=usage), delay=self.delay)

    def served(self) -> Decimal:
        """What the provider billed: every request it received, in full, even those whose
        caller died before the answer."""
        price = PriceBook().lookup(MODEL)
        total = Decimal(0)
        for req in self.mock.requests:
            usage = anthropic_usage(json.dumps(self.reply(req).json).encode())
            assert usage is not None
            total += compute_cost(usage, price).total
        return total


async def _post(client: httpx.AsyncClient, key: str) -> int:
    try:
        r = await client.post("/v1/messages", content=BODY, headers={"x-api-key": key})
    except httpx.TransportError:
        return 0  # the gateway was killed under it
    return r.status_code


def _status(gw: GatewayServer, key_id: str) -> dict[str, Any]:
    r = httpx.get(f"{gw.base_url}/api/virtual-keys/{key_id}/status", headers=gw.admin_headers())
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_kill_9_under_load_then_a_burst_never_spends_a_budget_twice(tmp_path: Path) -> None:
    worst = _worst()
    limit = worst * Decimal("13.5")
    with MockUpstream() as mock:
        upstream = Upstream(mock)
        gw = start_gateway(mock, tmp_path, EXTRA)
        try:
            created = gw.create_key("crash", budgets=[{"max_limit": str(limit),
                                                      "reset_duration": "1d",
                                                      "shrink_to_fit": False}])  # fmt: skip
            key, key_id = created["key"], created["id"]
            async with httpx.AsyncClient(base_url=gw.base_url, timeout=60) as client:
                # Three requests settle; the log is not flushed, so only the journal has them.
                assert [await _post(client, key) for _ in range(3)] == [200, 200, 200]
                upstream.delay = 30.0
                load = [asyncio.create_task(_post(client, key)) for _ in range(30)]
                await asyncio.to_thread(mock.wait_for_requests, 13, 30.0)
                for _ in range(300):  # until the 402s are answered; ten are in flight
                    if sum(t.done() for t in load) >= 20:
                        break
                    await asyncio.sleep(0.1)
                gw.process.kill()  # SIGKILL: no shutdown, no flush
                gw.process.wait(10)
                statuses = await asyncio.gather(*load)
            assert statuses.count(402) == 20 and statuses.count(0) == 10, statuses
        finally:
            gw.stop()
        upstream.delay = 0.0
        gw = start_gateway(mock, tmp_path, EXTRA)
        try:
            status = _status(gw, key_id)
            [budget] = status["budgets"]
            # The three settled costs (exact) plus the ten in flight at their worst case.
            assert Decimal(budget["spent"]) == 3 * worst + 10 * worst
            assert Decimal(budget["reserved"]) == 0
            async with httpx.AsyncClient(base_url=gw.base_url, timeout=60) as client:
                burst = await asyncio.gather(*(_post(client, key) for _ in range(30)))
            assert burst == [402] * 30
            assert len(mock.requests) == 13
            assert upstream.served() == 13 * worst <= limit
            logs = httpx.get(f"{gw.base_url}/api/logs", params={"key": key_id},
                             headers=gw.admin_headers()).json()  # fmt: skip
            orphans = [r for r in logs["data"] if r["error_type"] == "gateway_restarted"]
            assert len(orphans) == 10
            assert all(Decimal(r["cost"]["total"]) == worst and r["cost_unknown"] for r in orphans)
        finally:
            gw.stop()
        # A clean restart charges nothing again: the journal restarted empty.
        gw = start_gateway(mock, tmp_path, EXTRA)
        try:
            [budget] = _status(gw, key_id)["budgets"]
            assert Decimal(budget["spent"]) == 13 * worst
        finally:
            gw.stop()
