"""Hostile admin input: bad budgets and limits are refused on every path that writes them,
a bad row already stored never takes the gateway down, nothing an admin sends is a 5xx,
and every admin error has one shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from inprocess import running
from tollway.cli.main import main as cli
from tollway.config import parse_config
from tollway.errors import ConfigError

MSG = b'{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}'
BAD_AMOUNTS = ["abc", "-1", "NaN", "Infinity", "-Infinity", "sNaN", "", " ", "1e99999", -1]
# 1e999 as a JSON number parses to float infinity: it must be refused, not stored.
RAW_HUGE = '{"name": "k", "budgets": [{"max_limit": 1e999, "reset_duration": "1d"}]}'


def assert_admin_error(r: Any, status: int, *, field: str | None = None) -> dict[str, Any]:
    """The one admin error shape: {"error": {"type", "message", ["fields"]}}, JSON."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    doc: dict[str, Any] = r.json()
    assert set(doc) == {"error"}, doc
    err = doc["error"]
    assert isinstance(err["type"], str) and err["type"]
    assert isinstance(err["message"], str) and err["message"]
    if field is not None:
        assert field in err["message"], err
        assert any(f["field"] == field for f in err["fields"]), err
    return err


@pytest.mark.parametrize("amount", BAD_AMOUNTS)
async def test_bad_max_limit_is_a_422_naming_the_field(tmp_path: Path, amount: Any) -> None:
    async with running(tmp_path) as gw:
        budget = {"max_limit": amount, "reset_duration": "1d"}
        for path, body, field in (
            ("/api/virtual-keys", {"name": "k", "budgets": [budget]}, "budgets.0.max_limit"),
            ("/api/teams", {"name": "t", "budgets": [budget]}, "budgets.0.max_limit"),
            ("/api/customers", {"name": "c", "budgets": [budget]}, "budgets.0.max_limit"),
            ("/api/virtual-keys",
             {"name": "k", "provider_configs": [{"provider": "*", "budgets": [budget]}]},
             "provider_configs.0.budgets.0.max_limit"),
            ("/api/virtual-keys", {"name": "k", "session_budget": {"max_limit": amount}},
             "session_budget.max_limit"),
        ):  # fmt: skip
            r = await gw.client.post(path, json=body, headers=gw.admin)
            assert_admin_error(r, 422, field=field)
        ok = await gw.client.post("/api/teams", json={"name": "t"}, headers=gw.admin)
        r = await gw.client.patch(f"/api/teams/{ok.json()['id']}", json={"budgets": [budget]},
                                  headers=gw.admin)  # fmt: skip
        assert_admin_error(r, 422, field="budgets.0.max_limit")
        r = await gw.client.get("/api/budgets", headers=gw.admin)
        assert r.status_code == 200 and r.json() == []


