"""The CLI works on the database directly; flags become budgets, limits and grants."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tollway.cli.main import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_keys_create_with_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    out = _run(capsys, "teams", "create", "platform", "--budget", "200/1d", "--db", db)
    team = json.loads(out)["id"]
    out = _run(
        capsys, "keys", "create", "alice", "--team", team, "--budget", "50/1d", "--budget",
        "500/1M", "--calendar", "--rpm", "60", "--tpm", "100000", "--concurrency", "3",
        "--models", "claude-haiku-*", "--session-budget", "5", "--db", db,
    )  # fmt: skip
    doc = json.loads(out.split("\n\nThe key")[0])
    assert doc["key"].startswith("tw-") and "export ANTHROPIC_API_KEY=" in out
    windows = [(b["max_limit"], b["reset_duration"], b["calendar_aligned"]) for b in doc["budgets"]]
    assert windows == [("50", "1d", True), ("500", "1M", True)]
    assert doc["rate_limit"]["request_max_limit"] == 60
    assert doc["rate_limit"]["token_max_limit"] == 100000
    assert doc["rate_limit"]["concurrency_max"] == 3
    assert doc["provider_configs"] == [{"provider": "*", "weight": 1.0,
        "allowed_models": ["claude-haiku-*"], "budgets": [], "rate_limit": None}]  # fmt: skip
    assert doc["team_id"] == team
    assert doc["session_budget"] == {"max_limit": "5", "shrink_to_fit": True}
    listed = _run(capsys, "keys", "list", "--db", db)
    assert "alice" in listed and doc["key"] not in listed
    status = json.loads(_run(capsys, "status", "alice", "--db", db))
    budgets = {b["budget_id"].split("/")[-1]: b for b in status["budgets"]}
    assert budgets["1M"]["window_start"].endswith("-01T00:00:00+00:00")
    assert budgets["1d"]["spent"] == "0"
    out = _run(capsys, "keys", "update", "alice", "--rpm", "10", "--db", db)
    assert json.loads(out)["rate_limit"]["request_max_limit"] == 10
    out = _run(capsys, "keys", "revoke", "alice", "--db", db)
    assert json.loads(out)["revoked_at"] is not None
    assert "revoked" in _run(capsys, "keys", "list", "--db", db)


def test_bad_flag_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["keys", "create", "x", "--budget", "50", "--db", db]) == 2
    assert "AMOUNT/DURATION" in capsys.readouterr().err
    assert main(["keys", "show", "missing", "--db", db]) == 2


def test_claude_code_env(capsys: pytest.CaptureFixture[str]) -> None:
    out = _run(capsys, "claude-code", "env", "--key", "tw-abc", "--url", "http://127.0.0.1:9")
    assert out.splitlines() == [
        "export ANTHROPIC_BASE_URL=http://127.0.0.1:9",
        "export ANTHROPIC_API_KEY=tw-abc",
    ]
