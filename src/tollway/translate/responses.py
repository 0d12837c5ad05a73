"""The OpenAI Responses codec (what Codex CLI speaks), to and from the pivot.

Reasoning items and thinking blocks map onto each other: an Anthropic thinking
``signature`` travels as the item's ``encrypted_content`` (Codex sends it back with
``include: ["reasoning.encrypted_content"]``), a Responses item's id and encrypted content
travel packed in a thinking signature.
"""

from __future__ import annotations

import time
from typing import Any

from tollway.providers.base import OPENAI_RESPONSES
from tollway.sse import SSEEvent
from tollway.translate.anthropic import Emitter
from tollway.translate.chat import (
    _EFFORT_BUDGET,
    default_max_tokens,
    openai_error_body,
    openai_error_to_pivot,
)
from tollway.translate.common import (
    JSON,
    Context,
    NoCount,
    blocks,
    data_url,
    dumps,
    event_json,
    kind_for,
    loads_args,
    new_id,
    pack,
    parse_data_url,
    pivot_usage,
    prompt_total,
    sse,
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


# --- responses ------------------------------------------------------------------------


def _usage_to_pivot(usage: JSON | None) -> JSON:
    u = usage or {}
    prompt = int(u.get("input_tokens") or 0)
    cached = int((u.get("input_tokens_details") or {}).get("cached_tokens") or 0)
    return {"input_tokens": max(prompt - cached, 0),
            "output_tokens": int(u.get("output_tokens") or 0),
            "cache_read_input_tokens": cached, "cache_creation_input_tokens": 0}  # fmt: skip


def _usage_from_pivot(usage: JSON | None) -> JSON:
    u = pivot_usage(usage)
    prompt = prompt_total(u)
    return {"input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": u["cache_read_input_tokens"]},
            "output_tokens": u["output_tokens"],
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + u["output_tokens"]}  # fmt: skip


def _output_block(item: JSON) -> list[JSON]:
    kind = item.get("type")
    if kind == "message":
        text = "".join(str(c.get("text") or c.get("refusal") or "")
                       for c in item.get("content") or [])  # fmt: skip
        return [{"type": "text", "text": text}] if text else []
    if kind == "function_call":
        return [{"type": "tool_use", "id": item.get("call_id"), "name": item.get("name"),
                 "input": loads_args(item.get("arguments"))}]  # fmt: skip
    if kind == "custom_tool_call":
        return [{"type": "tool_use", "id": item.get("call_id"), "name": item.get("name"),
                 "input": {"input": item.get("input", "")}}]  # fmt: skip
    if kind == "reasoning":
        text = "".join(str(s.get("text", "")) for s in item.get("summary") or [])
        own = {"id": item.get("id"), "encrypted_content": item.get("encrypted_content")}
        return [{"type": "thinking", "thinking": text, "signature": pack("o", own)}]
    return []


def _stop(response: JSON, content: list[JSON]) -> str:
    if response.get("status") == "incomplete":
        return "max_tokens"
    return "tool_use" if any(b["type"] == "tool_use" for b in content) else "end_turn"


def response_to_pivot(doc: JSON, ctx: Context) -> JSON:
    content = [b for item in doc.get("output") or [] for b in _output_block(item)]
    return {"id": doc.get("id") or new_id("msg_tw"), "type": "message", "role": "assistant",
            "model": doc.get("model") or ctx.model, "content": content,
            "stop_reason": _stop(doc, content), "stop_sequence": None,
            "usage": _usage_to_pivot(doc.get("usage"))}  # fmt: skip


def _items_from_blocks(content: list[JSON], ctx: Context) -> list[JSON]:
    items: list[JSON] = []
    for block in content:
        kind = block.get("type")
        if kind == "text":
            if items and items[-1]["type"] == "message":
                items[-1]["content"][0]["text"] += block.get("text", "")
                continue
            items.append({"type": "message", "id": new_id("msg_tw"), "status": "completed",
                          "role": "assistant",
                          "content": [{"type": "output_text", "text": block.get("text", ""),
                                       "annotations": []}]})  # fmt: skip
        elif kind == "tool_use":
            items.append(_call_item(block, ctx, "completed"))
        elif kind in ("thinking", "redacted_thinking"):
            items.append(_reasoning_out(block))
    return items


