"""The OpenAI Responses codec (what Codex CLI speaks), requests half; answers and streams
are in responses_replies.py.

Reasoning items and thinking blocks map onto each other: an Anthropic thinking
``signature`` travels as the item's ``encrypted_content`` (Codex sends it back with
``include: ["reasoning.encrypted_content"]``), a Responses item's id and encrypted content
travel packed in a thinking signature.
"""

from __future__ import annotations

from typing import Any

from tollway.translate.chat import (
    _EFFORT_BUDGET,
    default_max_tokens,
)
from tollway.translate.common import (
    JSON,
    Context,
    blocks,
    data_url,
    dumps,
    loads_args,
    parse_data_url,
    text_of,
    unpack,
)

_REDACTED = "redacted:"
_RESPONSES_ONLY = ("store", "include", "prompt_cache_key", "client_metadata", "text",
                   "previous_response_id", "conversation", "truncation", "background",
                   "service_tier", "safety_identifier", "prompt")  # fmt: skip
_PIVOT_ONLY = ("top_k", "stop_sequences", "context_management", "container", "mcp_servers",
               "output_config", "service_tier", "metadata")  # fmt: skip


# --- requests -------------------------------------------------------------------------


def _part(part: JSON, where: str, ctx: Context) -> JSON | None:
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": str(part.get("text", ""))}
    if kind == "refusal":
        return {"type": "text", "text": str(part.get("refusal", ""))}
    if kind == "input_image":
        url = str(part.get("image_url") or "")
        parsed = parse_data_url(url)
        if parsed is not None:
            return {"type": "image", "source": {"type": "base64", "media_type": parsed[0],
                                                "data": parsed[1]}}  # fmt: skip
        if url:
            return {"type": "image", "source": {"type": "url", "url": url}}
    if kind == "input_file":
        parsed = parse_data_url(str(part.get("file_data") or ""))
        if parsed is not None:
            return {"type": "document", "source": {"type": "base64", "media_type": parsed[0],
                                                   "data": parsed[1]}}  # fmt: skip
    ctx.drop(f"{where}({kind})")
    return None


def _content(content: Any, where: str, ctx: Context) -> list[JSON]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    out = []
    for j, part in enumerate(content or []):
        if isinstance(part, dict) and (block := _part(part, f"{where}[{j}]", ctx)) is not None:
            out.append(block)
    return out


def _append(messages: list[JSON], role: str, content: list[JSON]) -> None:
    if not content:
        return
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(content)
    else:
        messages.append({"role": role, "content": list(content)})


def _reasoning_block(item: JSON) -> JSON:
    signature = item.get("encrypted_content")
    if isinstance(signature, str) and signature.startswith(_REDACTED):
        return {"type": "redacted_thinking", "data": signature[len(_REDACTED) :]}
    text = "".join(str(s.get("text", "")) for s in item.get("summary") or [])
    return {"type": "thinking", "thinking": text, "signature": signature or ""}


def _item(item: JSON, i: int, system: list[JSON], messages: list[JSON], ctx: Context) -> None:
    kind = item.get("type", "message")
    where = f"input[{i}]"
    if kind == "message":
        role = item.get("role")
        content = _content(item.get("content"), f"{where}.content", ctx)
        if role in ("system", "developer"):
            system.extend(content)
        else:
            _append(messages, "assistant" if role == "assistant" else "user", content)
    elif kind in ("function_call", "custom_tool_call"):
        args = item.get("arguments") if kind == "function_call" else None
        tool_input = loads_args(args) if kind == "function_call" else {"input": item.get("input")}
        _append(messages, "assistant", [{"type": "tool_use", "id": str(item.get("call_id")),
                                         "name": str(item.get("name", "")),
                                         "input": tool_input}])  # fmt: skip
    elif kind in ("function_call_output", "custom_tool_call_output"):
        output = item.get("output")
        content = _content(output, f"{where}.output", ctx) if isinstance(output, list) else (
            [{"type": "text", "text": str(output)}] if output else [])  # fmt: skip
        _append(messages, "user", [{"type": "tool_result", "tool_use_id": str(item.get("call_id")),
                                    "content": content}])  # fmt: skip
    elif kind == "reasoning":
        own = unpack("r", item.get("encrypted_content"))  # a pivot block, carried through
        block = own if isinstance(own, dict) else _reasoning_block(item)
        _append(messages, "assistant", [block])
    else:
        ctx.drop(f"{where}({kind})")


