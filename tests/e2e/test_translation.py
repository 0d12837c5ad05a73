"""The real CLIs and the openai SDK on models whose provider speaks another API: the
gateway translates both ways, the loopback fakes see their own dialect."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import openai
import pytest

from clients import installed
from conftest import GatewayServer
from test_agent_errors import rows
from test_claude_code import run_claude
from upstream_mock import (
    DEFAULT_TEXT,
    MockUpstream,
    RecordedRequest,
    Reply,
    anthropic_events,
    chat_events,
    chat_tool_events,
    text_block,
    tool_use_block,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

RUN_TIMEOUT_S = 120
MARKER = "tollway-translate-marker"
FINAL_TEXT = "The command printed the marker."


def _extra(mock: MockUpstream) -> dict[str, Any]:
    return {"providers": {
        "groq": {"type": "openai", "base_url": mock.base_url + "/openai/v1",
                 "keys": [{"name": "main", "value": "gsk-groq-upstream"}]},
        "gemini": {"base_url": mock.base_url,
                   "keys": [{"name": "main", "value": "gm-upstream"}]},
    }}  # fmt: skip


def _tool_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in body.get("messages", []) if m.get("role") == "tool"]


def _bash_on_chat(req: RecordedRequest) -> Reply | None:
    """An OpenAI-compatible model that asks for Bash once, then answers with text."""
    if req.method != "POST" or not req.path.endswith("/chat/completions"):
        return None
    body = req.json()
    names = [t.get("function", {}).get("name") for t in body.get("tools", [])]
    if "Bash" not in names:
        return Reply(events=chat_events(model=body["model"]))
    if _tool_messages(body):
        return Reply(events=chat_events(FINAL_TEXT, model=body["model"]))
    command = {"command": f"echo {MARKER}", "description": "Print the marker"}
    return Reply(events=chat_tool_events([("call_bash_1", "Bash", command)], text="I'll run it.",
                                         model=body["model"]))  # fmt: skip


def test_claude_code_runs_a_bash_tool_round_trip_on_an_openai_compatible_model(
    gateway_factory: Any, mock_upstream: MockUpstream, tmp_path: Path
) -> None:
    gw = gateway_factory(_extra(mock_upstream))
    mock_upstream.responder = _bash_on_chat
    vkey = gw.key("cc-on-openai")
    result = run_claude(
        installed("claude"), gw, vkey, tmp_path / "home", "-p",
        f"run echo {MARKER} with the Bash tool", "--model", "openai/gpt-4o-mini",
        "--allowedTools", "Bash",
    )  # fmt: skip
    assert result.get("is_error") is False, result
    assert FINAL_TEXT in result["result"]
    chats = [r for r in mock_upstream.calls("/v1/chat/completions") if r.method == "POST"]
    results = [m for r in chats for m in _tool_messages(r.json())]
    assert results and results[-1]["tool_call_id"] == "call_bash_1"
    assert MARKER in results[-1]["content"]
    assert all(r.header("authorization") == "Bearer sk-openai-upstream-secret" for r in chats)
    logged = rows(gw, "cc-on-openai", 2)
    served = [r for r in logged if r["provider"] == "openai"]
    assert served and all(r["translation"].startswith("anthropic>openai_chat") for r in served)
    assert all(r["served_model"] == "gpt-4o-mini" and r["tokens"]["input"] == 17 for r in served)


def _groq(req: RecordedRequest) -> Reply | None:
    if req.method != "POST" or req.path != "/openai/v1/chat/completions":
        return None
    body = req.json()
    include = (body.get("stream_options") or {}).get("include_usage") is True
    return Reply(events=chat_tool_events([], text=DEFAULT_TEXT, model=body["model"],
                                         include_usage=include, groq=True))  # fmt: skip


def test_claude_code_haiku_tier_is_served_by_a_groq_shaped_upstream(
    gateway_factory: Any, mock_upstream: MockUpstream, tmp_path: Path
) -> None:
    gw = gateway_factory(_extra(mock_upstream))
    mock_upstream.responder = _groq
    vkey = gw.key("cc-haiku-groq")
    result = run_claude(
        installed("claude"), gw, vkey, tmp_path / "home", "-p", "say hi", "--model", "haiku",
        extra_env={"ANTHROPIC_DEFAULT_HAIKU_MODEL": "groq/llama-3.3-70b-versatile"},
    )  # fmt: skip
    assert result.get("is_error") is False, result
    assert DEFAULT_TEXT in result["result"]
    groq = mock_upstream.calls("/openai/v1/chat/completions")
    assert groq and groq[0].json()["model"] == "llama-3.3-70b-versatile"
    assert groq[0].header("authorization") == "Bearer gsk-groq-upstream"
    logged = [r for r in rows(gw, "cc-haiku-groq", 1) if r["provider"] == "groq"]
    assert logged and logged[0]["requested_model"] == "groq/llama-3.3-70b-versatile"
    assert (logged[0]["tokens"]["input"], logged[0]["tokens"]["output"]) == (17, 6)


def test_codex_runs_on_an_anthropic_model(
    gateway_server: GatewayServer, mock_upstream: MockUpstream, tmp_path: Path
) -> None:
    def anthropic(req: RecordedRequest) -> Reply | None:
        if req.path != "/v1/messages":
            return None
        body = req.json()
        if any(b.get("type") == "tool_result" for m in body["messages"]
               if isinstance(m["content"], list) for b in m["content"]):  # fmt: skip
            return Reply(events=anthropic_events(FINAL_TEXT, model=body["model"]))
        command = {"cmd": f"echo {MARKER}"}
        blocks = [text_block("Running it."), tool_use_block("exec_command", command, "toolu_c1")]
        return Reply(events=anthropic_events(blocks, model=body["model"]))

    mock_upstream.responder = anthropic
    home = tmp_path / "home"
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True)
    (codex_home / "config.toml").write_text(
        'model = "claude-sonnet-4-5"\nmodel_provider = "tollway"\n'
        'approval_policy = "never"\nsandbox_mode = "danger-full-access"\n\n'
        f'[model_providers.tollway]\nname = "Tollway"\nbase_url = "{gateway_server.base_url}/v1"\n'
        'env_key = "TOLLWAY_API_KEY"\nwire_api = "responses"\n', encoding="utf-8",
    )  # fmt: skip
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "CODEX_HOME": str(codex_home), "TOLLWAY_API_KEY": gateway_server.key("codex-claude"),
           "LANG": "C.UTF-8"}  # fmt: skip
    done = subprocess.run(
        [str(installed("codex")), "exec", "--skip-git-repo-check", f"run echo {MARKER}"],
        cwd=home, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    detail = f"{done.stdout}\n{done.stderr}\n{gateway_server.logs()}"
    assert done.returncode == 0, detail
    assert FINAL_TEXT in done.stdout, detail
    calls = mock_upstream.calls("/v1/messages")
    results = [b for m in calls[-1].json()["messages"] if isinstance(m["content"], list)
               for b in m["content"] if b.get("type") == "tool_result"]  # fmt: skip
    assert results and results[-1]["tool_use_id"] == "toolu_c1"
    assert MARKER in json.dumps(results[-1]["content"])
    assert calls[-1].header("x-api-key") == "sk-ant-upstream-secret"


def run_gemini(gw: GatewayServer, key: str, home: Path, model: str) -> str:
    """``gemini -p`` (pinned 0.61.0) with GEMINI_API_KEY and GOOGLE_GEMINI_BASE_URL."""
    settings = home / ".gemini"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "settings.json").write_text(json.dumps({
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
        "privacy": {"usageStatisticsEnabled": False}, "telemetry": {"enabled": False},
    }), encoding="utf-8")  # fmt: skip
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "LANG": "C.UTF-8", "GEMINI_API_KEY": key, "GOOGLE_GEMINI_BASE_URL": gw.base_url,
           "GEMINI_CLI_NO_RELAUNCH": "true", "NO_BROWSER": "true", "CI": "1",
           "GEMINI_CLI_TRUST_WORKSPACE": "true"}  # fmt: skip
    try:
        done = subprocess.run(
            [str(installed("gemini")), "-p", "say hi", "-m", model], cwd=home, env=env,
            capture_output=True, text=True, timeout=RUN_TIMEOUT_S, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"gemini did not finish within {RUN_TIMEOUT_S} s\n{exc.stdout!r}\n"
                    f"{exc.stderr!r}\n{gw.logs()}")  # fmt: skip
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{gw.logs()}"
    return done.stdout


def test_gemini_cli_on_a_native_gemini_upstream(
    gateway_factory: Any, mock_upstream: MockUpstream, tmp_path: Path
) -> None:
    gw = gateway_factory(_extra(mock_upstream))
    out = run_gemini(gw, gw.key("gemini-native"), tmp_path / "home", "gemini-2.5-flash")
    assert DEFAULT_TEXT in out
    calls = [r for r in mock_upstream.requests if r.path.startswith("/v1beta/models/")]
    assert any(r.path.endswith(":streamGenerateContent") for r in calls)
    assert all(r.header("x-goog-api-key") == "gm-upstream" for r in calls)
    logged = rows(gw, "gemini-native", 1)
    assert all(r["provider"] == "gemini" and r["translation"] is None for r in logged)
    assert any(r["tokens"]["input"] == 31 and r["tokens"]["output"] == 7 for r in logged)


def test_gemini_cli_on_an_anthropic_upstream(
    gateway_factory: Any, mock_upstream: MockUpstream, tmp_path: Path
) -> None:
    gw = gateway_factory()
    out = run_gemini(gw, gw.key("gemini-claude"), tmp_path / "home", "claude-sonnet-4-5")
    assert DEFAULT_TEXT in out
    calls = mock_upstream.calls("/v1/messages")
    assert calls and calls[-1].json()["model"] == "claude-sonnet-4-5"
    assert calls[-1].header("anthropic-version") == "2023-06-01"
    logged = [r for r in rows(gw, "gemini-claude", 1) if r["provider"] == "anthropic"]
    assert logged and logged[-1]["translation"].startswith("gemini>anthropic")
    assert (logged[-1]["tokens"]["input"], logged[-1]["tokens"]["output"]) == (21, 9)


def test_the_openai_sdk_on_a_claude_model(
    gateway_server: GatewayServer, mock_upstream: MockUpstream
) -> None:
    client = openai.OpenAI(base_url=gateway_server.base_url + "/v1", max_retries=0,
                           api_key=gateway_server.key("sdk-on-claude"), timeout=30)  # fmt: skip
    reply = client.chat.completions.create(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": "say hi"}]
    )
    assert reply.choices[0].message.content == DEFAULT_TEXT
    assert reply.choices[0].finish_reason == "stop"
    usage = reply.usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (21, 9)
    sent = mock_upstream.calls("/v1/messages")[-1]
    assert sent.json()["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "say hi"}]}
    ]
