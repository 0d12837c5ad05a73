"""The OpenAI Chat Completions codec, requests half: request bodies to and from the pivot
(Anthropic Messages). Answers, streams and errors: chat_replies.py."""

from __future__ import annotations

from typing import Any

from tollway.accounting.limits import model_limits
from tollway.translate.common import (
    JSON,
    Context,
    blocks,
    data_url,
    dumps,
    loads_args,
    new_id,
    parse_data_url,
    text_of,
)

_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
           "tool_use": "tool_calls", "refusal": "content_filter", "pause_turn": "stop",
           "model_context_window_exceeded": "length"}  # fmt: skip
_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
         "function_call": "tool_use", "content_filter": "refusal"}  # fmt: skip
_EFFORT_BUDGET = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 24576}
# Pivot request fields Chat Completions has no place for.
_PIVOT_ONLY = ("top_k", "context_management", "container", "mcp_servers", "thinking",
               "output_config", "service_tier", "metadata", "betas")  # fmt: skip
# Chat fields the pivot has no place for.
_CHAT_ONLY = ("frequency_penalty", "presence_penalty", "logit_bias", "logprobs",
              "top_logprobs", "seed", "response_format", "modalities", "audio",
              "prediction", "web_search_options", "store", "service_tier",
              "prompt_cache_key", "safety_identifier", "verbosity")  # fmt: skip
DEFAULT_MAX_TOKENS = 16384


def default_max_tokens(model: str) -> int:
    limits = model_limits(model)
    return DEFAULT_MAX_TOKENS if limits.entry == "unknown" else min(limits.max_output, 32000)


# --- requests -------------------------------------------------------------------------


def _part_to_block(part: Any, where: str, ctx: Context) -> JSON | None:
    if isinstance(part, str):
        return {"type": "text", "text": part}
    kind = part.get("type")
    if kind == "text":
        return {"type": "text", "text": str(part.get("text", ""))}
    if kind == "image_url":
        url = str((part.get("image_url") or {}).get("url", ""))
        parsed = parse_data_url(url)
        if parsed is not None:
            media, data = parsed
            return {"type": "image", "source": {"type": "base64", "media_type": media,
                                                "data": data}}  # fmt: skip
        return {"type": "image", "source": {"type": "url", "url": url}}
    if kind == "file":
        file = part.get("file") or {}
        parsed = parse_data_url(str(file.get("file_data", "")))
        if parsed is not None:
            media, data = parsed
            return {"type": "document", "source": {"type": "base64", "media_type": media,
                                                   "data": data}}  # fmt: skip
    ctx.drop(f"{where}({kind})")
    return None


def _content_blocks(content: Any, where: str, ctx: Context) -> list[JSON]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    out: list[JSON] = []
    for j, part in enumerate(content or []):
        block = _part_to_block(part, f"{where}[{j}]", ctx)
        if block is not None:
            out.append(block)
    return out


def _append(messages: list[JSON], role: str, content: list[JSON]) -> None:
    """Consecutive turns of one role become one (the pivot alternates roles)."""
    if not content:
        return
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(content)
    else:
        messages.append({"role": role, "content": list(content)})


def _tool_to_pivot(tool: JSON, i: int, ctx: Context) -> JSON | None:
    if tool.get("type") != "function":
        ctx.drop(f"tools[{i}]({tool.get('type')})")
        return None
    fn = tool.get("function") or {}
    out: JSON = {
        "name": fn.get("name", ""),
        "input_schema": fn.get("parameters") or {"type": "object", "properties": {}},
    }
    if fn.get("description"):
        out["description"] = fn["description"]
    return out


def _choice_to_pivot(choice: Any, names: set[str], ctx: Context) -> JSON | None:
    if choice in (None, "auto"):
        return {"type": "auto"} if choice else None
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if name in names:
            return {"type": "tool", "name": name}
        ctx.drop("tool_choice.function.name(not in tools)")
        return {"type": "any"} if names else None
    return None


