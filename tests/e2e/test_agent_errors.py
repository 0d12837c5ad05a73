"""The real Claude Code and Codex CLIs meet Tollway's refusals: a revoked key and an
exhausted budget stop them at once with Tollway's message; a held concurrency slot makes
them wait their turn instead of failing."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from clients import installed
from conftest import GatewayServer
from test_claude_code import run_claude
from upstream_mock import MockUpstream, Reply, anthropic_events, responses_events

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

Factory = Callable[..., GatewayServer]
RUN_TIMEOUT_S = 120
LOG_WAIT_S = 10.0
HOLD_S = 10.0  # how long another request holds the slot (longer than a CLI takes to start)
WAIT_CONFIG = {"gateway": {"concurrency_wait_s": 30}}
CODEX_MODEL = "gpt-5"


@pytest.fixture(scope="session")
def claude_bin() -> Path:
    return installed("claude")


@pytest.fixture(scope="session")
def codex_bin() -> Path:
    return installed("codex")


def run_codex(
    codex: Path, gw: GatewayServer, key: str, home: Path
) -> subprocess.CompletedProcess[str]:
    """``codex exec`` with a custom provider pointed at the gateway (wire_api responses)."""
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(
        f'model = "{CODEX_MODEL}"\nmodel_provider = "tollway"\n\n'
        "[model_providers.tollway]\n"
        'name = "Tollway"\n'
        f'base_url = "{gw.base_url}/v1"\n'
        'env_key = "TOLLWAY_API_KEY"\n'
        'wire_api = "responses"\n',
        encoding="utf-8",
    )
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "CODEX_HOME": str(codex_home), "TOLLWAY_API_KEY": key, "LANG": "C.UTF-8"}  # fmt: skip
    try:
        return subprocess.run(
            [str(codex), "exec", "--skip-git-repo-check", "say hi"], cwd=home, env=env,
            capture_output=True, text=True, timeout=RUN_TIMEOUT_S, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"codex did not finish within {RUN_TIMEOUT_S} s\n{exc.stdout!r}\n{exc.stderr!r}"
        )


def rows(gw: GatewayServer, key: str, want: int) -> list[dict[str, Any]]:
    """The key's log rows once at least `want` are written (the writer batches)."""
    deadline = time.monotonic() + LOG_WAIT_S
    with httpx.Client(timeout=10) as client:
        while True:
            got = client.get(f"{gw.base_url}/api/logs", params={"key": key},
                             headers=gw.admin_headers()).json()["data"]  # fmt: skip
            if len(got) >= want or time.monotonic() > deadline:
                return list(got)
            time.sleep(0.2)


def refuse(gw: GatewayServer, how: str, name: str) -> str:
    """A key that gets a final refusal: revoked (401) or with its budget spent (402)."""
    if how == "revoked":
        key = gw.key(name)
        with httpx.Client(timeout=10) as client:
            r = client.delete(f"{gw.base_url}/api/virtual-keys/{name}", headers=gw.admin_headers())
            assert r.status_code == 200, r.text
        return key
    budget = [{"max_limit": "0.000001", "reset_duration": "1d"}]
    return str(gw.create_key(name, budgets=budget)["key"])


EXPECTED = {"revoked": (401, "virtual key {name!r}"),
            "budget": (402, "budget exceeded: virtual key {name!r} budget 1d")}  # fmt: skip


@pytest.mark.parametrize("how", list(EXPECTED))
def test_claude_code_stops_at_once(
    claude_bin: Path, gateway_server: GatewayServer, mock_upstream: MockUpstream, tmp_path: Path,
    how: str,
) -> None:  # fmt: skip
    name = f"cc-{how}"
    key = refuse(gateway_server, how, name)
    result = run_claude(claude_bin, gateway_server, key, tmp_path / "home", "-p", "say hi",
                        check=False)  # fmt: skip
    status, message = EXPECTED[how]
    assert result.get("is_error") is True, result
    text = str(result.get("result"))
    assert f"API Error: {status}" in text and message.format(name=name) in text, text
    logged = rows(gateway_server, name, 1)
    time.sleep(1)  # a retry would arrive within Claude Code's first back-off
    logged = rows(gateway_server, name, len(logged) + 1)
    assert [r["status"] for r in logged] == [status], logged
    assert mock_upstream.calls("/v1/messages", "POST") == []


