"""Claude Code itself through failover and routing rules: the primary answers 529 and a
second Anthropic-type provider serves a Bash tool round trip (Claude Code sees one clean
stream per request, no retries of its own); a tier rule moves the haiku tier."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from clients import installed
from conftest import GatewayServer
from test_claude_code import FINAL_TEXT, MARKER, PERMISSIONS, _bash_round_trip, run_claude
from upstream_mock import DEFAULT_TEXT, MockUpstream, RecordedRequest, Reply, anthropic_error

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
BACKUP_KEY = "sk-ant-backup-secret"


@pytest.fixture(scope="session")
def claude_bin() -> Path:
    return installed("claude")


@pytest.fixture
def backup() -> Iterator[MockUpstream]:
    mock = MockUpstream().start()
    try:
        yield mock
    finally:
        mock.stop()


def _backup_config(backup: MockUpstream, routing: dict[str, Any]) -> dict[str, Any]:
    provider = {"type": "anthropic", "base_url": backup.base_url,
                "keys": [{"name": "main", "value": BACKUP_KEY}]}  # fmt: skip
    return {"providers": {"backup": provider}, "routing": routing}


def _logs(gw: GatewayServer, count: int) -> list[dict[str, Any]]:
    """The newest ``count`` request records, each with its attempts."""
    deadline = time.monotonic() + 15
    with httpx.Client(timeout=10, headers=gw.admin_headers()) as client:
        while True:
            rows = client.get(f"{gw.base_url}/api/logs", params={"limit": 200}).json()["data"]
            if len(rows) >= count or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        return [client.get(f"{gw.base_url}/api/logs/{r['id']}").json() for r in rows]


def _overloaded(req: RecordedRequest) -> Reply | None:
    return anthropic_error(529, "overloaded_error", "Overloaded") if req.method == "POST" else None


def test_bash_round_trip_while_the_primary_answers_529(
    claude_bin: Path, gateway_factory: Any, mock_upstream: MockUpstream,
    backup: MockUpstream, tmp_path: Path,
) -> None:  # fmt: skip
    mock_upstream.responder = _overloaded
    backup.responder = _bash_round_trip
    gw = gateway_factory(_backup_config(backup, {"fallbacks": {"anthropic": ["backup"]}}))
    vkey = gw.key("claude-code-failover")
    flags, extra_env = PERMISSIONS["allowed-tools"]
    result = run_claude(claude_bin, gw, vkey, tmp_path / "home",
                        "-p", f"run echo {MARKER} with the Bash tool", *flags,
                        extra_env=extra_env)  # fmt: skip
    assert result.get("is_error") is False, result
    assert FINAL_TEXT in result["result"]
    served = backup.calls("/v1/messages", "POST")
    tool_turns = [r for r in served if b'"tool_result"' in r.body]
    assert tool_turns and MARKER in tool_turns[-1].body.decode()
    assert all(r.header("x-api-key") == BACKUP_KEY for r in served)
    assert mock_upstream.calls("/v1/messages", "POST"), "the primary was never tried"
    records = _logs(gw, len(served))
    # One gateway record per request Claude Code sent, each a 200 served by the backup:
    # Claude Code never saw the 529s, so it never retried.
    generate = [r for r in records if r["endpoint"] == "/v1/messages"]
    assert len(generate) == len(served), [(r["status"], r["provider"]) for r in records]
    assert {(r["status"], r["provider"]) for r in generate} == {(200, "backup")}
    first = min(generate, key=lambda r: r["started_at"])
    assert [(a["provider"], a["status"]) for a in first["attempts"]] == [
        ("anthropic", 529), ("backup", 200)]  # fmt: skip
    assert first["attempts"][1]["reason"] == "fallback of anthropic"


def test_a_tier_rule_moves_the_haiku_tier(
    claude_bin: Path, gateway_factory: Any, mock_upstream: MockUpstream,
    backup: MockUpstream, tmp_path: Path,
) -> None:  # fmt: skip
    gw = gateway_factory(_backup_config(backup, {"tiers": {"haiku": "backup/claude-haiku-4-5"}}))
    vkey = gw.key("claude-code-haiku")
    result = run_claude(claude_bin, gw, vkey, tmp_path / "home", "-p", "say hi",
                        "--model", "haiku")  # fmt: skip
    assert result.get("is_error") is False, result
    assert DEFAULT_TEXT in result["result"]
    moved = backup.calls("/v1/messages", "POST")
    assert moved and any(b"say hi" in r.body for r in moved)
    assert {r.json()["model"] for r in moved} == {"claude-haiku-4-5"}
    stayed = mock_upstream.calls("/v1/messages", "POST")
    assert not [r for r in stayed if "haiku" in r.json().get("model", "")], [
        r.json().get("model") for r in stayed]  # fmt: skip
    records = [r for r in _logs(gw, len(moved)) if r["provider"] == "backup"]
    assert records and {r["routing_rule"] for r in records} == {"tier:haiku"}
    assert all("haiku" in r["requested_model"] for r in records)
