"""Config as code: declared customers, teams and keys are created or updated at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from inprocess import running
from tollway.config import parse_config
from tollway.errors import ConfigError

DECLARED = "tw-declared-key-for-gitops-0123456789abcdef"
CONFIG = """
providers: {simulated: {simulated: {price_as: anthropic}}}
customers:
  - name: acme
    budgets: [{max_limit: 100, reset_duration: 1M, calendar_aligned: true}]
teams:
  - name: platform
    customer: acme
    budgets: [{max_limit: 10, reset_duration: 1d}]
virtual_keys:
  - name: ci-bot
    value: env.TW_TEST_DECLARED
    team: platform
    rate_limit: {request_max_limit: 100}
"""
MSG = b'{"model":"claude-haiku-4-5","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}'


async def test_declared_entities_are_created_and_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TW_TEST_DECLARED", DECLARED)
    async with running(tmp_path, CONFIG) as gw:
        keys = (await gw.client.get("/api/virtual-keys", headers=gw.admin)).json()
        assert [(k["name"], k["managed_by_config"]) for k in keys] == [("ci-bot", True)]
        r = await gw.client.post("/v1/messages", content=MSG, headers={"x-api-key": DECLARED})
        assert r.status_code == 200
        key_id = keys[0]["id"]
        await gw.services.writer.flush()
    # A restart with a changed declaration updates the same entities, keeping ids.
    changed = CONFIG.replace("request_max_limit: 100", "request_max_limit: 7")
    async with running(tmp_path, changed) as gw:
        keys = (await gw.client.get("/api/virtual-keys", headers=gw.admin)).json()
        assert keys[0]["id"] == key_id and keys[0]["rate_limit"]["request_max_limit"] == 7
        status = (
            await gw.client.get(f"/api/virtual-keys/{key_id}/status", headers=gw.admin)
        ).json()
        scopes = {b["scope"].split(":")[0] for b in status["budgets"]}
        assert scopes == {"team", "customer"}
        assert any(float(b["spent"]) > 0 for b in status["budgets"])  # spend kept across restart


def test_a_declared_key_must_look_like_a_virtual_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="line 3"):
        parse_config("virtual_keys:\n  - name: x\n    value: short\n")
