"""Golden translations of what real clients sent and real-shaped upstreams answered
(the captures in tests/fixtures/wire): exact fields in, exact fields out."""

from __future__ import annotations

import json
from typing import Any

from wire import body, datas, sse_bytes, translate_stream

from tollway import translate
from tollway.providers.base import ANTHROPIC, GEMINI, OPENAI_CHAT, OPENAI_RESPONSES
from tollway.translate import Translator
from tollway.translate.anthropic import collect

SIGNATURE = "EqMOCKSIGNATURE0123456789abcdef=="
THOUGHT = "The user wants echo hi. Use Bash."
BASH_ARGS = '{"command":"echo hi","description":"Print hi"}'


def pair(client: str, upstream: str) -> Translator:
    found = translate.pair(client, upstream)
    assert found is not None
    return found


def request(t: Translator, raw: bytes, model: str, stream: bool = True) -> dict[str, Any]:
    t.upstream_path("generate", model, stream)
    result: dict[str, Any] = json.loads(t.request(raw, model, stream))
    return result


def test_claude_code_tool_turn_to_chat_completions() -> None:
    t = pair(ANTHROPIC, OPENAI_CHAT)
    out = request(t, body("claude_p_tool.jsonl", 16), "llama-3.3-70b-versatile")
    messages = out["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "system", "assistant", "tool"]
    assert messages[0]["content"].startswith("x-anthropic-billing-header: cc_version=2.1.197")
    assert messages[3] == {
        "role": "assistant", "content": "I'll run it.",
        "tool_calls": [{"id": "toolu_mock_1873f7ae974f4c4a", "type": "function",
                        "function": {"name": "Bash", "arguments": BASH_ARGS}}],
    }  # fmt: skip
    assert messages[4] == {"role": "tool", "tool_call_id": "toolu_mock_1873f7ae974f4c4a",
                           "content": "hi"}  # fmt: skip
    assert len(out["tools"]) == 24 and {t["type"] for t in out["tools"]} == {"function"}
    assert out["tools"][1]["function"]["name"] == "Bash"
    assert out["max_completion_tokens"] == 64000
    assert out["stream"] is True and out["stream_options"] == {"include_usage": True}
    assert "tool_choice" not in out
    assert sorted(t.dropped) == [
        "context_management", "messages.content.cache_control", "metadata", "output_config",
        "system.cache_control", "thinking",
    ]  # fmt: skip
    assert t.upstream_path("generate", "m", True) == "/v1/chat/completions"


def test_a_known_models_output_cap_is_kept_within_its_maximum() -> None:
    out = request(pair(ANTHROPIC, OPENAI_CHAT), body("claude_p_tool.jsonl", 16), "gpt-4o-mini")
    assert out["max_completion_tokens"] == 16384


def test_gemini_cli_tool_turn_to_anthropic() -> None:
    t = pair(GEMINI, ANTHROPIC)
    out = request(t, body("gemini_tool.jsonl", 5), "claude-sonnet-4-5")
    assert out["model"] == "claude-sonnet-4-5" and out["stream"] is True
    assert out["system"][0]["text"].startswith("You are Gemini CLI, an autonomous CLI agent")
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]
    call_id = "run_shell_command_1795436587966_0"
    assert out["messages"][1]["content"] == [
        {"type": "tool_use", "id": call_id, "name": "run_shell_command",
         "input": {"command": "echo hi", "description": "Print hi"}}
    ]  # fmt: skip
    result = out["messages"][2]["content"][0]
    assert result["type"] == "tool_result" and result["tool_use_id"] == call_id
    assert "Output: hi" in result["content"][0]["text"]
    assert len(out["tools"]) == 15
    assert out["tools"][8]["name"] == "run_shell_command"
    assert out["tools"][8]["input_schema"]["type"] == "object"
    assert out["max_tokens"] == 32000
    assert (out["temperature"], out["top_p"], out["top_k"]) == (1.0, 0.95, 64)
    assert "thinking" not in out  # the tool turn kept no thinking block: Anthropic would refuse
    assert t.dropped == ["contents[1].parts[0].thoughtSignature", "generationConfig.thinkingConfig"]
    assert t.upstream_path("generate", "claude-sonnet-4-5", True) == "/v1/messages"


