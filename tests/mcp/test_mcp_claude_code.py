"""Claude Code itself, configured with ``tollway claude-code mcp``, using a tool through /mcp.

The model upstream is the loopback mock: it answers with a ``tool_use`` of the MCP tool
and, once the tool's result comes back, with a final text. The tool runs on a loopback
MCP server built with the ``mcp`` SDK, behind the gateway.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from clients import installed
from conftest import GatewayServer
from mcp_harness import (
    EXPECTED,
    ToolServerProcess,
    tool_calls,
    tool_server,
    wait_for,
    wait_for_calls,
)
from test_claude_code import run_claude
from upstream_mock import (
    MockUpstream,
    RecordedRequest,
    Reply,
    anthropic_events,
    anthropic_message,
    text_block,
    tool_use_block,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

MARKER = "tollway-mcp-e2e-marker"
ECHO = "mcp__tollway__tools__echo"
DENIED = "mcp__tollway__tools__delete_everything"
FINAL = "The MCP tool answered."


@pytest.fixture
def upstream() -> Iterator[ToolServerProcess]:
    server = tool_server()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def gateway(
    gateway_factory: Callable[..., GatewayServer], upstream: ToolServerProcess
) -> GatewayServer:
    access = {"keys": {"cc": {"allow": ["tools__*"], "deny": ["tools__delete_everything"]}}}
    servers = {"tools": {"url": upstream.url}}
    gw = gateway_factory({"mcp": {"servers": servers, "access": access}})
    wait_for(gw, "tools", "up")
    return gw


def _tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for message in body.get("messages", []):
        content = message.get("content")
        if message.get("role") == "user" and isinstance(content, list):
            out += [c for c in content if isinstance(c, dict) and c.get("type") == "tool_result"]
    return out


def _responder(tool: str, arguments: dict[str, Any]) -> Callable[[RecordedRequest], Reply | None]:
    def reply(req: RecordedRequest) -> Reply | None:
        if req.method != "POST" or req.path != "/v1/messages":
            return None
        body = req.json()
        if "Bash" not in [t.get("name") for t in body.get("tools", [])]:
            return None  # side requests (titles, summaries) get the default reply
        model = body.get("model", "claude-opus-4-5")
        if _tool_results(body):
            blocks = [text_block(FINAL)]
        else:
            blocks = [text_block("Calling the tool."), tool_use_block(tool, arguments)]
        if body.get("stream"):
            return Reply(events=anthropic_events(blocks, model=model))
        return Reply(json=anthropic_message(blocks, model=model))

    return reply


def _configure(claude: Path, gateway: GatewayServer, key: str, home: Path) -> None:
    """Run the ``claude mcp add`` line that ``tollway claude-code mcp`` prints."""
    printed = subprocess.run(
        [sys.executable, "-m", "tollway", "claude-code", "mcp", "--key", key,
         "--url", gateway.base_url],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    line = next(ln for ln in printed.splitlines() if ln.startswith("claude mcp add"))
    argv = shlex.split(line)
    home.mkdir(parents=True, exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "DISABLE_AUTOUPDATER": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}  # fmt: skip
    done = subprocess.run([str(claude), *argv[1:]], cwd=home, env=env, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)  # fmt: skip
    assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"


def _main_requests(mock: MockUpstream) -> list[dict[str, Any]]:
    bodies = [r.json() for r in mock.calls("/v1/messages", "POST")]
    return [b for b in bodies if "Bash" in [t.get("name") for t in b.get("tools", [])]]


def test_claude_code_lists_and_calls_an_mcp_tool(
    gateway: GatewayServer, mock_upstream: MockUpstream, tmp_path: Path
) -> None:
    claude = installed("claude")
    key = gateway.key("cc")
    home = tmp_path / "home"
    _configure(claude, gateway, key, home)
    mock_upstream.responder = _responder(ECHO, {"text": MARKER})
    result = run_claude(claude, gateway, key, home, "-p", "echo the marker with the MCP tool",
                        "--allowedTools", ECHO)  # fmt: skip
    requests = _main_requests(mock_upstream)
    assert requests, [r.raw_path for r in mock_upstream.requests]
    offered = [t["name"] for t in requests[0]["tools"]]
    assert ECHO in offered and DENIED not in offered, offered
    mcp_tools = sorted(n for n in offered if n.startswith("mcp__tollway__"))
    assert mcp_tools == [f"mcp__tollway__{n}" for n in sorted(EXPECTED)], mcp_tools
    assert max(len(n) for n in mcp_tools) == 64
    results = [tr for body in requests for tr in _tool_results(body)]
    assert results, "no tool_result reached the model"
    content = json.dumps(results[-1]["content"])
    assert f"echo: {MARKER}" in content and not results[-1].get("is_error"), results[-1]
    assert result.get("is_error") is False, result
    assert FINAL in result["result"]
    rows = wait_for_calls(gateway, 1, key="cc")
    assert [(r["server"], r["tool"], r["outcome"]) for r in rows] == [("tools", "echo", "ok")]
    assert rows[0]["mcp_session_id"], rows[0]


def test_claude_code_cannot_call_a_denied_tool(
    gateway: GatewayServer, mock_upstream: MockUpstream, tmp_path: Path
) -> None:
    claude = installed("claude")
    key = gateway.key("cc")
    home = tmp_path / "home"
    _configure(claude, gateway, key, home)
    mock_upstream.responder = _responder(DENIED, {})
    result = run_claude(claude, gateway, key, home, "-p", "delete everything",
                        "--allowedTools", f"{ECHO},{DENIED}", check=False)  # fmt: skip
    requests = _main_requests(mock_upstream)
    assert requests, [r.raw_path for r in mock_upstream.requests]
    assert DENIED not in [t["name"] for t in requests[0]["tools"]]
    results = [tr for body in requests for tr in _tool_results(body)]
    assert results and results[-1].get("is_error") is True, results
    assert f"No such tool available: {DENIED}" in json.dumps(results), results
    assert "deleted everything" not in json.dumps(results), results
    assert result.get("is_error") is False, result
    assert FINAL in result["result"]
    assert not [r for r in tool_calls(gateway) if r["tool"] == "delete_everything"]
