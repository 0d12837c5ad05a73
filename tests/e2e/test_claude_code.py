"""Claude Code itself, installed from npm, through the real gateway to the mock upstream."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from clients import installed
from conftest import ANTHROPIC_UPSTREAM_KEY, GatewayServer
from upstream_mock import (
    DEFAULT_TEXT,
    MockUpstream,
    RecordedRequest,
    Reply,
    anthropic_events,
    anthropic_message,
    text_block,
    tool_use_block,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

RUN_TIMEOUT_S = 120
MARKER = "tollway-e2e-marker"
FINAL_TEXT = "The command printed the marker."


@pytest.fixture(scope="session")
def claude_bin() -> Path:
    """The ``claude`` binary at the locked version (tests/e2e/npm)."""
    return installed("claude")


def run_claude(
    claude: Path,
    gateway: GatewayServer,
    key: str,
    home: Path,
    *args: str,
    extra_env: dict[str, str] | None = None,
    check: bool = True,
) -> dict[str, Any]:
    """``claude -p ...`` with nothing from the user's environment or config."""
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "SHELL": "/bin/bash",
        "LANG": "C.UTF-8",
        "ANTHROPIC_BASE_URL": gateway.base_url,
        "ANTHROPIC_API_KEY": key,
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        **(extra_env or {}),
    }
    cmd = [str(claude), *args, "--output-format", "json"]
    try:
        done = subprocess.run(
            cmd, cwd=home, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"claude did not finish within {RUN_TIMEOUT_S} s\n{exc.stdout!r}\n{exc.stderr!r}\n"
            f"{gateway.logs()}"
        )
    detail = f"exit {done.returncode}\n--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"
    if check:
        assert done.returncode == 0, f"{detail}\n{gateway.logs()}"
    try:
        result: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        pytest.fail(f"claude did not print JSON: {detail}")
    return result


def assert_keys_swapped(mock: MockUpstream, vkey: str) -> list[RecordedRequest]:
    calls = mock.calls("/v1/messages", "POST")
    assert calls, [(r.method, r.raw_path) for r in mock.requests]
    for req in calls:
        assert req.header_all("x-api-key") == [ANTHROPIC_UPSTREAM_KEY]
        assert req.header("authorization") is None
        assert not [k for k, v in req.headers if vkey in v], "the virtual key reached upstream"
    return calls


def test_say_hi(
    claude_bin: Path, gateway_server: GatewayServer, mock_upstream: MockUpstream, tmp_path: Path
) -> None:
    vkey = gateway_server.key("claude-code-e2e")
    result = run_claude(claude_bin, gateway_server, vkey, tmp_path / "home", "-p", "say hi")
    assert result.get("is_error") is False, result
    assert DEFAULT_TEXT in result["result"]
    calls = assert_keys_swapped(mock_upstream, vkey)
    main = [r for r in calls if r.query_string == "beta=true" and r.stream]
    assert main, [(r.raw_path, r.stream) for r in calls]
    assert main[0].header("anthropic-version") == "2023-06-01"
    assert main[0].header("x-app") == "cli"
    assert "say hi" in main[0].body.decode()


def _tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for message in body.get("messages", []):
        content = message.get("content")
        if message.get("role") == "user" and isinstance(content, list):
            out += [c for c in content if isinstance(c, dict) and c.get("type") == "tool_result"]
    return out


def _bash_round_trip(req: RecordedRequest) -> Reply | None:
    """Ask for the Bash tool once; answer with text when its result comes back."""
    if req.method != "POST" or req.path != "/v1/messages":
        return None
    body = req.json()
    if "Bash" not in [t.get("name") for t in body.get("tools", [])]:
        return None  # side requests (titles, summaries) get the default reply
    model = body.get("model", "claude-opus-4-5")
    if _tool_results(body):
        blocks = [text_block(FINAL_TEXT)]
    else:
        command = {"command": f"echo {MARKER}", "description": "Print the marker"}
        blocks = [text_block("I'll run it."), tool_use_block("Bash", command)]
    if body.get("stream"):
        return Reply(events=anthropic_events(blocks, model=model))
    return Reply(json=anthropic_message(blocks, model=model))


