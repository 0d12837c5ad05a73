"""The PreToolUse hook endpoint and the audit admin API, in-process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from audit_scenarios import _anthropic_tool_stream, record
from audit_wire import WIRE, observed

from inprocess import running
from tollway.audit import store as sql
from tollway.audit.hook import PolicyBook
from tollway.audit.policy import ToolPolicy

CONFIG = """
providers: {simulated: {}}
teams: [{name: platform}]
tool_policy:
  rules:
    - {action: deny, tool: Bash, command: ["rm -rf *"], reason: "no recursive deletes"}
    - {action: allow, tool: Bash, command: ["echo *"]}
    - {action: deny, tool: "Write", paths_outside: "{cwd}"}
  teams:
    platform: {rules: [{action: ask, tool: "WebFetch"}]}
"""
HOOK = "/hooks/claude-code/pre-tool-use"


RECORDED = json.loads((WIRE / "claude_hook_pretooluse.json").read_text())


def _input(tool: str, args: dict[str, Any], use_id: str = "toolu_1") -> dict[str, Any]:
    """The PreToolUse input Claude Code 2.1.197 posted to a loopback recorder, with another
    tool call in it."""
    body: dict[str, Any] = dict(RECORDED["request"]["body"])
    body.update({"session_id": "sess-1", "cwd": "/w/p", "tool_name": tool, "tool_input": args,
                 "tool_use_id": use_id})  # fmt: skip
    return body


async def test_hook_answers_allow_deny_ask_and_defer(tmp_path: Path) -> None:
    async with running(tmp_path, CONFIG) as gw:
        teams = (await gw.client.get("/api/teams", headers=gw.admin)).json()
        key = await gw.key("alice", team_id=teams[0]["id"])
        headers = {"x-api-key": key}

        async def ask(tool: str, args: dict[str, Any], use_id: str) -> Any:
            r = await gw.client.post(HOOK, json=_input(tool, args, use_id), headers=headers)
            assert r.status_code == 200
            return r.json()

        reason = "Tollway tool policy (rules[0]): no recursive deletes"
        assert await ask("Bash", {"command": "rm -rf /"}, "t1") == {"hookSpecificOutput": {
            "hookEventName": "PreToolUse", "permissionDecision": "deny",
            "permissionDecisionReason": reason}}  # fmt: skip
        allowed = await ask("Bash", {"command": "echo hi"}, "t2")
        assert allowed["hookSpecificOutput"]["permissionDecision"] == "allow"
        assert await ask("Bash", {"command": "make"}, "t3") == {}  # no rule: Claude Code decides
        write = await ask("Write", {"file_path": "/etc/passwd", "content": "x"}, "t4")
        assert write["hookSpecificOutput"]["permissionDecisionReason"] == (
            "Tollway tool policy (rules[2]): Write names a path outside {cwd}"
        )
        fetch = await ask("WebFetch", {"url": "https://example.com"}, "t5")
        assert fetch["hookSpecificOutput"]["permissionDecision"] == "ask"
        await gw.services.audit.flush()
        kinds = [(e.kind, e.subject) async for e in sql.entries(gw.services.store, kinds="policy")]
        metrics = (await gw.client.get("/metrics")).text
        assert 'tollway_tool_policy_decisions_total{decision="deny"} 2.0' in metrics
        assert kinds == [("policy.deny", "t1"), ("policy.allow", "t2"), ("policy.defer", "t3"),
                         ("policy.deny", "t4"), ("policy.ask", "t5")]  # fmt: skip


async def test_hook_without_a_valid_key_denies_with_the_reason(tmp_path: Path) -> None:
    async with running(tmp_path, CONFIG) as gw:
        for headers in ({}, {"x-api-key": "tw-" + "x" * 40}):
            r = await gw.client.post(HOOK, json=_input("Bash", {"command": "echo hi"}),
                                     headers=headers)  # fmt: skip
            out = r.json()["hookSpecificOutput"]
            assert r.status_code == 200 and out["permissionDecision"] == "deny"
            assert out["permissionDecisionReason"].startswith(
                "Tollway refused the tool-policy hook: "
            )
        for bad in (b"not json", b'{"tool_name":' + b"[" * 5000):  # nesting: no 500
            r = await gw.client.post(HOOK, content=bad, headers={"x-api-key": "k"})
            assert r.status_code == 400, r.text


async def test_policy_through_the_admin_api_is_validated_audited_and_applied(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, CONFIG) as gw:
        key = await gw.key("bob")
        bad = {"rules": [{"action": "deny", "tool": "Bash", "command": ["regex:("]}]}
        r = await gw.client.put("/api/tool-policy", json=bad, headers=gw.admin)
        assert r.status_code == 422
        assert r.json()["error"]["message"].startswith("tool_policy.rules.0.command: ")
        new = {"default": "deny", "keys": {"bob": {"rules": [{"action": "allow", "tool": "Read"}]}}}
        r = await gw.client.put("/api/tool-policy", json=new, headers=gw.admin)
        assert r.status_code == 200 and r.json()["stored"] is True
        r = await gw.client.post(HOOK, json=_input("Bash", {"command": "echo hi"}),
                                 headers={"x-api-key": key})  # fmt: skip
        assert r.json()["hookSpecificOutput"]["permissionDecisionReason"] == (
            "Tollway tool policy: Bash is not allowed by any rule (default: deny)"
        )
        got = (await gw.client.get("/api/tool-policy", headers=gw.admin)).json()
        assert got["stored"] is True and got["policy"]["default"] == "deny"
        entries = (await gw.client.get("/api/audit/entries", params={"kind": "admin."},
                                       headers=gw.admin)).json()  # fmt: skip
        assert [(e["kind"], e["actor"]) for e in entries] == [
            ("admin.tool_policy.replace", "admin-api")
        ]
        assert entries[0]["doc"]["before"]["rules"][0]["reason"] == "no recursive deletes"
        assert entries[0]["doc"]["after"]["default"] == "deny"


async def test_admin_changes_are_chained_with_before_and_after(tmp_path: Path) -> None:
    async with running(tmp_path, CONFIG) as gw:
        r = await gw.client.post("/api/virtual-keys", json={"name": "ci"}, headers=gw.admin)
        created = r.json()
        await gw.client.patch(f"/api/virtual-keys/{created['id']}",
                              json={"budgets": [{"max_limit": 5, "reset_duration": "1d"}]},
                              headers=gw.admin)  # fmt: skip
        await gw.client.delete(f"/api/virtual-keys/{created['id']}", headers=gw.admin)
        entries = (await gw.client.get("/api/audit/entries", params={"kind": "admin."},
                                       headers=gw.admin)).json()  # fmt: skip
        assert [(e["kind"], e["actor"], e["subject"]) for e in entries] == [
            ("admin.virtual_key.create", "admin-api", created["id"]),
            ("admin.virtual_key.update", "admin-api", created["id"]),
            ("admin.virtual_key.revoke", "admin-api", created["id"]),
        ]
        update = entries[1]["doc"]
        assert update["before"]["budgets"] == []
        assert update["after"]["budgets"][0]["max_limit"] == "5"
        assert "key_hash" not in json.dumps(entries) and created["key"] not in json.dumps(entries)
        report = (await gw.client.get("/api/audit/verify", headers=gw.admin)).json()
        assert report["ok"] is True and report["entries"] == 3 and report["signed_through"] == 3
        pem = (await gw.client.get("/api/audit/public-key", headers=gw.admin)).json()["pem"]
        assert pem.startswith("-----BEGIN PUBLIC KEY-----")


async def test_a_recorded_denial_settles_the_action(tmp_path: Path) -> None:
    """The recorded hook call, answered deny, and the tool_result Claude Code sent next."""
    async with running(tmp_path, CONFIG) as gw:
        key = await gw.key("alice")
        body = dict(RECORDED["request"]["body"], tool_input={"command": "rm -rf /tmp/x"})
        r = await gw.client.post(HOOK, json=body, headers={"x-api-key": key})
        assert r.json()["hookSpecificOutput"]["permissionDecision"] == "deny"
        session = body["session_id"]
        stream = _anthropic_tool_stream("toolu_rec_1", "Bash", {"command": "rm -rf /tmp/x"})
        audit = gw.services.audit
        audit.submit(record("q1", 1.8e9, session), "anthropic", b"{}",
                     observed("anthropic", stream))  # fmt: skip
        result = dict(RECORDED["tool_result"], content=r.json()["hookSpecificOutput"]
                      ["permissionDecisionReason"])  # fmt: skip
        follow = {"messages": [{"role": "user", "content": [result]}]}
        audit.submit(record("q2", 1.8e9 + 1, session), "anthropic", json.dumps(follow).encode(),
                     None)  # fmt: skip
        await audit.flush()
        acts = await sql.actions(gw.services.store, session)
        assert [(a["id"], a["status"], a["decided_by"], a["reason"]) for a in acts] == [
            ("toolu_rec_1", "denied", "policy",
             "Tollway tool policy (rules[0]): no recursive deletes"),
        ]  # fmt: skip


async def test_a_policy_stored_by_another_process_is_picked_up(tmp_path: Path) -> None:
    async with running(tmp_path, CONFIG) as gw:
        other = PolicyBook(ToolPolicy())  # another gateway on the same database
        await other.replace(gw.services.store, {"default": "ask"})
        await gw.services.policy.load(gw.services.store)  # what its refresh loop runs
        assert gw.services.policy.policy.default == "ask" and gw.services.policy.stored