def _tool(tool: JSON, i: int, ctx: Context) -> JSON | None:
    kind = tool.get("type")
    if kind == "function":
        out: JSON = {"name": tool.get("name", ""),
                     "input_schema": tool.get("parameters") or {"type": "object",
                                                               "properties": {}}}  # fmt: skip
        if tool.get("description"):
            out["description"] = tool["description"]
        return out
    if kind == "custom":  # freeform input (e.g. apply_patch): one string field
        ctx.custom_tools.add(str(tool.get("name")))
        schema = {"type": "object", "properties": {"input": {"type": "string"}},
                  "required": ["input"]}  # fmt: skip
        return {"name": tool.get("name", ""), "description": tool.get("description", ""),
                "input_schema": schema}  # fmt: skip
    ctx.drop(f"tools[{i}]({kind})")
    return None


def request_to_pivot(doc: JSON, ctx: Context) -> JSON:
    system: list[JSON] = []
    if doc.get("instructions"):
        system.append({"type": "text", "text": str(doc["instructions"])})
    messages: list[JSON] = []
    items = doc.get("input")
    if isinstance(items, str):
        items = [{"type": "message", "role": "user", "content": items}]
    for i, item in enumerate(items or []):
        if isinstance(item, dict):
            _item(item, i, system, messages, ctx)
    out: JSON = {"model": doc.get("model"), "messages": messages}
    if system:
        out["system"] = system
    cap = doc.get("max_output_tokens")
    out["max_tokens"] = int(cap) if cap else default_max_tokens(ctx.model)
    found = (_tool(t, i, ctx) for i, t in enumerate(doc.get("tools") or []))
    tools = [t for t in found if t is not None]
    names = {t["name"] for t in tools}
    if tools:
        out["tools"] = tools
        choice = doc.get("tool_choice")
        if choice == "required":
            out["tool_choice"] = {"type": "any"}
        elif choice == "none":
            out["tool_choice"] = {"type": "none"}
        elif isinstance(choice, dict):
            if choice.get("name") in names:
                out["tool_choice"] = {"type": "tool", "name": choice["name"]}
            else:
                ctx.drop("tool_choice.name(not in tools)")
        if doc.get("parallel_tool_calls") is False:
            out.setdefault("tool_choice", {"type": "auto"})["disable_parallel_tool_use"] = True
    for name in ("temperature", "top_p"):
        if doc.get(name) is not None:
            out[name] = min(float(doc[name]), 1.0)
    effort = (doc.get("reasoning") or {}).get("effort")
    if effort in _EFFORT_BUDGET:
        budget = min(_EFFORT_BUDGET[effort], out["max_tokens"] - 1)
        if budget >= 1024:
            out["thinking"] = {"type": "enabled", "budget_tokens": budget}
            out.pop("temperature", None)
            out.pop("top_p", None)
    if doc.get("user"):
        out["metadata"] = {"user_id": str(doc["user"])}
    if doc.get("stream"):
        out["stream"] = True
    for name in _RESPONSES_ONLY:
        if name in doc and name not in ("store", "include"):
            ctx.drop(name)
    return out


def _message_item(role: str, parts: list[JSON]) -> JSON:
    kind = "output_text" if role == "assistant" else "input_text"
    content = []
    for p in parts:
        if p["type"] == "text":
            content.append({"type": kind, "text": p["text"]})
        else:
            content.append(p)
    return {"type": "message", "role": role, "content": content}


def _input_part(block: JSON, where: str, ctx: Context) -> JSON | None:
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": block.get("text", "")}
    source = block.get("source") or {}
    if kind in ("image", "document") and source.get("type") == "base64":
        url = data_url(str(source.get("media_type")), str(source.get("data")))
        if kind == "image":
            return {"type": "input_image", "image_url": url}
        return {"type": "input_file", "filename": "document.pdf", "file_data": url}
    if kind == "image" and source.get("type") == "url":
        return {"type": "input_image", "image_url": source.get("url")}
    ctx.drop(f"{where}({kind})")
    return None


