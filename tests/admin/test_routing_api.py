"""/api/routing-rules (stored, applied at once, refused with the field path) and
/api/routing/explain, in-process; the request log names the rule that fired."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from inprocess import Running, running
from tollway.config import Budget

CONFIG = yaml.safe_dump({
    "providers": {"simulated": {"simulated": {"price_as": "anthropic"}},
                  "cheap": {"type": "simulated", "simulated": {"price_as": "anthropic"}}},
    "routing": {"tiers": {"haiku": "cheap/claude-haiku-4-5"},
                "rules": [{"name": "blue-team", "when": {"headers": {"x-team": "blue"}},
                           "targets": [{"to": "cheap/claude-sonnet-4-5"}]}]},
}, sort_keys=False)  # fmt: skip
HAIKU = {"model": "claude-haiku-4-5-20251001", "max_tokens": 20,
         "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
RULE = {"name": "big-to-simulated", "priority": 10, "when": {"tokens": {"min": 1000}},
        "targets": [{"to": "simulated/claude-opus-4-5"}]}  # fmt: skip


async def _served(gw: Running, key: str, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    r = await gw.client.post("/v1/messages", content=json.dumps(body),
                             headers={"x-api-key": key, **headers})  # fmt: skip
    assert r.status_code == 200, r.text
    await gw.services.writer.flush()
    rows = await gw.services.store.query(
        "SELECT provider, served_model, requested_model, routing_rule FROM requests "
        "ORDER BY started_at DESC LIMIT 1"
    )
    return dict(rows[0])


async def test_the_haiku_tier_moves_and_the_log_names_the_rule(tmp_path: Path) -> None:
    async with running(tmp_path, CONFIG) as gw:
        key = await gw.key()
        row = await _served(gw, key, HAIKU)
        assert row == {"provider": "cheap", "served_model": "claude-haiku-4-5",
                       "requested_model": "claude-haiku-4-5-20251001",
                       "routing_rule": "tier:haiku"}  # fmt: skip
        row = await _served(gw, key, {**HAIKU, "model": "claude-sonnet-4-5"})
        assert (row["provider"], row["routing_rule"]) == ("simulated", None)
        row = await _served(gw, key, {**HAIKU, "model": "claude-sonnet-4-5"}, **{"x-team": "blue"})
        assert (row["provider"], row["routing_rule"]) == ("cheap", "blue-team")


async def test_rules_put_through_the_api_apply_at_once_and_are_stored(tmp_path: Path) -> None:
    async with running(tmp_path, CONFIG) as gw:
        key = await gw.key()
        r = await gw.client.put("/api/routing-rules", json={"rules": [RULE]}, headers=gw.admin)
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["order"] == ["big-to-simulated", "blue-team", "tier:haiku"]
        assert doc["stored"] == [RULE]
        big = {**HAIKU, "messages": [{"role": "user", "content": "x" * 5000}]}
        row = await _served(gw, key, big)
        assert (row["provider"], row["served_model"], row["routing_rule"]) == (
            "simulated", "claude-opus-4-5", "big-to-simulated")  # fmt: skip
        stored = await gw.services.store.get_setting("routing_rules")
    assert stored is not None and json.loads(stored)["rules"][0]["name"] == "big-to-simulated"
    async with running(tmp_path, CONFIG) as gw:  # read back at the next start
        r = await gw.client.get("/api/routing-rules", headers=gw.admin)
        assert r.json()["stored"] == [RULE]


async def test_an_invalid_rule_is_refused_with_its_field_path(tmp_path: Path) -> None:
    async with running(tmp_path, CONFIG) as gw:
        cases = [
            ({"rules": [RULE, {**RULE, "name": "x", "targets": [{"to": "nope/m"}]}]},
             "rules.1.targets.0.to", "provider 'nope' is not configured (providers: cheap, "
             "simulated)"),
            ({"rules": [{**RULE, "when": {"client": "emacs"}}]}, "rules.0.when.client.0",
             "Input should be 'claude-code', 'codex', 'gemini-cli', 'cursor' or 'sdk'"),
            ({"rules": [{**RULE, "name": "blue-team"}]}, "rules.0.name",
             "rule name 'blue-team' is already used"),
            ({"rules": [{**RULE, "targets": []}]}, "rules.0.targets",
             "List should have at least 1 item after validation, not 0"),
        ]  # fmt: skip
        for body, field, message in cases:
            r = await gw.client.put("/api/routing-rules", json=body, headers=gw.admin)
            assert r.status_code == 422, r.text
            assert r.json()["error"]["fields"] == [{"field": field, "message": message}]
        r = await gw.client.get("/api/routing-rules", headers=gw.admin)
        assert r.json()["stored"] == []  # nothing refused was kept


async def test_explain_says_which_rule_and_target_and_why(tmp_path: Path) -> None:
    async with running(tmp_path, CONFIG) as gw:
        await gw.key("alice", budgets=[Budget(max_limit="10", reset_duration="1d")])
        r = await gw.client.post("/api/routing/explain", headers=gw.admin, json={
            "key": "alice", "model": "claude-haiku-4-5-20251001",
            "headers": {"user-agent": "claude-cli/2.0.76 (external, cli)"}})  # fmt: skip
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["rule"] == "tier:haiku" and doc["rule_source"] == "tier"
        assert doc["client"] == "claude-code" and doc["budget_used_pct"] == 0.0
        assert doc["matched_because"] == [
            "scope global",
            "model 'claude-haiku-4-5-20251001' matches ['claude-*haiku*']",
        ]
        assert doc["rules_not_matched"] == [
            {"rule": "blue-team", "why": "header x-team is None, not 'blue'"}
        ]
        assert doc["target"] == {
            "provider": "cheap", "model": "claude-haiku-4-5", "translate": None,
            "why": "rule tier:haiku target cheap/claude-haiku-4-5 (weight 1)",
            "keys": [{"name": "simulated", "circuit": "closed", "failures": 0,
                      "reopens_in_s": 0.0, "try": 1}]}  # fmt: skip
        assert (doc["session"], doc["pinned"]) == (None, None)
        session = {"x-claude-code-session-id": "s-9"}
        key = await gw.key("carol")
        r = await gw.client.post("/v1/messages", content=json.dumps(HAIKU),
                                 headers={"x-api-key": key, **session})  # fmt: skip
        assert r.status_code == 200
        r = await gw.client.post("/api/routing/explain", headers=gw.admin, json={
            "key": "carol", "model": "claude-haiku-4-5", "headers": session})  # fmt: skip
        assert r.json()["session"] == "s-9"
        assert r.json()["pinned"] == {"provider": "cheap", "key": "simulated",
                                      "model": "claude-haiku-4-5"}  # fmt: skip
        r = await gw.client.post("/api/routing/explain", headers=gw.admin, json={
            "key": "alice", "model": "gpt-5", "api": "openai_chat"})  # fmt: skip
        doc = r.json()
        assert doc["rule"] is None and doc["target"]["provider"] == "simulated"
        assert doc["target"]["why"] == "by model"
        r = await gw.client.post("/api/routing/explain", headers=gw.admin,
                                 json={"key": "nobody", "model": "x"})  # fmt: skip
        assert r.status_code == 404


async def test_explain_reports_a_refusal(tmp_path: Path) -> None:
    async with running(tmp_path, CONFIG) as gw:
        await gw.key("bob", provider_configs=[{"provider": "simulated"}])
        r = await gw.client.post("/api/routing/explain", headers=gw.admin,
                                 json={"key": "bob", "model": "claude-haiku-4-5"})  # fmt: skip
        doc = r.json()
    assert doc["rule"] == "tier:haiku" and doc["target"] is None
    assert doc["error"] == {"status": 403, "type": "permission_error", "message":
                            "virtual key 'bob' may not use provider 'cheap' (model "
                            "'claude-haiku-4-5'); it may use: simulated"}  # fmt: skip