def test_gemini_cli_first_turn_asks_anthropic_to_think() -> None:
    out = request(pair(GEMINI, ANTHROPIC), body("gemini_tool.jsonl", 4), "claude-sonnet-4-5")
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 16384}
    assert "temperature" not in out and "top_k" not in out


def test_codex_tool_turn_to_anthropic() -> None:
    t = pair(OPENAI_RESPONSES, ANTHROPIC)
    out = request(t, body("codex_tool_default_tool.jsonl", 64), "claude-sonnet-4-5")
    assert out["system"][0]["text"].startswith("You are a coding agent running in the Codex CLI")
    assert len(out["system"]) == 3  # instructions and two developer messages
    roles = [(m["role"], [b["type"] for b in m["content"]]) for m in out["messages"]]
    assert roles == [("user", ["text", "text"]), ("assistant", ["tool_use"]),
                     ("user", ["tool_result"])]  # fmt: skip
    assert out["messages"][1]["content"][0] == {
        "type": "tool_use",
        "id": "call_mock1",
        "name": "exec_command",
        "input": {"cmd": "echo hi"},
    }
    assert out["messages"][2]["content"][0]["tool_use_id"] == "call_mock1"
    assert "Output:\nhi" in out["messages"][2]["content"][0]["content"][0]["text"]
    assert [tool["name"] for tool in out["tools"]] == [
        "exec_command", "write_stdin", "request_user_input", "view_image", "get_goal",
        "create_goal", "update_goal",
    ]  # fmt: skip
    assert "tool_choice" not in out  # "auto" is the default
    assert sorted(t.dropped) == ["client_metadata", "prompt_cache_key", "tools[4](namespace)",
                                 "tools[8](web_search)"]  # fmt: skip


def test_gemini_function_call_stream_to_claude_code() -> None:
    t = pair(ANTHROPIC, GEMINI)
    request(t, body("claude_p_tool.jsonl", 15), "gemini-3.8-flash")
    events = datas(translate_stream(t, sse_bytes("gemini_tool.jsonl", 4)))
    message = collect(events)
    assert [b["type"] for b in message["content"]] == ["tool_use"]
    assert message["content"][0]["name"] == "run_shell_command"
    assert message["content"][0]["input"] == {"command": "echo hi", "description": "Print hi"}
    assert message["stop_reason"] == "tool_use"
    assert message["usage"]["input_tokens"] == 174 and message["usage"]["output_tokens"] == 2
    assert events[-1] == {"type": "message_stop"}


def test_codex_stream_from_a_responses_upstream_to_claude_code() -> None:
    t = pair(ANTHROPIC, OPENAI_RESPONSES)
    request(t, body("claude_p_tool.jsonl", 15), "gpt-5")
    message = collect(datas(translate_stream(t, sse_bytes("codex_tool_default_tool.jsonl", 63))))
    assert message["content"] == [
        {
            "type": "tool_use",
            "id": "call_mock1",
            "name": "exec_command",
            "input": {"cmd": "echo hi"},
        }
    ]
    assert message["stop_reason"] == "tool_use"
    assert message["usage"]["input_tokens"] == 5271