def _call_item(block: JSON, ctx: Context, status: str) -> JSON:
    name = str(block.get("name"))
    if name in ctx.custom_tools:
        tool_input = (block.get("input") or {}).get("input", "")
        return {"type": "custom_tool_call", "id": new_id("ctc_tw"), "call_id": block.get("id"),
                "name": name, "input": str(tool_input), "status": status}  # fmt: skip
    return {"type": "function_call", "id": new_id("fc_tw"), "call_id": block.get("id"),
            "name": name, "arguments": dumps(block.get("input") or {}),
            "status": status}  # fmt: skip


def _reasoning_out(block: JSON) -> JSON:
    if block.get("type") == "redacted_thinking":
        return {"type": "reasoning", "id": new_id("rs_tw"), "summary": [],
                "encrypted_content": pack("r", block)}  # fmt: skip
    own = unpack("o", block.get("signature"))
    if isinstance(own, dict):  # a Responses item that went through a pivot client
        text = block.get("thinking", "")
        return {"type": "reasoning", "id": own.get("id") or new_id("rs_tw"),
                "summary": [{"type": "summary_text", "text": text}] if text else [],
                "encrypted_content": own.get("encrypted_content")}  # fmt: skip
    return {"type": "reasoning", "id": new_id("rs_tw"),
            "summary": [{"type": "summary_text", "text": block.get("thinking", "")}],
            "encrypted_content": pack("r", block)}  # fmt: skip


def _response(msg_id: str, model: str, status: str, output: list[JSON], usage: Any) -> JSON:
    out: JSON = {"id": "resp_" + msg_id.removeprefix("msg_"), "object": "response",
                 "created_at": int(time.time()), "status": status, "model": model,
                 "output": output, "usage": usage, "error": None,
                 "incomplete_details": None}  # fmt: skip
    if status == "incomplete":
        out["incomplete_details"] = {"reason": "max_output_tokens"}
    return out


def response_from_pivot(msg: JSON, ctx: Context) -> JSON:
    status = "incomplete" if msg.get("stop_reason") == "max_tokens" else "completed"
    output = _items_from_blocks(blocks(msg.get("content")), ctx)
    return _response(str(msg.get("id", new_id("msg_tw"))), ctx.requested or ctx.model, status,
                     output, _usage_from_pivot(msg.get("usage")))  # fmt: skip


# --- streams --------------------------------------------------------------------------


class ResponsesToPivot:
    """Responses events in (from an upstream), pivot events out."""

    def __init__(self, ctx: Context) -> None:
        self.out = Emitter(ctx.model)
        self.saw_tool = False

    def feed(self, event: SSEEvent) -> list[JSON]:
        doc = event_json(event)
        if doc is None:
            return []
        kind = doc.get("type") or event.event
        if kind == "response.created":
            response = doc.get("response") or {}
            self.out.model = response.get("model") or self.out.model
            return self.out.start()
        if kind == "response.output_text.delta":
            return self.out.text(str(doc.get("delta", "")))
        if kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            return self.out.thinking(str(doc.get("delta", "")))
        if kind == "response.output_item.added":
            item = doc.get("item") or {}
            if item.get("type") == "function_call":
                self.saw_tool = True
                return self.out.tool_start(str(item.get("call_id")), str(item.get("name")))
            return []
        if kind == "response.function_call_arguments.delta":
            return self.out.tool_args(str(doc.get("delta", "")))
        if kind == "response.output_item.done":
            return self._done(doc.get("item") or {})
        if kind in ("response.completed", "response.incomplete"):
            response = doc.get("response") or {}
            stop = "max_tokens" if kind == "response.incomplete" else (
                "tool_use" if self.saw_tool else "end_turn")  # fmt: skip
            return self.out.finish(stop, _usage_to_pivot(response.get("usage")))
        if kind in ("response.failed", "error"):
            error = doc.get("error") or (doc.get("response") or {}).get("error") or doc
            return self.out.error(kind_for(500), str(error.get("message", "")))
        return []

    def _done(self, item: JSON) -> list[JSON]:
        kind = item.get("type")
        if kind == "reasoning":
            own = {"id": item.get("id"), "encrypted_content": item.get("encrypted_content")}
            if self.out.open == "thinking":
                return [self.out._delta({"type": "signature_delta", "signature": pack("o", own)}),
                        *self.out.stop_block()]  # fmt: skip
            return self.out.signed("", pack("o", own))
        if kind == "custom_tool_call":
            self.saw_tool = True
            return self.out.tool(str(item.get("call_id")), str(item.get("name")),
                                 {"input": item.get("input", "")})  # fmt: skip
        return self.out.stop_block()

    def close(self, complete: bool) -> list[JSON]:
        return []


