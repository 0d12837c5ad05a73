"""The CLI run from another folder finds the gateway's state, or refuses clearly."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import GatewayServer
from tollway.cli.main import parser

CLI_TIMEOUT_S = 60


def cli(
    cwd: Path, *argv: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``tollway ARGV`` in ``cwd`` with nothing of Tollway's from the test's environment."""
    child = {k: v for k, v in os.environ.items() if not k.startswith("TOLLWAY_")}
    child["XDG_STATE_HOME"] = str(cwd / "no-state")
    child.update(env or {})
    return subprocess.run([sys.executable, "-m", "tollway", *argv], cwd=cwd, env=child,
                          capture_output=True, text=True, timeout=CLI_TIMEOUT_S)  # fmt: skip


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_another_folder_without_state_refuses_and_creates_nothing(tmp_path: Path) -> None:
    done = cli(tmp_path, "keys", "list")
    assert done.returncode == 2 and done.stdout == ""
    assert "no Tollway state found" in done.stderr and "--db sqlite:///" in done.stderr
    assert "the CLI does not create an empty database" in done.stderr
    missing = cli(tmp_path, "usage", "--db", str(tmp_path / "typo.db"))
    assert missing.returncode == 2 and "no database at" in missing.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no tollway.db, no typo.db


@pytest.fixture
def announced(gateway_factory: Callable[..., GatewayServer]) -> GatewayServer:
    """A gateway with a generated admin token (in a file beside its database)."""
    return gateway_factory(None, env={"TOLLWAY_ADMIN_TOKEN": ""})


def _state(gw: GatewayServer) -> dict[str, str]:
    return {"XDG_STATE_HOME": str(gw.config_path.parent / "state")}


def _message(gw: GatewayServer, key: str, user: str) -> None:
    body = {"model": "claude-haiku-4-5", "max_tokens": 16,
            "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01", "x-tollway-user": user}
    resp = httpx.post(f"{gw.base_url}/v1/messages", json=body, headers=headers, timeout=10)
    assert resp.status_code == 200, resp.text


def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_another_folder_finds_the_running_gateway(announced: GatewayServer, tmp_path: Path) -> None:
    gw, env = announced, _state(announced)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ok(cli(elsewhere, "teams", "create", "platform", env=env))
    created = ok(cli(elsewhere, "keys", "create", "alice", "--team", "platform",
                     "--budget", "5/1d", env=env))  # fmt: skip
    key = json.loads(created.split("\n\nThe key")[0])["key"]
    for user in ("ann", "ann", "bob"):
        _message(gw, key, user)

    def alice() -> dict[str, Any]:
        rows = json.loads(ok(cli(elsewhere, "keys", "list", "--format", "json", env=env)))
        return next(r for r in rows if r["name"] == "alice")

    _until(lambda: alice()["requests"] == 3, "the three requests never reached the log")
    rows = json.loads(ok(cli(elsewhere, "keys", "list", "--format", "json", env=env)))
    (row,) = [r for r in rows if r["name"] == "alice"]
    assert row["team"] == "platform" and row["state"] == "active"
    usage = json.loads(ok(cli(elsewhere, "usage", "--key", "alice", "--format", "json", env=env)))
    assert [g["requests"] for g in usage] == [3]
    assert row["spend"] == usage[0]["cost"]["total"] and row["spend"] != "0"
    (budget,) = row["budgets"]
    assert budget["max_limit"] == "5" and Decimal(budget["spent"]) == Decimal(row["spend"])
    table = ok(cli(elsewhere, "keys", "list", env=env))
    assert f"${budget['spent']}/$5 1d" in table and "platform" in table and "active" in table
    by_user = json.loads(ok(cli(elsewhere, "usage", "--group-by", "user", "--format", "json",
                                env=env)))  # fmt: skip
    assert {g["group"]: g["requests"] for g in by_user} == {"ann": 2, "bob": 1}
    assert not (elsewhere / "tollway.db").exists()
    assert len(list(gw.config_path.parent.glob("t.db*"))) >= 1