def request_to_pivot(doc: JSON, ctx: Context) -> JSON:
    system: list[JSON] = []
    messages: list[JSON] = []
    for i, message in enumerate(doc.get("messages") or []):
        role, content, where = message.get("role"), message.get("content"), f"messages[{i}]"
        if role in ("system", "developer"):
            system.extend(_content_blocks(content, f"{where}.content", ctx))
        elif role == "user":
            _append(messages, "user", _content_blocks(content, f"{where}.content", ctx))
        elif role == "tool":
            result = {"type": "tool_result", "tool_use_id": str(message.get("tool_call_id", "")),
                      "content": _content_blocks(content, f"{where}.content", ctx)}  # fmt: skip
            _append(messages, "user", [result])
        elif role == "assistant":
            parts = _content_blocks(content, f"{where}.content", ctx)
            if message.get("refusal"):
                parts.append({"type": "text", "text": str(message["refusal"])})
            for call in message.get("tool_calls") or []:
                fn = call.get("function") or {}
                parts.append({"type": "tool_use", "id": str(call.get("id") or new_id("call_")),
                              "name": fn.get("name", ""),
                              "input": loads_args(fn.get("arguments"))})  # fmt: skip
            _append(messages, "assistant", parts)
    out: JSON = {"model": doc.get("model"), "messages": messages}
    if system:
        out["system"] = system
    cap = doc.get("max_completion_tokens") or doc.get("max_tokens")
    out["max_tokens"] = int(cap) if cap else default_max_tokens(ctx.model)
    found = (_tool_to_pivot(t, i, ctx) for i, t in enumerate(doc.get("tools") or []))
    tools = [t for t in found if t is not None]
    if tools:
        out["tools"] = tools
    choice = _choice_to_pivot(doc.get("tool_choice"), {t["name"] for t in tools}, ctx)
    if tools and choice is not None:
        out["tool_choice"] = choice
    if tools and doc.get("parallel_tool_calls") is False:
        out.setdefault("tool_choice", {"type": "auto"})["disable_parallel_tool_use"] = True
    stop = doc.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if doc.get("temperature") is not None:
        out["temperature"] = min(float(doc["temperature"]), 1.0)
    if doc.get("top_p") is not None:
        out["top_p"] = doc["top_p"]
    if doc.get("user"):
        out["metadata"] = {"user_id": str(doc["user"])}
    effort = doc.get("reasoning_effort")
    if effort in _EFFORT_BUDGET:
        budget = min(_EFFORT_BUDGET[effort], out["max_tokens"] - 1)
        if budget >= 1024:
            out["thinking"] = {"type": "enabled", "budget_tokens": budget}
            out.pop("temperature", None)
            out.pop("top_p", None)
    if doc.get("stream"):
        out["stream"] = True
        ctx.include_usage = bool((doc.get("stream_options") or {}).get("include_usage"))
    if (doc.get("n") or 1) != 1:
        ctx.drop("n")
    for name in _CHAT_ONLY:
        if name in doc:
            ctx.drop(name)
    return out


def _block_to_part(block: JSON, where: str, ctx: Context) -> JSON | None:
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": block.get("text", "")}
    if kind in ("image", "document"):
        source = block.get("source") or {}
        if source.get("type") == "base64":
            url = data_url(str(source.get("media_type", "")), str(source.get("data", "")))
            if kind == "image":
                return {"type": "image_url", "image_url": {"url": url}}
            return {"type": "file", "file": {"filename": "document.pdf", "file_data": url}}
        if source.get("type") == "url" and kind == "image":
            return {"type": "image_url", "image_url": {"url": source.get("url", "")}}
        if source.get("type") == "text":
            return {"type": "text", "text": str(source.get("data", ""))}
    ctx.drop(f"{where}({kind})")
    return None


def _parts(content: Any, where: str, ctx: Context) -> list[JSON]:
    out: list[JSON] = []
    for j, block in enumerate(blocks(content)):
        part = _block_to_part(block, f"{where}[{j}]", ctx)
        if part is not None:
            out.append(part)
    return out