async def test_json_infinity_and_huge_limits_are_refused(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        headers = {**gw.admin, "content-type": "application/json"}
        r = await gw.client.post("/api/virtual-keys", content=RAW_HUGE, headers=headers)
        assert_admin_error(r, 422, field="budgets.0.max_limit")
        for raw in ("Infinity", "NaN", "-Infinity", "1e16", "1E+400"):
            body = RAW_HUGE.replace("1e999", raw)
            r = await gw.client.post("/api/virtual-keys", content=body, headers=headers)
            assert r.status_code == 422, (raw, r.text)
        rl = {"name": "k", "rate_limit": {"request_max_limit": 10**30}}
        r = await gw.client.post("/api/virtual-keys", json=rl, headers=gw.admin)
        assert_admin_error(r, 422, field="rate_limit.request_max_limit")
        weight = '{"name":"k","provider_configs":[{"provider":"*","weight":1e999}]}'
        r = await gw.client.post("/api/virtual-keys", content=weight, headers=headers)
        assert_admin_error(r, 422, field="provider_configs.0.weight")
        assert (await gw.client.get("/api/virtual-keys", headers=gw.admin)).json() == []


async def test_good_limits_are_exact_decimals(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        body = {"name": "k", "budgets": [{"max_limit": "0.1", "reset_duration": "1d"},
                                         {"max_limit": 0, "reset_duration": "1M"}]}  # fmt: skip
        r = await gw.client.post("/api/virtual-keys", json=body, headers=gw.admin)
        assert r.status_code == 201, r.text
        assert [b["max_limit"] for b in r.json()["budgets"]] == ["0.1", "0"]
        status = (await gw.client.get("/api/budgets", headers=gw.admin)).json()
        assert sorted(s["max_limit"] for s in status) == ["0", "0.1"]


@pytest.mark.parametrize("amount", ["abc", "-1", "NaN", "Infinity"])
async def test_a_bad_stored_row_does_not_take_down_the_team(tmp_path: Path, amount: str) -> None:
    """A row written before validation (or by hand) is read back without a 5xx: the bad
    budget is set aside with a warning, every other limit of the team still holds."""
    async with running(tmp_path) as gw:
        team = (await gw.client.post("/api/teams", json={"name": "t"}, headers=gw.admin)).json()
        secret = await gw.key("alice", team_id=team["id"])
        other = await gw.key("bob")
        doc = await gw.services.store.get_entity("team", team["id"])
        assert doc is not None
        doc["budgets"] = [{"max_limit": amount, "reset_duration": "1d"},
                          {"max_limit": "0", "reset_duration": "1M"}]  # fmt: skip
        await gw.services.store.put_entity("team", doc)
        await gw.services.registry.refresh()
        r = await gw.client.post("/v1/messages", content=MSG, headers={"x-api-key": secret})
        # the team's valid $0 monthly budget still refuses: nothing was dropped but the bad one
        assert r.status_code == 402, r.text
        assert "team 't' budget 1M" in r.json()["error"]["message"]
        r = await gw.client.post("/v1/messages", content=MSG, headers={"x-api-key": other})
        assert r.status_code == 200, r.text
        r = await gw.client.get("/api/budgets", headers=gw.admin)
        assert r.status_code == 200
        assert [s["budget_id"] for s in r.json()] == [f"team:{team['id']}/1M"]
        r = await gw.client.get(f"/api/teams/{team['id']}", headers=gw.admin)
        assert r.status_code == 200
        r = await gw.client.get("/api/teams", headers=gw.admin)
        assert r.status_code == 200 and len(r.json()) == 1
        await gw.services.writer.flush()
        logged = await gw.services.store.query("SELECT status FROM requests ORDER BY status")
        assert [row["status"] for row in logged] == [200, 402]


async def test_a_stored_key_row_that_is_garbage_spares_the_others(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        good = await gw.key("good")
        await gw.services.store.put_entity(
            "virtual_key", {"id": "vk_bad", "name": "bad", "budgets": "nope"}
        )
        await gw.services.registry.refresh()
        r = await gw.client.post("/v1/messages", content=MSG, headers={"x-api-key": good})
        assert r.status_code == 200
        assert (await gw.client.get("/api/budgets", headers=gw.admin)).status_code == 200
        r = await gw.client.get("/api/virtual-keys", headers=gw.admin)
        assert r.status_code == 200 and [k["name"] for k in r.json()] == ["good"]


@pytest.mark.parametrize("amount", ["abc", "-1", "NaN", "Infinity", "1e999"])
def test_config_file_refuses_bad_limits(amount: str) -> None:
    text = f"teams: [{{name: t, budgets: [{{max_limit: '{amount}', reset_duration: 1d}}]}}]"
    with pytest.raises(ConfigError, match=r"line 1: teams\.0\.budgets\.0\.max_limit"):
        parse_config(text)
    with pytest.raises(ConfigError, match=r"max_limit"):
        parse_config(f"virtual_keys: [{{name: k, session_budget: {{max_limit: {amount}}}}}]")
    with pytest.raises(ConfigError, match=r"request_max_limit"):
        parse_config(f"customers: [{{name: c, rate_limit: {{request_max_limit: {amount}}}}}]")


@pytest.mark.parametrize("amount", ["abc", "-1", "nan", "inf", "1e999"])
def test_cli_refuses_bad_limits(
    tmp_path: Path, amount: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    assert cli(["keys", "create", "k", "--db", db, f"--budget={amount}/1d"]) == 2
    assert "--budget" in capsys.readouterr().err
    assert cli(["keys", "create", "k", "--db", db, f"--session-budget={amount}"]) == 2
    assert "session" in capsys.readouterr().err
    assert cli(["keys", "list", "--db", db]) == 0


async def test_hostile_queries_are_4xx(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        for path, field in (
            ("/api/logs?min_cost=1e999", "query.min_cost"),
            ("/api/logs?min_cost=NaN", "query.min_cost"),
            ("/api/usage?to=4.04e16", "query.to"),
            ("/api/usage?from=-4.04e16", "query.from"),
            ("/api/logs?from=1e309", "query.from"),
            ("/api/logs?to=99999-01-01", "query.to"),
            ("/api/logs?status=1e999", "query.status"),
            ("/api/logs?limit=99999999999999999999999", "query.limit"),
        ):
            r = await gw.client.get(path, headers=gw.admin)
            assert_admin_error(r, 422, field=field)


def _nested(depth: int) -> str:
    return '{"name": "x", "budgets": ' + "[" * depth + "]" * depth + "}"


async def test_deeply_nested_json_is_a_4xx_everywhere(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        headers = {**gw.admin, "content-type": "application/json"}
        for method, path in (
            ("POST", "/api/virtual-keys"), ("POST", "/api/teams"), ("PUT", "/api/providers"),
            ("PUT", "/api/pricing/m"), ("POST", "/api/budgets/x/top-up"),
        ):  # fmt: skip
            for depth in (1_000, 100_000):
                r = await gw.client.request(method, path, content=_nested(depth), headers=headers)
                err = assert_admin_error(r, 422)
                assert "deep" in err["message"]
        r = await gw.client.post("/api/teams", content="[" * 50 + "]" * 50, headers=headers)
        assert r.status_code == 422


async def test_every_admin_error_has_one_shape(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        c = gw.client
        assert_admin_error(await c.get("/api/teams"), 401)
        assert_admin_error(await c.get("/api/nope", headers=gw.admin), 404)
        assert_admin_error(await c.delete("/api/budgets", headers=gw.admin), 405)
        assert_admin_error(await c.get("/api/teams/missing", headers=gw.admin), 404)
        as_json = {**gw.admin, "content-type": "application/json"}
        r = await c.post("/api/teams", content=b"{not json", headers=as_json)
        assert_admin_error(r, 422)
        r = await c.post("/api/teams", json={"name": "x", "nope": 1}, headers=gw.admin)
        assert_admin_error(r, 422, field="nope")
        r = await c.put("/api/pricing/m", json={"input": "-1"}, headers=gw.admin)
        assert_admin_error(r, 422, field="input")
        r = await c.post("/api/budgets/none/top-up", json={"amount": "1e999"}, headers=gw.admin)
        assert_admin_error(r, 422, field="amount")
        big = json.dumps({"name": "x" * (2 * 1024 * 1024)})
        r = await c.post("/api/teams", content=big, headers=as_json)
        assert_admin_error(r, 413)


@pytest.mark.parametrize(
    ("provider", "field"),
    [
        ({"base_url": "not a url"}, "anthropic.base_url"),
        ({"base_url": "ftp://127.0.0.1"}, "anthropic.base_url"),
        ({"base_url": "http://[::1"}, "anthropic.base_url"),
        ({"base_url": "http://127.0.0.1:99999"}, "anthropic.base_url"),
        ({"timeout_s": 12345.678}, "anthropic.timeout_s"),  # sent as 1e999
        ({"keys": [{"value": "sk-x", "weight": "Infinity"}]}, "anthropic.keys.0.weight"),
        ({"keys": [{"value": ""}]}, "anthropic.keys.0.value"),
    ],
)
async def test_hostile_provider_configs_are_422(
    tmp_path: Path, provider: dict[str, Any], field: str
) -> None:
    async with running(tmp_path) as gw:
        body = json.dumps({"anthropic": provider}).replace("12345.678", "1e999")
        headers = {**gw.admin, "content-type": "application/json"}
        r = await gw.client.put("/api/providers", content=body, headers=headers)
        assert_admin_error(r, 422, field=field)
        r = await gw.client.put("/api/providers", json={"a/b": {"type": "simulated"}},
                                headers=gw.admin)  # fmt: skip
        assert_admin_error(r, 422)
        assert [
            p["name"] for p in (await gw.client.get("/api/providers", headers=gw.admin)).json()
        ] == ["simulated"]
        r = await gw.client.post("/v1/messages", content=MSG, headers={"x-api-key": await gw.key()})
        assert r.status_code == 200