def test_claude_signed_thinking_survives_a_gemini_cli_round_trip() -> None:
    """Anthropic's signed thinking rides on the functionCall's thoughtSignature, which
    Gemini CLI echoes; the next request carries the block back byte for byte."""
    t = pair(GEMINI, ANTHROPIC)
    request(t, body("gemini_tool.jsonl", 4), "claude-opus-4-8")
    chunks = datas(translate_stream(t, sse_bytes("claude_tool_think.jsonl", 3)))
    parts = [p for c in chunks for p in c["candidates"][0]["content"]["parts"]]
    assert parts[0] == {"text": THOUGHT, "thought": True}
    call = next(p for p in parts if "functionCall" in p)
    assert call["functionCall"]["name"] == "Bash"
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    echoed = {
        "contents": [
            {"role": "user", "parts": [{"text": "run echo hi"}]},
            {"role": "model", "parts": [call]},
            {"role": "user", "parts": [{"functionResponse": {
                "id": call["functionCall"]["id"], "name": "Bash", "response": {"output": "hi"}}}]},
        ],
        "generationConfig": {"thinkingConfig": {"includeThoughts": True, "thinkingLevel": "HIGH"}},
    }  # fmt: skip
    again = pair(GEMINI, ANTHROPIC)
    out = request(again, json.dumps(echoed).encode(), "claude-opus-4-8")
    assert out["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": THOUGHT,
        "signature": SIGNATURE,
    }
    assert out["messages"][1]["content"][1]["type"] == "tool_use"
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 16384}
    assert again.dropped == []


def test_claude_signed_thinking_survives_a_codex_round_trip() -> None:
    t = pair(OPENAI_RESPONSES, ANTHROPIC)
    request(t, body("codex_tool_default_tool.jsonl", 63), "claude-opus-4-8")
    events = datas(translate_stream(t, sse_bytes("claude_tool_think.jsonl", 3)))
    completed = events[-1]
    assert completed["type"] == "response.completed"
    output = completed["response"]["output"]
    assert [item["type"] for item in output] == ["reasoning", "message", "function_call"]
    assert output[0]["summary"] == [{"type": "summary_text", "text": THOUGHT}]
    assert output[2]["call_id"] == "toolu_mock_440db79c255340b2"
    echoed = {"model": "claude-opus-4-8", "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        output[0], output[2],
        {"type": "function_call_output", "call_id": output[2]["call_id"], "output": "hi"},
    ]}  # fmt: skip
    out = request(pair(OPENAI_RESPONSES, ANTHROPIC), json.dumps(echoed).encode(), "claude-opus-4-8")
    assert out["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": THOUGHT,
        "signature": SIGNATURE,
    }


def test_gemini_thought_signature_survives_a_claude_code_round_trip() -> None:
    t = pair(ANTHROPIC, GEMINI)
    request(t, body("claude_p_tool.jsonl", 15), "gemini-3.8-flash")
    chunk = {"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "run_shell_command", "args": {"command": "ls"}},
         "thoughtSignature": "CiQBjz1rX0realGeminiSig=="}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 3}}  # fmt: skip
    message = collect(datas(translate_stream(t, b"data: " + json.dumps(chunk).encode() + b"\n\n")))
    assert [b["type"] for b in message["content"]] == ["thinking", "tool_use"]
    history = {"model": "gemini-3.8-flash", "max_tokens": 100, "messages": [
        {"role": "user", "content": "list files"},
        {"role": "assistant", "content": message["content"]},
        {"role": "user", "content": [{"type": "tool_result",
                                      "tool_use_id": message["content"][1]["id"],
                                      "content": "a.txt"}]},
    ]}  # fmt: skip
    out = request(pair(ANTHROPIC, GEMINI), json.dumps(history).encode(), "gemini-3.8-flash")
    model_turn = out["contents"][1]
    assert model_turn["role"] == "model"
    assert model_turn["parts"] == [{
        "functionCall": {"id": message["content"][1]["id"], "name": "run_shell_command",
                         "args": {"command": "ls"}},
        "thoughtSignature": "CiQBjz1rX0realGeminiSig==",
    }]  # fmt: skip
    assert out["contents"][2]["parts"][0]["functionResponse"]["name"] == "run_shell_command"
