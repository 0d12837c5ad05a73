"""Tool calls read off real responses of every dialect, and their results off the next
request (captures of Claude Code, Codex CLI and Gemini CLI in tests/fixtures/wire)."""

from __future__ import annotations

import hashlib
import json

from audit_wire import body_bytes, capture, observed, sse_bytes

from tollway.audit.actions import describe, proposed_calls, tool_results


def _anthropic_json(sse: list[dict[str, object]]) -> bytes:
    """The same answer as one JSON message (Claude Code's non-streamed retry)."""
    blocks: list[dict[str, object]] = []
    parts: dict[int, str] = {}
    for e in sse:
        d = e["data"]
        assert isinstance(d, dict)
        if d["type"] == "content_block_start":
            blocks.append(dict(d["content_block"]))
        elif d["type"] == "content_block_delta" and d["delta"]["type"] == "input_json_delta":
            parts[d["index"]] = parts.get(d["index"], "") + d["delta"]["partial_json"]
    for index, text in parts.items():
        blocks[index]["input"] = json.loads(text)
    return json.dumps({"type": "message", "role": "assistant", "content": blocks}).encode()


def test_claude_code_stream_and_json_and_result() -> None:
    for name in ("claude_p_tool.jsonl", "claude_tool_skipperm.jsonl"):
        first, second = capture(name)
        tools = observed("anthropic", sse_bytes(first["response"]))
        # Only the tool block's start and its input deltas are kept from the stream.
        assert len(tools.events) == 4
        calls = proposed_calls("anthropic", tools.events, None)
        assert [(c.tool, c.kind, c.command) for c in calls] == [("Bash", "bash", "echo hi")]
        call_id = calls[0].id
        assert call_id.startswith("toolu_mock_")
        doc = {"command": "echo hi", "description": "Print hi"}
        canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"))
        assert calls[0].input_sha256 == hashlib.sha256(canonical.encode()).hexdigest()
        whole = proposed_calls("anthropic", [], _anthropic_json(first["response"]["sse"]))
        assert whole == calls
        results = tool_results("anthropic", body_bytes(second))
        assert [(r.call_id, r.is_error, r.text, r.size) for r in results] == [
            (call_id, False, "hi", 2)
        ]
        assert not results[0].denied
        # The final answer carries no tool call, and the first request no result.
        assert proposed_calls("anthropic", observed("anthropic", sse_bytes(second["response"]))
                              .events, None) == []  # fmt: skip
        assert tool_results("anthropic", body_bytes(first)) == []


def test_codex_responses_function_call_and_output() -> None:
    first, second = capture("codex_tool_default_tool.jsonl")
    tools = observed("openai_responses", sse_bytes(first["response"]))
    assert len(tools.events) == 1  # response.output_item.done
    calls = proposed_calls("openai_responses", tools.events, None)
    assert [(c.id, c.tool, c.kind, c.command) for c in calls] == [
        ("call_mock1", "exec_command", "bash", "echo hi")
    ]
    results = tool_results("openai_responses", body_bytes(second))
    assert [(r.call_id, r.is_error) for r in results] == [("call_mock1", False)]
    assert "Process exited with code 0" in results[0].text


def test_gemini_function_call_and_response() -> None:
    rows = capture("gemini_tool.jsonl")
    classifier, first, second = rows
    assert proposed_calls("gemini", [], json.dumps(classifier["response"]).encode()) == []
    tools = observed("gemini", sse_bytes(first["response"]))
    calls = proposed_calls("gemini", tools.events, None)
    assert [(c.tool, c.kind, c.command) for c in calls] == [
        ("run_shell_command", "bash", "echo hi")
    ]
    results = tool_results("gemini", body_bytes(second))
    assert [(r.call_id, r.tool, r.is_error) for r in results] == [
        ("run_shell_command_1795436587966_0", "run_shell_command", False)
    ]
    assert "Output: hi" in results[0].text


def _chat_chunk(delta: dict[str, object]) -> bytes:
    doc = {"id": "c1", "object": "chat.completion.chunk", "model": "gpt-5",
           "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}  # fmt: skip
    return b"data: " + json.dumps(doc).encode() + b"\n\n"


def test_openai_chat_tool_calls_streamed_and_whole() -> None:
    stream = (
        _chat_chunk({"role": "assistant", "content": None})
        + _chat_chunk({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                                       "function": {"name": "Read", "arguments": ""}}]})
        + _chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"file_pa'}}]})
        + _chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'th": "/w/a.py"}'}}]})
        + _chat_chunk({"content": "done"})
        + b"data: [DONE]\n\n"
    )  # fmt: skip
    tools = observed("openai_chat", stream)
    assert len(tools.events) == 3
    calls = proposed_calls("openai_chat", tools.events, None)
    assert [(c.id, c.tool, c.kind, c.paths) for c in calls] == [
        ("call_a", "Read", "read", ("/w/a.py",))
    ]
    whole = {"choices": [{"message": {"role": "assistant", "tool_calls": [
        {"id": "call_a", "type": "function",
         "function": {"name": "Read", "arguments": '{"file_path": "/w/a.py"}'}}]}}]}  # fmt: skip
    assert proposed_calls("openai_chat", [], json.dumps(whole).encode()) == calls
    asked = whole["choices"][0]["message"]["tool_calls"]
    request = {"messages": [
        {"role": "user", "content": "read it"}, {"role": "assistant", "tool_calls": asked},
        {"role": "tool", "tool_call_id": "call_a", "content": "x = 1"}]}  # fmt: skip
    results = tool_results("openai_chat", json.dumps(request).encode())
    assert [(r.call_id, r.text) for r in results] == [("call_a", "x = 1")]