class PivotToResponses:
    """Pivot events in, Responses events out (what Codex reads), ``response.completed`` last."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.seq = 0
        self.msg_id = new_id("msg_tw")
        self.model = ctx.requested or ctx.model
        self.output: list[JSON] = []
        self.items: dict[int, JSON] = {}  # pivot block index -> the item being built
        self.args: dict[int, str] = {}
        self.usage: JSON = {}
        self.stop = "end_turn"
        self.done = False

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return sse(data, kind)

    def _response(self, status: str, usage: Any = None) -> JSON:
        return _response(self.msg_id, self.model, status, self.output, usage)

    def feed(self, event: JSON) -> list[bytes]:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self.msg_id = str(message.get("id") or self.msg_id)
            self.usage = pivot_usage(message.get("usage"))
            created = self._response("in_progress")
            return [self._event("response.created", response=created),
                    self._event("response.in_progress", response=created)]  # fmt: skip
        if kind == "content_block_start":
            return self._start(int(event["index"]), event.get("content_block") or {})
        if kind == "content_block_delta":
            return self._delta(int(event["index"]), event.get("delta") or {})
        if kind == "content_block_stop":
            return self._stop(int(event["index"]))
        if kind == "message_delta":
            self.usage = {**self.usage, **{k: v for k, v in (event.get("usage") or {}).items()
                                           if v is not None}}  # fmt: skip
            self.stop = str((event.get("delta") or {}).get("stop_reason") or self.stop)
            return []
        if kind == "message_stop":
            return self._end()
        if kind == "error":
            error = event.get("error") or {}
            self.done = True
            return [self.ctx_error(str(error.get("type", "api_error")),
                                   str(error.get("message", "")))]  # fmt: skip
        return []

    def ctx_error(self, kind: str, message: str) -> bytes:
        return responses_stream_error(kind, message, self.seq)

    def _start(self, index: int, block: JSON) -> list[bytes]:
        kind = block.get("type")
        position = len(self.output) + len(self.items)
        if kind == "text":
            item = {"type": "message", "id": new_id("msg_tw"), "status": "in_progress",
                    "role": "assistant", "content": []}  # fmt: skip
            self.items[index] = {**item, "_text": "", "_at": position}
            part = {"type": "output_text", "text": "", "annotations": []}
            return [self._event("response.output_item.added", output_index=position, item=item),
                    self._event("response.content_part.added", item_id=item["id"],
                                output_index=position, content_index=0, part=part)]  # fmt: skip
        if kind == "tool_use":
            item = _call_item(block, self.ctx, "in_progress")
            self.items[index] = {**item, "_at": position, "_block": block}
            self.args[index] = ""
            if item["type"] == "custom_tool_call":
                return []  # its input is a JSON field of the arguments: sent whole at the end
            shown = {**item, "arguments": ""}
            return [self._event("response.output_item.added", output_index=position,
                                item=shown)]  # fmt: skip
        if kind in ("thinking", "redacted_thinking"):
            self.items[index] = {"_block": dict(block), "_at": position, "type": "reasoning"}
            return []
        return []

    def _delta(self, index: int, delta: JSON) -> list[bytes]:
        item = self.items.get(index)
        if item is None:
            return []
        dtype = delta.get("type")
        if dtype == "text_delta":
            item["_text"] += delta.get("text", "")
            return [self._event("response.output_text.delta", item_id=item["id"],
                                output_index=item["_at"], content_index=0,
                                delta=delta.get("text", ""))]  # fmt: skip
        if dtype == "input_json_delta":
            self.args[index] += delta.get("partial_json", "")
            if item["type"] == "function_call":
                return [self._event("response.function_call_arguments.delta", item_id=item["id"],
                                    output_index=item["_at"],
                                    delta=delta.get("partial_json", ""))]  # fmt: skip
            return []
        if dtype == "thinking_delta":
            block = item["_block"]
            block["thinking"] = block.get("thinking", "") + delta.get("thinking", "")
        elif dtype == "signature_delta":
            block = item["_block"]
            block["signature"] = block.get("signature", "") + delta.get("signature", "")
        return []

    def _stop(self, index: int) -> list[bytes]:
        item = self.items.pop(index, None)
        if item is None:
            return []
        at = item.pop("_at")
        if item["type"] == "message":
            text = item.pop("_text")
            part = {"type": "output_text", "text": text, "annotations": []}
            done = {**item, "status": "completed", "content": [part]}
            self.output.append(done)
            return [self._event("response.output_text.done", item_id=item["id"], output_index=at,
                                content_index=0, text=text),
                    self._event("response.content_part.done", item_id=item["id"],
                                output_index=at, content_index=0, part=part),
                    self._event("response.output_item.done", output_index=at,
                                item=done)]  # fmt: skip
        if item["type"] == "reasoning":
            done = _reasoning_out(item["_block"])
            self.output.append(done)
            return [self._event("response.output_item.added", output_index=at,
                                item={**done, "summary": []}),
                    self._event("response.output_item.done", output_index=at,
                                item=done)]  # fmt: skip
        block = item.pop("_block")
        arguments = self.args.pop(index, "")
        done = _call_item({**block, "input": loads_args(arguments)}, self.ctx, "completed")
        done["id"] = item["id"]
        self.output.append(done)
        out = []
        if done["type"] == "function_call":
            out.append(self._event("response.function_call_arguments.done", item_id=item["id"],
                                   output_index=at, arguments=done["arguments"]))  # fmt: skip
        else:
            out.append(
                self._event(
                    "response.output_item.added",
                    output_index=at,
                    item={**done, "input": "", "status": "in_progress"},
                )
            )
        out.append(self._event("response.output_item.done", output_index=at, item=done))
        return out

    def _end(self) -> list[bytes]:
        if self.done:
            return []
        self.done = True
        status = "incomplete" if self.stop == "max_tokens" else "completed"
        final = self._response(status, _usage_from_pivot(self.usage))
        kind = "response.incomplete" if status == "incomplete" else "response.completed"
        return [self._event(kind, response=final)]

    def close(self, complete: bool) -> list[bytes]:
        return []


def responses_stream_error(kind: str, message: str, seq: int = 0) -> bytes:
    body = {"type": "error", "code": kind, "message": message, "param": None,
            "sequence_number": seq,
            "error": {"type": kind, "code": kind, "message": message}}  # fmt: skip
    return sse(body, "error")


class ResponsesCodec(NoCount):
    dialect = OPENAI_RESPONSES

    def to_pivot(self, doc: JSON, ctx: Context) -> JSON:
        return request_to_pivot(doc, ctx)

    def from_pivot(self, doc: JSON, ctx: Context) -> JSON:
        return request_from_pivot(doc, ctx)

    def response_to_pivot(self, doc: JSON, ctx: Context) -> JSON:
        return response_to_pivot(doc, ctx)

    def response_from_pivot(self, msg: JSON, ctx: Context) -> JSON:
        return response_from_pivot(msg, ctx)

    def stream_to_pivot(self, ctx: Context) -> ResponsesToPivot:
        return ResponsesToPivot(ctx)

    def stream_from_pivot(self, ctx: Context) -> PivotToResponses:
        return PivotToResponses(ctx)

    def error_to_pivot(self, status: int, body: bytes) -> tuple[str, str]:
        return openai_error_to_pivot(status, body)

    def error_body(self, status: int, kind: str, message: str) -> bytes:
        return openai_error_body(status, kind, message)

    def stream_error(self, kind: str, message: str) -> bytes:
        return responses_stream_error(kind, message)

    def path(self, kind: str, model: str, stream: bool) -> str:
        return "/v1/responses"

    def content_type(self, stream: bool) -> bytes:
        return b"text/event-stream; charset=utf-8" if stream else b"application/json"
