"""Claude Code with the gateway's PreToolUse hook installed from `tollway claude-code
settings`: a denied Bash command is stopped and Claude Code reads the reason, an allowed
one runs; both actions are in the session timeline; `tollway audit verify` passes, then
fails once a row of the log is edited in the database."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from clients import installed
from conftest import GatewayServer
from test_claude_code import assert_keys_swapped, run_claude
from upstream_mock import (
    MockUpstream,
    RecordedRequest,
    Reply,
    anthropic_events,
    anthropic_message,
    text_block,
    tool_use_block,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
MARKER = "tollway-policy-allowed"
REASON = "recursive deletes are not allowed through this gateway"
FINAL = "One command ran, the other was refused."
POLICY = {"tool_policy": {"rules": [
    {"action": "deny", "tool": "Bash", "command": ["rm -rf *"], "reason": REASON},
    {"action": "allow", "tool": "Bash", "command": [f"echo {MARKER}"]},
]}}  # fmt: skip


def _results(body: dict[str, Any]) -> list[dict[str, Any]]:
    last = body["messages"][-1]
    content = last.get("content")
    if last.get("role") != "user" or not isinstance(content, list):
        return []
    return [c for c in content if isinstance(c, dict) and c.get("type") == "tool_result"]


def _script(victim: Path) -> Callable[[RecordedRequest], Reply | None]:
    def reply(req: RecordedRequest) -> Reply | None:
        if req.method != "POST" or req.path != "/v1/messages":
            return None
        body = req.json()
        if "Bash" not in [t.get("name") for t in body.get("tools", [])]:
            return None
        if _results(body):
            blocks = [text_block(FINAL)]
        else:
            blocks = [
                text_block("Two commands."),
                tool_use_block("Bash", {"command": f"rm -rf {victim}", "description": "Delete"},
                               "toolu_deny_0001"),
                tool_use_block("Bash", {"command": f"echo {MARKER}", "description": "Print"},
                               "toolu_allow_0002"),
            ]  # fmt: skip
        model = body.get("model", "claude-opus-4-5")
        if body.get("stream"):
            return Reply(events=anthropic_events(blocks, model=model))
        return Reply(json=anthropic_message(blocks, model=model))

    return reply


def _tollway(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tollway", *args], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)  # fmt: skip


def _session(api: httpx.Client, session: str, requests: int) -> Any:
    """The session's view once the writer has flushed ``requests`` of its requests
    (the request log is written in batches, a moment after each answer)."""
    deadline = time.monotonic() + 10
    while True:
        doc = api.get(f"/api/sessions/{session}").json()
        if doc.get("requests", 0) >= requests or time.monotonic() > deadline:
            return doc
        time.sleep(0.1)


def test_hook_denies_one_command_allows_another_and_the_log_holds(
    gateway_factory: Callable[..., GatewayServer], mock_upstream: MockUpstream, tmp_path: Path
) -> None:
    claude = installed("claude")
    gateway = gateway_factory(POLICY)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("still here")
    mock_upstream.responder = _script(victim)
    vkey = gateway.key("policy-e2e")
    settings = _tollway("claude-code", "settings", "--url", gateway.base_url)
    assert settings.returncode == 0, settings.stderr
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    (home / ".claude" / "settings.json").write_text(settings.stdout)

    result = run_claude(claude, gateway, vkey, home, "-p", "run the two commands")
    assert victim.joinpath("keep.txt").read_text() == "still here"  # rm never ran
    calls = assert_keys_swapped(mock_upstream, vkey)
    answered = [r for r in calls if _results(r.json())]
    assert answered, [r.raw_path for r in calls]
    results = {r["tool_use_id"]: r for r in _results(answered[-1].json())}
    denied, allowed = results["toolu_deny_0001"], results["toolu_allow_0002"]
    text = json.dumps(denied["content"])
    assert denied.get("is_error") is True and REASON in text, denied
    assert MARKER in json.dumps(allowed["content"]) and not allowed.get("is_error"), allowed
    assert FINAL in result["result"]

    session = answered[-1].header("x-claude-code-session-id")
    assert session
    with httpx.Client(base_url=gateway.base_url, headers=gateway.admin_headers()) as api:
        doc = _session(api, session, requests=2)
        acts = {a["id"]: a for a in doc["timeline"] if a["type"] == "action"}
        assert acts["toolu_deny_0001"]["status"] == "denied"
        assert acts["toolu_deny_0001"]["decided_by"] == "policy"
        assert REASON in acts["toolu_deny_0001"]["reason"]
        assert acts["toolu_allow_0002"]["status"] == "executed"
        assert acts["toolu_allow_0002"]["policy"] == "allow"
        assert acts["toolu_deny_0001"]["command"] == f"rm -rf {victim}"
        assert doc["denials"] == 1 and doc["requests"] >= 2
        decisions = api.get("/api/audit/entries", params={"kind": "policy."}).json()
        assert {(e["kind"], e["subject"]) for e in decisions} >= {
            ("policy.deny", "toolu_deny_0001"), ("policy.allow", "toolu_allow_0002")
        }  # fmt: skip
        hook_input = decisions[0]["doc"]
        assert hook_input["session_id"] == session and hook_input["cwd"] == str(home)

    url = ["--url", gateway.base_url, "--admin-token", gateway.admin_token]
    ok = _tollway("audit", "verify", *url)
    assert ok.returncode == 0 and "audit log OK" in ok.stdout, ok.stdout + ok.stderr
    db = gateway.config_path.parent / "t.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE audit_log SET doc = replace(doc, 'rm -rf', 'ls -l') "
                     "WHERE kind = 'action.proposed' AND subject = 'toolu_deny_0001'")  # fmt: skip
        seq = conn.execute("SELECT seq FROM audit_log WHERE kind = 'action.proposed' AND "
                           "subject = 'toolu_deny_0001'").fetchone()[0]  # fmt: skip
    bad = _tollway("audit", "verify", *url)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert f"TAMPERED: row {seq} was changed" in bad.stdout