@pytest.mark.parametrize("how", list(EXPECTED))
def test_codex_stops_at_once(
    codex_bin: Path, gateway_server: GatewayServer, mock_upstream: MockUpstream, tmp_path: Path,
    how: str,
) -> None:  # fmt: skip
    name = f"codex-{how}"
    key = refuse(gateway_server, how, name)
    done = run_codex(codex_bin, gateway_server, key, tmp_path / "home")
    status, message = EXPECTED[how]
    output = done.stdout + done.stderr
    assert done.returncode != 0 and message.format(name=name) in output, output
    assert "Reconnecting" not in output, output
    logged = rows(gateway_server, name, 1)
    time.sleep(1)
    logged = rows(gateway_server, name, len(logged) + 1)
    assert [r["status"] for r in logged] == [status], logged
    assert [r["client"] for r in logged] == ["codex"]
    assert mock_upstream.calls() == []


@pytest.fixture
def held_slot(
    gateway_factory: Factory, mock_upstream: MockUpstream
) -> Iterator[tuple[GatewayServer, str, threading.Thread]]:
    """A key limited to one request at once, whose slot a slow stream holds for HOLD_S."""
    gw = gateway_factory(WAIT_CONFIG)
    key = str(gw.create_key("one-at-a-time", rate_limit={"concurrency_max": 1})["key"])
    slow = Reply(events=anthropic_events("slow " * 30), event_delay=HOLD_S / 30,
                 when=lambda r: b"hold the slot" in r.body)  # fmt: skip
    mock_upstream.enqueue(slow)
    started = threading.Event()

    def hold() -> None:
        body = {"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": True,
                "messages": [{"role": "user", "content": "hold the slot"}]}  # fmt: skip
        with httpx.Client(timeout=60) as client:
            with client.stream("POST", gw.base_url + "/v1/messages", json=body,
                               headers={"x-api-key": key}) as resp:  # fmt: skip
                assert resp.status_code == 200
                started.set()
                resp.read()

    holder = threading.Thread(target=hold)
    holder.start()
    assert started.wait(30)
    yield gw, key, holder
    holder.join(60)


def _waited_its_turn(gw: GatewayServer, holder: threading.Thread) -> None:
    """Every request succeeded, and the client's first one arrived while the slot was
    held: with a limit of one at a time, it can only have waited for its turn."""
    holder.join(60)
    logged = rows(gw, "one-at-a-time", 2)
    assert [r["status"] for r in logged] == [200] * len(logged), logged
    first, *later = sorted(logged, key=lambda r: r["started_at"])
    assert later, logged
    held_until = (
        datetime.fromisoformat(first["started_at"]).timestamp() + first["latency_ms"] / 1000
    )
    assert datetime.fromisoformat(later[0]["started_at"]).timestamp() < held_until, logged


def test_claude_code_waits_for_a_held_slot(
    claude_bin: Path, held_slot: tuple[GatewayServer, str, threading.Thread], tmp_path: Path
) -> None:
    gw, key, holder = held_slot
    result = run_claude(claude_bin, gw, key, tmp_path / "home", "-p", "say hi")
    assert result.get("is_error") is False, result
    _waited_its_turn(gw, holder)


def test_codex_waits_for_a_held_slot(
    codex_bin: Path,
    held_slot: tuple[GatewayServer, str, threading.Thread],
    mock_upstream: MockUpstream,
    tmp_path: Path,
) -> None:
    gw, key, holder = held_slot
    mock_upstream.enqueue(Reply(events=responses_events("hello from tollway", model=CODEX_MODEL)))
    done = run_codex(codex_bin, gw, key, tmp_path / "home")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "hello from tollway" in done.stdout
    _waited_its_turn(gw, holder)
