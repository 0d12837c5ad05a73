"""Agent actions: the tool calls a model proposes, and what became of them.

    calls = proposed_calls(dialect, events_or_body)      # from a response
    results = tool_results(dialect, request_body)        # from the agent's next request

Pure functions over bytes the gateway already holds; they run on the audit log's own
thread, never on the request path (audit/observe.py only keeps the events they need).
Dialects: Anthropic (SSE and JSON), OpenAI Chat (``tool_calls``), OpenAI Responses
(``function_call``, ``custom_tool_call``, ``local_shell_call``, ``mcp_call``), Gemini
(``functionCall``).
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import msgspec

ANTHROPIC = "anthropic"
OPENAI_CHAT = "openai_chat"
OPENAI_RESPONSES = "openai_responses"
GEMINI = "gemini"

# Tool-call item types of the Responses API and the key their result items carry.
_RESPONSES_CALLS = ("function_call", "custom_tool_call", "local_shell_call", "mcp_call")
_RESPONSES_OUTPUTS = ("function_call_output", "custom_tool_call_output", "local_shell_call_output")
_PATH_KEYS = ("file_path", "path", "notebook_path", "absolute_path", "dir_path", "directory")
_EDIT_KEYS = ("content", "new_string", "new_source", "new_str", "file_text")
_BASH_TOOLS = frozenset({"bash", "shell", "exec_command", "run_shell_command", "local_shell",
                         "container.exec", "shell_command"})  # fmt: skip
_WEB_TOOLS = frozenset({"webfetch", "websearch", "web_fetch", "google_web_search", "web_search"})
_EDIT_TOOLS = frozenset({"edit", "multiedit", "write", "notebookedit", "write_file", "replace",
                         "apply_patch", "str_replace_based_edit_tool"})  # fmt: skip
_READ_TOOLS = frozenset({"read", "read_file", "glob", "grep", "ls", "read_many_files",
                         "list_directory", "search_file_content"})  # fmt: skip
# What Claude Code writes into a tool_result when a tool was not permitted.
DENIAL_MARKERS = (
    "but you haven't granted it yet",
    "permission to use",
    "was blocked",
    "denied by",
    "hook denied",
    "The user doesn't want to proceed",
)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call a model proposed, with what the audit keeps of its input."""

    id: str
    tool: str
    input: dict[str, Any]
    kind: str = "other"  # bash | edit | read | web | mcp | task | other
    command: str | None = None
    paths: tuple[str, ...] = ()
    domain: str | None = None
    edit_bytes: int | None = None
    edit_sha256: str | None = None
    input_sha256: str = ""
    mcp_server: str | None = None
    mcp_tool: str | None = None


@dataclass(frozen=True, slots=True)
class ToolResult:
    """The agent's answer to one call: ``call_id``, error flag, the text and its size."""

    call_id: str
    is_error: bool
    text: str
    size: int
    sha256: str
    tool: str | None = None  # Gemini answers by name (its calls carry no id)

    @property
    def denied(self) -> bool:
        return self.is_error and any(m in self.text for m in DENIAL_MARKERS)