def test_edit_sizes_hashes_paths_and_mcp_names() -> None:
    content = "print('héllo')\n"
    write = describe("t1", "Write", {"file_path": "/w/p/a.py", "content": content})
    assert (write.kind, write.paths, write.edit_bytes) == ("edit", ("/w/p/a.py",), 16)
    assert write.edit_sha256 == hashlib.sha256(content.encode()).hexdigest()
    edits = [{"old_string": "a", "new_string": "bb"}, {"old_string": "c", "new_string": "ddd"}]
    multi = describe("t2", "MultiEdit", {"file_path": "b.py", "edits": edits})
    assert (multi.edit_bytes, multi.edit_sha256) == (5, hashlib.sha256(b"bbddd").hexdigest())
    mcp = describe("t3", "mcp__github__create_issue", {"title": "x"})
    assert (mcp.kind, mcp.mcp_server, mcp.mcp_tool) == ("mcp", "github", "create_issue")
    fetch = describe("t4", "WebFetch", {"url": "https://docs.example.com/a?b", "prompt": "p"})
    assert (fetch.kind, fetch.domain) == ("web", "docs.example.com")
    search = describe("t5", "WebSearch", {"query": "q", "allowed_domains": ["python.org"]})
    assert search.domain == "python.org"


def test_responses_custom_and_local_shell_items() -> None:
    patch = "*** Begin Patch\n*** Update File: src/a.py\n@@\n-x\n+y\n*** End Patch\n"
    body = {"output": [
        {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": patch},
        {"type": "local_shell_call", "call_id": "c2", "action": {
            "type": "exec", "command": ["bash", "-lc", "ls -la /tmp"]}},
        {"type": "mcp_call", "id": "m1", "server_label": "files", "name": "read",
         "arguments": '{"path": "/etc/hosts"}'},
        {"type": "message", "role": "assistant", "content": []},
    ]}  # fmt: skip
    calls = proposed_calls("openai_responses", [], json.dumps(body).encode())
    assert [(c.id, c.tool, c.kind) for c in calls] == [
        ("c1", "apply_patch", "edit"), ("c2", "local_shell", "bash"),
        ("m1", "mcp__files__read", "mcp"),
    ]  # fmt: skip
    assert calls[0].paths == ("src/a.py",) and calls[0].edit_bytes == len(patch)
    assert calls[1].command == "ls -la /tmp"
    assert calls[2].paths == ("/etc/hosts",)
    request = {"input": [
        {"type": "custom_tool_call_output", "call_id": "c1", "output": "Done!"},
        {"type": "local_shell_call_output", "call_id": "c2",
         "output": "Process exited with code 2\nls: cannot access"},
    ]}  # fmt: skip
    results = tool_results("openai_responses", json.dumps(request).encode())
    assert [(r.call_id, r.is_error) for r in results] == [("c1", False), ("c2", True)]


def test_claude_code_denial_text_is_recognised() -> None:
    text = "Claude requested permissions to use Bash, but you haven't granted it yet."
    request = {"messages": [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True, "content": text},
        {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": True,
         "content": [{"type": "text", "text": "Exit code 1\nno such file"}]},
    ]}]}  # fmt: skip
    results = tool_results("anthropic", json.dumps(request).encode())
    assert [(r.call_id, r.denied) for r in results] == [("toolu_1", True), ("toolu_2", False)]


def test_hostile_nesting_reads_as_no_calls() -> None:
    """5,000 nested arrays (what a hostile upstream may send) are no tool calls, not a
    RecursionError that would stop the audit thread's batch."""
    deep = b'{"type":"message","content":' + b"[" * 5000
    for dialect in ("anthropic", "openai_chat", "openai_responses", "gemini"):
        assert proposed_calls(dialect, [], deep) == []
        assert proposed_calls(dialect, [b'{"usage":' + b"[" * 5000], None) == []
        assert tool_results(dialect, b'{"messages":' + b"[" * 5000 + b"]" * 5000 + b"}") == []