def _turn_items(i: int, message: JSON, ctx: Context) -> list[JSON]:
    role = "assistant" if message.get("role") == "assistant" else "user"
    items: list[JSON] = []
    parts: list[JSON] = []

    def flush() -> None:
        if parts:
            items.append(_message_item(role, list(parts)))
            parts.clear()

    for j, block in enumerate(blocks(message.get("content"))):
        kind, where = block.get("type"), f"messages[{i}].content[{j}]"
        if kind == "tool_use":
            flush()
            items.append({"type": "function_call", "call_id": block.get("id"),
                          "name": block.get("name"),
                          "arguments": dumps(block.get("input") or {})})  # fmt: skip
        elif kind == "tool_result":
            flush()
            output = text_of(blocks(block.get("content")))
            items.append({"type": "function_call_output", "call_id": block.get("tool_use_id"),
                          "output": output})  # fmt: skip
        elif kind in ("thinking", "redacted_thinking"):
            flush()
            if (reasoning := _reasoning_item(block, where, ctx)) is not None:
                items.append(reasoning)
        elif (part := _input_part(block, where, ctx)) is not None:
            parts.append(part)
    flush()
    return items


def _reasoning_item(block: JSON, where: str, ctx: Context) -> JSON | None:
    """A thinking block that came from a Responses upstream, as the item it was."""
    own = unpack("o", block.get("signature"))
    if not isinstance(own, dict):
        ctx.drop(f"{where}({block.get('type')})")  # another API's reasoning: unverifiable
        return None
    text = block.get("thinking", "")
    item: JSON = {"type": "reasoning", "summary": [{"type": "summary_text", "text": text}]
                  if text else [], "encrypted_content": own.get("encrypted_content")}  # fmt: skip
    if own.get("id"):
        item["id"] = own["id"]
    return item


def request_from_pivot(doc: JSON, ctx: Context) -> JSON:
    out: JSON = {"model": ctx.model}
    system = doc.get("system")
    if system:
        out["instructions"] = text_of(blocks(system))
    items: list[JSON] = []
    for i, message in enumerate(doc.get("messages") or []):
        items.extend(_turn_items(i, message, ctx))
    out["input"] = items
    if doc.get("max_tokens"):
        out["max_output_tokens"] = doc["max_tokens"]
    tools = []
    for i, tool in enumerate(doc.get("tools") or []):
        if "input_schema" not in tool or tool.get("type") not in (None, "custom"):
            ctx.drop(f"tools[{i}]({tool.get('type') or tool.get('name')})")
            continue
        tools.append({"type": "function", "name": tool["name"],
                      "description": tool.get("description", ""),
                      "parameters": tool["input_schema"]})  # fmt: skip
    if tools:
        out["tools"] = tools
        choice = doc.get("tool_choice") or {}
        names = [t["name"] for t in tools]
        if choice.get("type") == "any":
            out["tool_choice"] = "required"
        elif choice.get("type") == "none":
            out["tool_choice"] = "none"
        elif choice.get("type") == "tool":
            if choice.get("name") in names:
                out["tool_choice"] = {"type": "function", "name": choice["name"]}
            else:
                ctx.drop("tool_choice.name(not in tools)")
                out["tool_choice"] = "required"
        if choice.get("disable_parallel_tool_use"):
            out["parallel_tool_calls"] = False
    thinking = doc.get("thinking") or {}
    if thinking.get("type") in ("enabled", "adaptive"):
        out["reasoning"] = {"effort": "medium", "summary": "auto"}
        out["include"] = ["reasoning.encrypted_content"]
    for name in ("temperature", "top_p"):
        if doc.get(name) is not None:
            out[name] = doc[name]
    out["store"] = False
    if ctx.stream:
        out["stream"] = True
    for name in _PIVOT_ONLY:
        if name in doc:
            ctx.drop(name)
    return out