def sha256(data: str | bytes) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def canonical(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def describe(call_id: str, tool: str, args: Any) -> ToolCall:
    """A ``ToolCall`` with its command, paths, domain, edit size and hashes read off."""
    doc: dict[str, Any] = args if isinstance(args, dict) else {"input": args}
    low = tool.lower()
    server = mcp_tool = None
    kind = "other"
    if tool.startswith("mcp__"):
        kind = "mcp"
        _, _, rest = tool.partition("__")
        server, _, mcp_tool = rest.partition("__")
    elif low in _BASH_TOOLS:
        kind = "bash"
    elif low in _EDIT_TOOLS:
        kind = "edit"
    elif low in _READ_TOOLS:
        kind = "read"
    elif low in _WEB_TOOLS:
        kind = "web"
    elif low in ("task", "agent"):
        kind = "task"
    command = _command(doc)
    if command is not None and kind == "other":
        kind = "bash"
    paths = _paths(doc, tool)
    edit = _edit_text(doc)
    return ToolCall(
        id=call_id, tool=tool, input=doc, kind=kind, command=command, paths=paths,
        domain=_domain(doc), edit_bytes=len(edit.encode()) if edit is not None else None,
        edit_sha256=sha256(edit) if edit is not None else None, input_sha256=sha256(canonical(doc)),
        mcp_server=server or None, mcp_tool=mcp_tool or None,
    )  # fmt: skip


def _command(doc: dict[str, Any]) -> str | None:
    for key in ("command", "cmd"):
        value = doc.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            # ["bash", "-lc", "..."]: the script is what runs.
            if len(value) == 3 and value[1] in ("-c", "-lc"):
                return str(value[2])
            return shlex.join(value)
    action = doc.get("action")
    if isinstance(action, dict):
        return _command(action)
    return None


def _paths(doc: dict[str, Any], tool: str) -> tuple[str, ...]:
    out: list[str] = []
    for key in _PATH_KEYS:
        value = doc.get(key)
        if isinstance(value, str) and value:
            out.append(value)
    value = doc.get("paths")
    if isinstance(value, list):
        out += [v for v in value if isinstance(v, str)]
    patch = doc.get("input") if tool == "apply_patch" else doc.get("patch")
    if isinstance(patch, str):
        for line in patch.splitlines():
            for marker in ("*** Update File: ", "*** Add File: ", "*** Delete File: "):
                if line.startswith(marker):
                    out.append(line[len(marker) :].strip())
    return tuple(dict.fromkeys(out))


def _edit_text(doc: dict[str, Any]) -> str | None:
    for key in _EDIT_KEYS:
        value = doc.get(key)
        if isinstance(value, str):
            return value
    edits = doc.get("edits")
    if isinstance(edits, list):
        parts = [e.get("new_string", "") for e in edits if isinstance(e, dict)]
        return "".join(p for p in parts if isinstance(p, str))
    for key in ("input", "patch"):
        value = doc.get(key)
        if isinstance(value, str) and "*** Begin Patch" in value:
            return value
    return None


def _domain(doc: dict[str, Any]) -> str | None:
    url = doc.get("url")
    if isinstance(url, str) and "://" in url:
        return urlsplit(url).hostname
    allowed = doc.get("allowed_domains")
    if isinstance(allowed, list) and allowed and isinstance(allowed[0], str):
        return allowed[0]
    return None


def _loads(data: bytes | str) -> Any:
    """JSON, or None for what does not parse (a hostile upstream's 5,000 nested arrays
    included: they would raise RecursionError)."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def _args(raw: Any) -> Any:
    """Function-call arguments: a JSON string (OpenAI), else the value itself."""
    if isinstance(raw, str):
        parsed = _loads(raw) if raw.strip() else {}
        return parsed if parsed is not None else {"input": raw}
    return raw if raw is not None else {}


# -- responses


def proposed_calls(dialect: str, events: Iterable[bytes], body: bytes | None) -> list[ToolCall]:
    """The tool calls in a response: ``events`` are the SSE data the observer kept (a stream),
    ``body`` a whole JSON body (not streamed)."""
    if body is not None:
        doc = _loads(body)
        return _from_body(dialect, doc) if isinstance(doc, dict) else []
    docs = [d for d in (_loads(e) for e in events) if isinstance(d, dict)]
    if dialect == ANTHROPIC:
        return _anthropic_stream(docs)
    if dialect == OPENAI_CHAT:
        return _chat_stream(docs)
    if dialect == OPENAI_RESPONSES:
        return [c for d in docs for c in _responses_items([d.get("item")])]
    if dialect == GEMINI:
        return [c for i, d in enumerate(docs) for c in _gemini(d, str(i))]
    return []


def _from_body(dialect: str, doc: dict[str, Any]) -> list[ToolCall]:
    if dialect == ANTHROPIC:
        blocks = doc.get("content")
        return [describe(str(b.get("id", "")), str(b.get("name", "")), b.get("input"))
                for b in blocks if isinstance(b, dict) and _is_use(b.get("type"))
                ] if isinstance(blocks, list) else []  # fmt: skip
    if dialect == OPENAI_CHAT:
        out: list[ToolCall] = []
        for choice in doc.get("choices") or []:
            message = choice.get("message") if isinstance(choice, dict) else None
            for tc in (message or {}).get("tool_calls") or []:
                fn = tc.get("function") or {}
                out.append(describe(str(tc.get("id", "")), str(fn.get("name", "")),
                                    _args(fn.get("arguments"))))  # fmt: skip
        return out
    if dialect == OPENAI_RESPONSES:
        output = doc.get("output")
        return _responses_items(output) if isinstance(output, list) else []
    if dialect == GEMINI:
        return _gemini(doc, "0")
    return []


def _is_use(kind: Any) -> bool:
    return kind in ("tool_use", "server_tool_use", "mcp_tool_use")


def _anthropic_stream(docs: list[dict[str, Any]]) -> list[ToolCall]:
    blocks: dict[int, tuple[str, str, list[str], Any]] = {}
    for d in docs:
        index = d.get("index")
        if not isinstance(index, int):
            continue
        if d.get("type") == "content_block_start":
            block = d.get("content_block") or {}
            if _is_use(block.get("type")):
                blocks[index] = (str(block.get("id", "")), str(block.get("name", "")), [],
                                 block.get("input"))  # fmt: skip
        elif d.get("type") == "content_block_delta" and index in blocks:
            delta = d.get("delta") or {}
            if delta.get("type") == "input_json_delta":
                blocks[index][2].append(str(delta.get("partial_json", "")))
    out = []
    for _index, (call_id, name, parts, start_input) in sorted(blocks.items()):
        text = "".join(parts)
        args = _args(text) if text else (start_input or {})
        out.append(describe(call_id, name, args))
    return out


def _chat_stream(docs: list[dict[str, Any]]) -> list[ToolCall]:
    calls: dict[int, list[str]] = {}  # index -> [id, name, arguments...]
    for d in docs:
        for choice in d.get("choices") or []:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            for tc in (delta or {}).get("tool_calls") or []:
                index = tc.get("index", 0)
                entry = calls.setdefault(index, ["", ""])
                if tc.get("id"):
                    entry[0] = str(tc["id"])
                fn = tc.get("function") or {}
                if fn.get("name"):
                    entry[1] += str(fn["name"])
                if fn.get("arguments"):
                    entry.append(str(fn["arguments"]))
    return [describe(e[0], e[1], _args("".join(e[2:]))) for _i, e in sorted(calls.items())]


def _responses_items(items: list[Any]) -> list[ToolCall]:
    out = []
    for item in items:
        if not isinstance(item, dict) or item.get("type") not in _RESPONSES_CALLS:
            continue
        kind = item["type"]
        call_id = str(item.get("call_id") or item.get("id") or "")
        if kind == "custom_tool_call":
            out.append(describe(call_id, str(item.get("name", "")), {"input": item.get("input")}))
        elif kind == "local_shell_call":
            out.append(describe(call_id, "local_shell", {"action": item.get("action") or {}}))
        elif kind == "mcp_call":
            name = f"mcp__{item.get('server_label', '')}__{item.get('name', '')}"
            out.append(describe(call_id, name, _args(item.get("arguments"))))
        else:
            out.append(describe(call_id, str(item.get("name", "")), _args(item.get("arguments"))))
    return out


def _gemini(doc: dict[str, Any], tag: str) -> list[ToolCall]:
    out = []
    for c, cand in enumerate(doc.get("candidates") or []):
        parts = ((cand or {}).get("content") or {}).get("parts") or []
        for p, part in enumerate(parts):
            fc = part.get("functionCall") if isinstance(part, dict) else None
            if isinstance(fc, dict):
                call_id = str(fc.get("id") or f"gemini:{tag}.{c}.{p}")
                out.append(describe(call_id, str(fc.get("name", "")), fc.get("args") or {}))
    return out


# -- requests


class _Turns(msgspec.Struct):
    """A request's conversation, each turn left unparsed until it is needed."""

    messages: list[msgspec.Raw] | None = None
    input: list[msgspec.Raw] | str | None = None
    contents: list[msgspec.Raw] | None = None


_turns = msgspec.json.Decoder(_Turns)


def _tail(turns: list[msgspec.Raw] | None, keep: int) -> list[Any]:
    """The last ``keep`` turns, parsed (a long history is skipped over, not parsed)."""
    out = []
    for raw in (turns or [])[-keep:]:
        try:
            out.append(msgspec.json.decode(raw))
        except msgspec.DecodeError:
            out.append(None)
    return out


_RESULT_TURNS = 64  # trailing Chat tool messages / Responses items read at most


def tool_results(dialect: str, body: bytes) -> list[ToolResult]:
    """The results of the latest turn in an agent's request: only those after the last
    assistant turn (earlier ones were seen with earlier requests)."""
    try:
        doc = _turns.decode(body) if body else None
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return []
    if doc is None:
        return []
    if dialect == ANTHROPIC:
        return _anthropic_results(_tail(doc.messages, 1))
    if dialect == OPENAI_CHAT:
        return _chat_results(_tail(doc.messages, _RESULT_TURNS))
    if dialect == OPENAI_RESPONSES:
        items = doc.input if isinstance(doc.input, list) else None
        return _responses_results(_tail(items, _RESULT_TURNS))
    if dialect == GEMINI:
        return _gemini_results(_tail(doc.contents, 1))
    return []


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(_text(c.get("text", "")) if isinstance(c, dict) else str(c)
                         for c in content)  # fmt: skip
    if content is None:
        return ""
    return canonical(content)


def _result(call_id: str, is_error: bool, content: Any, tool: str | None = None) -> ToolResult:
    text = _text(content)
    return ToolResult(call_id, is_error, text, len(text.encode()), sha256(text), tool)


def _anthropic_results(messages: Any) -> list[ToolResult]:
    if not isinstance(messages, list) or not messages:
        return []
    last = messages[-1]
    if not isinstance(last, dict) or last.get("role") != "user":
        return []
    content = last.get("content")
    if not isinstance(content, list):
        return []
    return [_result(str(b.get("tool_use_id", "")), bool(b.get("is_error")), b.get("content"))
            for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]  # fmt: skip


def _chat_results(messages: Any) -> list[ToolResult]:
    out: list[ToolResult] = []
    for m in reversed(messages if isinstance(messages, list) else []):
        if not isinstance(m, dict) or m.get("role") != "tool":
            break
        out.append(_result(str(m.get("tool_call_id", "")), False, m.get("content")))
    return out[::-1]


def _responses_results(items: Any) -> list[ToolResult]:
    out: list[ToolResult] = []
    for item in reversed(items if isinstance(items, list) else []):
        kind = item.get("type") if isinstance(item, dict) else None
        if kind in _RESPONSES_OUTPUTS:
            assert isinstance(item, dict)
            output = item.get("output")
            failed = _exit_code(output) not in (None, 0)
            out.append(_result(str(item.get("call_id", "")), failed, output))
        elif kind in (*_RESPONSES_CALLS, "reasoning"):
            continue
        else:
            break
    return out[::-1]


def _exit_code(output: Any) -> int | None:
    """Codex reports ``Process exited with code N`` in a shell call's output."""
    text = _text(output)
    marker = "exited with code "
    at = text.find(marker)
    if at < 0:
        return None
    digits = text[at + len(marker) :].split(maxsplit=1)
    return int(digits[0]) if digits and digits[0].lstrip("-").isdigit() else None


def _gemini_results(contents: Any) -> list[ToolResult]:
    if not isinstance(contents, list) or not contents:
        return []
    last = contents[-1]
    if not isinstance(last, dict) or last.get("role") != "user":
        return []
    out = []
    for part in last.get("parts") or []:
        fr = part.get("functionResponse") if isinstance(part, dict) else None
        if isinstance(fr, dict):
            response = fr.get("response") or {}
            failed = isinstance(response, dict) and "error" in response
            out.append(_result(str(fr.get("id", "")), failed, response, str(fr.get("name", ""))))
    return out
