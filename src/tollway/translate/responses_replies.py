"""The OpenAI Responses codec, answers half: response objects and event streams to and
from the pivot, and ``ResponsesCodec`` binding both halves (requests: responses.py)."""

from __future__ import annotations

import time
from typing import Any

from tollway.providers.base import OPENAI_RESPONSES
from tollway.sse import SSEEvent
from tollway.translate.anthropic import Emitter
from tollway.translate.chat_replies import openai_error_body, openai_error_to_pivot
from tollway.translate.common import (
    JSON,
    Context,
    NoCount,
    blocks,
    dumps,
    event_json,
    kind_for,
    loads_args,
    new_id,
    pack,
    pivot_usage,
    prompt_total,
    sse,
    unpack,
)
from tollway.translate.responses import (
    request_from_pivot,
    request_to_pivot,
)

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
