"""Budgets are hard caps under concurrency; rate limits and session caps at admission."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from inprocess import Running, running
from tollway.accounting.bounds import read_shape, request_bound
from tollway.accounting.limits import model_limits
from tollway.config import Budget, RateLimit, SessionBudget

# Billed at Anthropic's prices: the simulated provider alone costs nothing.
CONFIG = (
    "providers:\n  simulated:\n"
    "    simulated: {latency_ms: 40, output_tokens: 12, price_as: anthropic}\n"
)
MSG = b'{"model":"claude-sonnet-4-5","max_tokens":12,"messages":[{"role":"user","content":"hi"}]}'


async def _entity(gw: Running, path: str, doc: dict[str, object]) -> str:
    r = await gw.client.post(f"/api/{path}", json=doc, headers=gw.admin)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _budgets(gw: Running) -> dict[str, dict[str, str]]:
    r = await gw.client.get("/api/budgets", headers=gw.admin)
    return {b["budget_id"]: b for b in r.json()}


async def test_200_concurrent_requests_never_overspend_any_level(tmp_path: Path) -> None:
    async with running(tmp_path, CONFIG) as gw:
        worst, one = _worst(gw), await _cost(gw)

        def usd(n: int) -> str:  # room for n real requests once one worst case is held back
            return str(worst + n * one)

        monthly = {"max_limit": usd(50), "reset_duration": "1M", "calendar_aligned": True}
        cus = await _entity(gw, "customers", {"name": "acme", "budgets": [monthly]})
        daily = {"max_limit": usd(30), "reset_duration": "1d"}
        team_a = await _entity(gw, "teams", {"name": "a", "customer_id": cus, "budgets": [daily]})
        team_b = await _entity(gw, "teams", {"name": "b", "customer_id": cus})
        keys = [
            await gw.key(
                "k1",
                team_id=team_a,
                budgets=[Budget(max_limit=usd(12), reset_duration="1h")],
            ),  # fmt: skip
            await gw.key("k2", team_id=team_a),
            await gw.key("k3", team_id=team_b),
        ]

        async def call(i: int) -> int:
            headers = {"x-api-key": keys[i % 3]}
            r = await gw.client.post("/v1/messages", content=MSG, headers=headers)
            if r.status_code == 402:
                assert r.headers["x-should-retry"] == "false"
                assert r.json()["error"]["type"] == "billing_error"
                assert "budget" in r.json()["error"]["message"]
            return r.status_code

        statuses = await asyncio.gather(*(call(i) for i in range(200)))
        assert set(statuses) <= {200, 402} and 200 in statuses
        # Then drain every key: the budgets are usable up to one worst case of their limit.
        for _round in range(200):
            batch = await asyncio.gather(*(call(i) for i in range(3)))
            statuses += batch
            if set(batch) == {402}:
                break
        assert statuses.count(200) >= 45
        await gw.services.writer.flush()
        budgets = await _budgets(gw)
        for b in budgets.values():
            assert Decimal(b["spent"]) <= Decimal(b["max_limit"]), b
            assert Decimal(b["reserved"]) == 0, b
        # The log agrees with the ledger: recorded spend never exceeds any limit.
        rows = await gw.services.store.query(
            "SELECT team_id, vk_name, SUM(cost_total_pico) AS pico FROM requests "
            "WHERE vk_name != 'probe' GROUP BY team_id, vk_name"
        )
        per_team: dict[str, Decimal] = {}
        total = Decimal(0)
        for row in rows:
            spent = Decimal(row["pico"]) / Decimal(10**12)
            per_team[row["team_id"]] = per_team.get(row["team_id"], Decimal(0)) + spent
            total += spent
            if row["vk_name"] == "k1":
                assert spent <= Decimal(usd(12))
        assert per_team[team_a] <= Decimal(usd(30))
        assert Decimal(usd(50)) - worst <= total <= Decimal(usd(50))


async def test_a_request_that_fits_is_admitted_when_nothing_is_in_flight(tmp_path: Path) -> None:
    async with running(tmp_path, CONFIG) as gw:
        worst, cost = _worst(gw), await _cost(gw)
        limit = worst + 5 * cost
        key = await gw.key("solo", budgets=[Budget(max_limit=str(limit), reset_duration="1d")])
        statuses = []
        for _ in range(40):
            r = await gw.client.post("/v1/messages", content=MSG, headers={"x-api-key": key})
            statuses.append(r.status_code)
            if r.status_code == 402:
                break
        solo = next(b for b in (await _budgets(gw)).values() if b["scope"].startswith("vk:"))
        # Sequential requests are admitted until the worst case no longer fits, and only then.
        assert statuses[-1] == 402 and Decimal(solo["remaining"]) < worst
        assert statuses.count(200) == 6  # the worst case fits until 6 real costs are spent


async def _cost(gw: Running) -> Decimal:
    """The real cost of one MSG request, from a probe key's log record."""
    key = await gw.key("probe")
    r = await gw.client.post("/v1/messages", content=MSG, headers={"x-api-key": key})
    assert r.status_code == 200
    await gw.services.writer.flush()
    rows = await gw.services.store.query("SELECT cost_total_pico FROM requests")
    return Decimal(rows[0]["cost_total_pico"]) / Decimal(10**12)


def _worst(gw: Running) -> Decimal:
    """The reservation one MSG request makes (worst-case input and output)."""
    price = gw.services.prices.lookup("claude-sonnet-4-5")
    assert price is not None
    return request_bound(
        read_shape(MSG, "anthropic"), price, model_limits("claude-sonnet-4-5")
    ).cost