def test_budget_top_up_and_reset_reach_the_running_gateway(
    announced: GatewayServer, tmp_path: Path
) -> None:
    gw, env = announced, _state(announced)
    created = ok(cli(tmp_path, "keys", "create", "tiny", "--budget", "0.02/1d", env=env))
    key = json.loads(created.split("\n\nThe key")[0])["key"]
    _message(gw, key, "ann")

    def settled() -> dict[str, str]:
        (b,) = json.loads(ok(cli(tmp_path, "budgets", "list", "--key", "tiny", "--format", "json",
                                 env=env)))  # fmt: skip
        return dict(b)

    _until(lambda: settled()["spent"] != "0", "the request was never settled")
    topped = json.loads(ok(cli(tmp_path, "budgets", "top-up", "1.5", "--key", "tiny",
                               "--format", "json", env=env)))  # fmt: skip
    assert topped[0]["top_up"] == "1.5"
    reset = json.loads(ok(cli(tmp_path, "budgets", "reset", "--key", "tiny", "--window", "1d",
                              "--format", "json", env=env)))  # fmt: skip
    assert reset[0]["spent"] == "0" and reset[0]["top_up"] == "1.5"
    assert settled()["spent"] == "0"  # the gateway's own ledger, over its admin API
    events = httpx.get(
        f"{gw.base_url}/api/budgets/{reset[0]['budget_id']}/events",
        headers={"Authorization": "Bearer " + _token(gw)},
        timeout=10,
    ).json()
    assert [e["action"] for e in events] == ["top_up", "reset"]
    assert all(e["actor"].startswith("cli:") for e in events)


def _token(gw: GatewayServer) -> str:
    return (gw.config_path.parent / "t.db.admin-token").read_text().strip()


def test_global_options_before_or_after_and_names_for_ids(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    ok(cli(tmp_path, "--db", db, "customers", "create", "acme"))
    team = json.loads(ok(cli(tmp_path, "teams", "create", "platform", "--customer", "acme",
                             "--db", db)))  # fmt: skip
    customer = json.loads(ok(cli(tmp_path, "customers", "show", "acme", "--db", db)))
    assert team["customer_id"] == customer["id"]
    key = json.loads(ok(cli(tmp_path, "--db", db, "keys", "create", "k", "--team", "platform"))
                     .split("\n\nThe key")[0])  # fmt: skip
    assert key["team_id"] == team["id"]
    bad = cli(tmp_path, "keys", "create", "k2", "--team", "nope", "--db", db)
    assert bad.returncode == 2 and "no team with id or name 'nope'" in bad.stderr
    assert ok(cli(tmp_path, "keys", "list", "--db", db)) == ok(cli(tmp_path, "--db", db, "keys",
                                                                    "list"))  # fmt: skip


def test_a_second_serve_on_a_taken_port_says_so(
    gateway_server: GatewayServer, tmp_path: Path
) -> None:
    port = gateway_server.base_url.rsplit(":", 1)[1]
    done = cli(tmp_path, "serve", "--port", port, "--db", f"sqlite:///{tmp_path / 'x.db'}")
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in done.stderr
    assert "listening" not in done.stderr + done.stdout and "--port" in done.stderr


def test_serve_into_a_missing_folder_says_which_and_how(tmp_path: Path) -> None:
    done = cli(tmp_path, "serve", "--port", "0", "--db", "sqlite:///nope/t.db")
    assert done.returncode == 2, done.stderr
    assert f"the folder {tmp_path / 'nope'} does not exist" in done.stderr
    assert "four slashes" in done.stderr and "Traceback" not in done.stderr
    assert not list(tmp_path.iterdir())  # no token, no database left behind


def test_version_and_program_name(tmp_path: Path) -> None:
    from importlib.metadata import version

    assert ok(cli(tmp_path, "--version")).strip() == f"tollway {version('tollway')}"
    text = ok(cli(tmp_path, "--help"))
    assert text.startswith("usage: tollway ") and "``" not in text


def _walk(p: argparse.ArgumentParser, path: str) -> list[str]:
    missing = []
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if not choice.help:
                    missing.append(f"{path} {choice.dest}")
            for name, child in action.choices.items():
                missing += _walk(child, f"{path} {name}")
        elif not action.help:
            missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_every_command_and_option_has_help() -> None:
    assert _walk(parser(), "tollway") == []
