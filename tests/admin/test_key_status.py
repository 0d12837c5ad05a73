"""Key status says whether the key can make a request now, and how large."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from inprocess import running
from tollway.accounting.bounds import RequestShape, fit_output, request_bound
from tollway.accounting.limits import model_limits
from tollway.config import Budget

MODEL = "claude-opus-4-8"


async def test_status_says_how_large_a_request_may_be_now(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        await gw.key("k", budgets=[Budget(max_limit="1", reset_duration="1d")])
        r = await gw.client.get("/api/virtual-keys/k/status", headers=gw.admin)
        doc = r.json()
        now = doc["request_now"]
        assert doc["usable"] and now["can_request"]
        assert now["max_cost"] == "1" and now["limited_by"] == "virtual key 'k' budget 1d"
        price = gw.services.prices.resolve(MODEL)
        assert price is not None
        shape = RequestShape(80_000, None, 1, False, 0, Decimal(0), 0, "1h", Decimal(1))
        cap = fit_output(shape, price, model_limits(MODEL), Decimal(1))
        assert cap is not None and now["max_output_tokens"] == cap
        bound = request_bound(replace(shape, output_cap=cap), price, model_limits(MODEL))
        assert Decimal(now["worst_case"]) == bound.cost <= 1
        # A budget too small for a Claude Code prompt: not usable now, and it says why.
        await gw.key("tiny", budgets=[Budget(max_limit="0.30", reset_duration="1d")])
        doc = (await gw.client.get("/api/virtual-keys/tiny/status", headers=gw.admin)).json()
        assert not doc["usable"] and not doc["request_now"]["can_request"]
        assert "has $0.30 left" in doc["request_now"]["why"]
        # A smaller request still fits it.
        doc = (await gw.client.get("/api/virtual-keys/tiny/status", headers=gw.admin,
                                   params={"body_bytes": 2000})).json()  # fmt: skip
        assert doc["usable"] and doc["request_now"]["max_output_tokens"] > 1024