async def test_402_message_names_level_spend_and_reset(tmp_path: Path) -> None:
    async with running(tmp_path, CONFIG) as gw:
        key = await gw.key("tiny", budgets=[Budget(max_limit="0.000001", reset_duration="1d",
                                                   calendar_aligned=True)])  # fmt: skip
        r = await gw.client.post("/v1/messages", content=MSG, headers={"x-api-key": key})
        assert r.status_code == 402
        message = r.json()["error"]["message"]
        assert "virtual key 'tiny' budget 1d" in message and "of $0.000001" in message
        assert "resets" in message and "T00:00" in message
        r = await gw.client.post("/v1/chat/completions", content=MSG,
                                 headers={"authorization": f"Bearer {key}"})  # fmt: skip
        assert r.status_code == 402 and r.json()["error"]["type"] == "insufficient_quota"


async def test_request_rate_limit_is_429_with_retry_after(tmp_path: Path) -> None:
    async with running(tmp_path, CONFIG) as gw:
        key = await gw.key(
            "rl", rate_limit=RateLimit(request_max_limit=3, request_reset_duration="1m")
        )
        statuses = []
        for _ in range(5):
            r = await gw.client.post("/v1/messages", content=MSG, headers={"x-api-key": key})
            statuses.append(r.status_code)
        assert statuses[:3] == [200, 200, 200] and statuses[3] == 429
        assert int(r.headers["retry-after"]) >= 1
        assert "requests" in r.json()["error"]["message"]


SLOW = "providers: {simulated: {simulated: {latency_ms: 200}}}\n"


@pytest.mark.parametrize("wait", [0, 5])
async def test_concurrency_limit_queues_then_refuses(tmp_path: Path, wait: int) -> None:
    """Past the limit a request waits for a slot (up to concurrency_wait_s), then 429s."""
    config = SLOW + f"gateway: {{concurrency_wait_s: {wait}}}\n"
    async with running(tmp_path, config) as gw:
        key = await gw.key("cc", rate_limit=RateLimit(concurrency_max=2))
        peak = 0

        async def call() -> httpx.Response:
            return await gw.client.post("/v1/messages", content=MSG, headers={"x-api-key": key})

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, gw.services.slots.in_flight(f"vk:{_id(gw, 'cc')}"))
                await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch())
        answers = await asyncio.gather(*(call() for _ in range(6)))
        watcher.cancel()
        statuses = [r.status_code for r in answers]
        if wait == 0:
            assert sorted(statuses) == [200, 200, 429, 429, 429, 429]
            refused = next(r for r in answers if r.status_code == 429)
            assert refused.headers["retry-after"] == "1"
            message = refused.json()["error"]["message"]
            assert "virtual key 'cc'" in message and "at most 2 requests at once" in message
        else:
            assert statuses == [200] * 6  # they took turns
        assert peak == 2
        assert gw.services.slots.in_flight(f"vk:{_id(gw, 'cc')}") == 0


def _id(gw: Running, name: str) -> str:
    return next(k.id for k in gw.services.registry.snapshot.keys.values() if k.name == name)


async def test_session_budget_breaks_a_runaway_agent(tmp_path: Path) -> None:
    async with running(tmp_path, CONFIG) as gw:
        limit = _worst(gw) + 3 * await _cost(gw)
        key = await gw.key("agent", session_budget=SessionBudget(max_limit=str(limit)))
        statuses = []
        for _ in range(8):
            headers = {"x-api-key": key, "x-claude-code-session-id": "s-1"}
            r = await gw.client.post("/v1/messages", content=MSG, headers=headers)
            statuses.append(r.status_code)
        assert 402 in statuses and statuses[0] == 200
        assert "session s-1 of virtual key 'agent' budget" in r.json()["error"]["message"]
        other = {"x-api-key": key, "x-claude-code-session-id": "s-2"}
        r = await gw.client.post("/v1/messages", content=MSG, headers=other)
        assert r.status_code == 200


async def test_top_up_and_reset_are_recorded(tmp_path: Path) -> None:
    async with running(tmp_path, CONFIG) as gw:
        key = await gw.key("topup", budgets=[Budget(max_limit="0.000001", reset_duration="1d")])
        r = await gw.client.post("/v1/messages", content=MSG, headers={"x-api-key": key})
        assert r.status_code == 402
        bid = f"vk:{_id(gw, 'topup')}/1d"
        r = await gw.client.post(f"/api/budgets/{bid}/top-up", json={"amount": "1", "actor": "ops"},
                                 headers=gw.admin)  # fmt: skip
        assert r.status_code == 200 and r.json()["top_up"] == "1"
        r = await gw.client.post("/v1/messages", content=MSG, headers={"x-api-key": key})
        assert r.status_code == 200
        r = await gw.client.post(
            f"/api/budgets/{bid}/reset", json={"actor": "ops"}, headers=gw.admin
        )
        assert r.status_code == 200 and Decimal(r.json()["spent"]) == 0
        events = (await gw.client.get(f"/api/budgets/{bid}/events", headers=gw.admin)).json()
        assert [(e["action"], e["actor"]) for e in events] == [("top_up", "ops"), ("reset", "ops")]


async def test_session_budgets_are_bounded(tmp_path: Path) -> None:
    async with running(tmp_path, CONFIG) as gw:
        gw.services.admission.max_sessions = 3
        key = await gw.key("many", session_budget=SessionBudget(max_limit="5"))
        for i in range(5):
            headers = {"x-api-key": key, "x-claude-code-session-id": f"s-{i}"}
            r = await gw.client.post("/v1/messages", content=MSG, headers=headers)
            assert r.status_code == 200
        sessions = [k[1] for k in gw.services.admission._sessions]
        assert sessions == ["s-2", "s-3", "s-4"]