# How the captures ran the tool scenario: claude_p_tool (an allowed tool) and
# claude_tool_skipperm. Claude Code refuses --dangerously-skip-permissions as root unless
# IS_SANDBOX=1 says the machine is a throwaway one, as a CI container is.
PERMISSIONS = {
    "allowed-tools": (["--allowedTools", "Bash"], {}),
    "skip-permissions": (["--dangerously-skip-permissions"], {"IS_SANDBOX": "1"}),
}


@pytest.mark.parametrize("permissions", list(PERMISSIONS))
def test_bash_tool_round_trip(
    claude_bin: Path,
    gateway_server: GatewayServer,
    mock_upstream: MockUpstream,
    tmp_path: Path,
    permissions: str,
) -> None:
    mock_upstream.responder = _bash_round_trip
    vkey = gateway_server.key("claude-code-e2e-tool")
    flags, extra_env = PERMISSIONS[permissions]
    result = run_claude(
        claude_bin, gateway_server, vkey, tmp_path / "home",
        "-p", f"run echo {MARKER} with the Bash tool", *flags, extra_env=extra_env,
    )  # fmt: skip
    calls = assert_keys_swapped(mock_upstream, vkey)
    results = [tr for r in calls for tr in _tool_results(r.json())]
    assert results, "no tool_result reached the upstream"
    content = results[-1]["content"]
    text = content if isinstance(content, str) else json.dumps(content)
    assert MARKER in text and not results[-1].get("is_error"), results[-1]
    assert result.get("is_error") is False, result
    assert FINAL_TEXT in result["result"]


def test_recovers_from_an_upstream_stream_drop(
    claude_bin: Path, gateway_server: GatewayServer, mock_upstream: MockUpstream, tmp_path: Path
) -> None:
    """claude_ssedrop_n1: Claude Code retries a broken stream; through the gateway too."""

    def main_stream(req: RecordedRequest) -> bool:
        return req.path == "/v1/messages" and req.stream and b'"name":"Bash"' in req.body

    mock_upstream.enqueue(Reply(events=anthropic_events(), cut_after=2, when=main_stream))
    vkey = gateway_server.key("claude-code-e2e-drop")
    result = run_claude(claude_bin, gateway_server, vkey, tmp_path / "home", "-p", "say hi")
    calls = assert_keys_swapped(mock_upstream, vkey)
    assert calls[0].cut, [(r.raw_path, r.stream, r.cut) for r in calls]
    assert len(calls) >= 2
    assert result.get("is_error") is False, result
    assert DEFAULT_TEXT in result["result"]


@pytest.mark.parametrize(
    ("limits", "status", "words"),
    [
        ({"budgets": [{"max_limit": 0.0001, "reset_duration": "1d"}]}, 402, "budget exceeded"),
        ({"provider_configs": [{"provider": "anthropic", "allowed_models": ["gpt-*"]}]}, 403,
         "may not use model"),
    ],
    ids=["budget", "model-not-allowed"],
)  # fmt: skip
def test_governance_errors_reach_the_developer(
    claude_bin: Path,
    gateway_server: GatewayServer,
    mock_upstream: MockUpstream,
    tmp_path: Path,
    limits: dict[str, Any],
    status: int,
    words: str,
) -> None:
    """Claude Code shows the gateway's message verbatim and does not retry 402/403."""
    vkey = str(gateway_server.create_key("limited", **limits)["key"])
    result = run_claude(claude_bin, gateway_server, vkey, tmp_path / "home", "-p", "say hi",
                        check=False)  # fmt: skip
    assert result.get("is_error") is True, result
    assert f"API Error: {status}" in result["result"] and words in result["result"], result
    assert mock_upstream.calls("/v1/messages", "POST") == []  # nothing reached the provider