def _simple(parts: list[JSON]) -> str | list[JSON]:
    """All-text content as one string (what every OpenAI-compatible server takes)."""
    if all(p.get("type") == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def _user_turn(i: int, message: JSON, ctx: Context) -> list[JSON]:
    out: list[JSON] = []
    pending: list[JSON] = []
    for j, block in enumerate(blocks(message.get("content"))):
        where = f"messages[{i}].content[{j}]"
        if block.get("type") == "tool_result":
            content = block.get("content")
            parts = _parts(content, f"{where}.content", ctx)
            text = _simple([p for p in parts if p.get("type") == "text"])
            if len(parts) != len([p for p in parts if p.get("type") == "text"]):
                ctx.drop(f"{where}.content(image)")
            if block.get("is_error"):
                text = f"Error: {text}"
            out.append({"role": "tool", "tool_call_id": block.get("tool_use_id", ""),
                        "content": text})  # fmt: skip
        else:
            part = _block_to_part(block, where, ctx)
            if part is not None:
                pending.append(part)
    if pending:
        out.append({"role": "user", "content": _simple(pending)})
    return out


def _assistant_turn(i: int, message: JSON, ctx: Context) -> JSON:
    text: list[str] = []
    calls: list[JSON] = []
    for j, block in enumerate(blocks(message.get("content"))):
        kind = block.get("type")
        if kind == "text":
            text.append(str(block.get("text", "")))
        elif kind == "tool_use":
            calls.append({"id": block.get("id", ""), "type": "function",
                          "function": {"name": block.get("name", ""),
                                       "arguments": dumps(block.get("input") or {})}})  # fmt: skip
        else:
            ctx.drop(f"messages[{i}].content[{j}]({kind})")
    out: JSON = {"role": "assistant", "content": "".join(text) if text else None}
    if calls:
        out["tool_calls"] = calls
    return out


def _choice_from_pivot(choice: JSON | None, names: list[str], ctx: Context) -> Any:
    if not choice:
        return None
    kind = choice.get("type")
    if kind == "tool":
        if choice.get("name") in names:
            return {"type": "function", "function": {"name": choice["name"]}}
        ctx.drop("tool_choice.name(not in tools)")
        return "required"
    return {"any": "required", "none": "none", "auto": "auto"}.get(str(kind))


def request_from_pivot(doc: JSON, ctx: Context) -> JSON:
    messages: list[JSON] = []
    system = doc.get("system")
    if system:
        messages.append({"role": "system", "content": text_of(blocks(system))})
        if any(b.get("cache_control") for b in blocks(system)):
            ctx.drop("system.cache_control")
    for i, message in enumerate(doc.get("messages") or []):
        role = message.get("role")
        if role == "assistant":
            messages.append(_assistant_turn(i, message, ctx))
        elif role == "system":
            messages.append({"role": "system", "content": text_of(blocks(message["content"]))})
        else:
            messages.extend(_user_turn(i, message, ctx))
    out: JSON = {"model": ctx.model, "messages": messages}
    cap = doc.get("max_tokens")
    if cap:
        limits = model_limits(ctx.model)
        out["max_completion_tokens"] = (
            cap if limits.entry == "unknown" else min(int(cap), limits.max_output)
        )
    tools: list[JSON] = []
    for i, tool in enumerate(doc.get("tools") or []):
        if "input_schema" not in tool or tool.get("type") not in (None, "custom"):
            ctx.drop(f"tools[{i}]({tool.get('type') or tool.get('name')})")
            continue
        fn: JSON = {"name": tool["name"], "parameters": tool["input_schema"]}
        if tool.get("description"):
            fn["description"] = tool["description"]
        tools.append({"type": "function", "function": fn})
    if tools:
        out["tools"] = tools
        names = [t["function"]["name"] for t in tools]
        choice = _choice_from_pivot(doc.get("tool_choice"), names, ctx)
        if choice is not None:
            out["tool_choice"] = choice
        if (doc.get("tool_choice") or {}).get("disable_parallel_tool_use"):
            out["parallel_tool_calls"] = False
    elif doc.get("tool_choice"):
        ctx.drop("tool_choice(no tools)")
    if doc.get("stop_sequences"):
        out["stop"] = doc["stop_sequences"]
    for name in ("temperature", "top_p"):
        if doc.get(name) is not None:
            out[name] = doc[name]
    if ctx.stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    for name in _PIVOT_ONLY:
        if name in doc:
            ctx.drop(name)
    if any(
        isinstance(b, dict) and "cache_control" in b
        for m in doc.get("messages") or [] for b in blocks(m.get("content"))
    ):  # fmt: skip
        ctx.drop("messages.content.cache_control")
    return out
