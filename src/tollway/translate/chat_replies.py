"""The OpenAI Chat Completions codec, answers half: responses, chunk streams and errors
to and from the pivot, and ``ChatCodec`` binding both halves (requests: chat.py)."""

from __future__ import annotations

import time

from tollway.providers.base import OPENAI_CHAT
from tollway.sse import SSEEvent
from tollway.translate.anthropic import Emitter
from tollway.translate.chat import (
    _FINISH,
    _STOP,
    request_from_pivot,
    request_to_pivot,
)
from tollway.translate.common import (
    JSON,
    Context,
    NoCount,
    blocks,
    decode_or_none,
    dumps,
    encode,
    event_json,
    kind_for,
    loads_args,
    new_id,
    pivot_usage,
    prompt_total,
    sse,
    text_of,
    unread_error,
)

# --- responses ------------------------------------------------------------------------


def _usage_to_pivot(usage: JSON | None) -> JSON:
    u = usage or {}
    prompt = int(u.get("prompt_tokens") or 0)
    cached = int((u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    return {"input_tokens": max(prompt - cached, 0),
            "output_tokens": int(u.get("completion_tokens") or 0),
            "cache_read_input_tokens": cached, "cache_creation_input_tokens": 0}  # fmt: skip


def _usage_from_pivot(usage: JSON | None) -> JSON:
    u = pivot_usage(usage)
    prompt = prompt_total(u)
    return {"prompt_tokens": prompt, "completion_tokens": u["output_tokens"],
            "total_tokens": prompt + u["output_tokens"],
            "prompt_tokens_details": {"cached_tokens": u["cache_read_input_tokens"]}}  # fmt: skip


def response_to_pivot(doc: JSON, ctx: Context) -> JSON:
    choice = (doc.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[JSON] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = message.get("content")
    if isinstance(text, list):
        text = text_of(text)
    if text:
        content.append({"type": "text", "text": text})
    if message.get("refusal"):
        content.append({"type": "text", "text": message["refusal"]})
    for call in message.get("tool_calls") or []:
        fn = call.get("function") or {}
        content.append({"type": "tool_use", "id": call.get("id") or new_id("toolu_tw"),
                        "name": fn.get("name", ""),
                        "input": loads_args(fn.get("arguments"))})  # fmt: skip
    stop = _STOP.get(str(choice.get("finish_reason")), "end_turn")
    return {"id": doc.get("id") or new_id("msg_tw"), "type": "message", "role": "assistant",
            "model": doc.get("model") or ctx.model, "content": content, "stop_reason": stop,
            "stop_sequence": None, "usage": _usage_to_pivot(doc.get("usage"))}  # fmt: skip


def response_from_pivot(msg: JSON, ctx: Context) -> JSON:
    text: list[str] = []
    reasoning: list[str] = []
    calls: list[JSON] = []
    for block in blocks(msg.get("content")):
        kind = block.get("type")
        if kind == "text":
            text.append(block.get("text", ""))
        elif kind == "thinking":
            reasoning.append(block.get("thinking", ""))
        elif kind == "tool_use":
            calls.append({"id": block.get("id"), "type": "function",
                          "function": {"name": block.get("name"),
                                       "arguments": dumps(block.get("input") or {})}})  # fmt: skip
    message: JSON = {"role": "assistant", "content": "".join(text) if text else None,
                     "refusal": None}  # fmt: skip
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if calls:
        message["tool_calls"] = calls
    finish = _FINISH.get(str(msg.get("stop_reason")), "stop")
    return {"id": "chatcmpl-" + str(msg.get("id", new_id(""))), "object": "chat.completion",
            "created": int(time.time()), "model": msg.get("model") or ctx.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish,
                         "logprobs": None}],
            "usage": _usage_from_pivot(msg.get("usage"))}  # fmt: skip


# --- streams --------------------------------------------------------------------------


class ChatToPivot:
    """Chat chunks in, pivot events out; the pivot's close comes with ``[DONE]``."""

    def __init__(self, ctx: Context) -> None:
        self.out = Emitter(ctx.model)
        self.calls: dict[int, str] = {}  # chat tool-call index -> the pivot block's id
        self.stop = "end_turn"
        self.usage: JSON | None = None

    def feed(self, event: SSEEvent) -> list[JSON]:
        if event.data == b"[DONE]":
            return self.out.finish(self.stop, self.usage)
        chunk = event_json(event)
        if chunk is None:
            return []
        if isinstance(chunk.get("error"), dict):
            error = chunk["error"]
            return self.out.error(kind_for(500), str(error.get("message", "")))
        if chunk.get("model"):
            self.out.model = chunk["model"]
        events: list[JSON] = self.out.start()
        if chunk.get("usage"):
            self.usage = _usage_to_pivot(chunk["usage"])
        for choice in chunk.get("choices") or []:
            events += self._delta(choice.get("delta") or {})
            if choice.get("finish_reason"):
                self.stop = _STOP.get(choice["finish_reason"], "end_turn")
        return events

    def _delta(self, delta: JSON) -> list[JSON]:
        events: list[JSON] = []
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            events += self.out.thinking(reasoning)
        if delta.get("content"):
            events += self.out.text(str(delta["content"]))
        if delta.get("refusal"):
            events += self.out.text(str(delta["refusal"]))
        for call in delta.get("tool_calls") or []:
            index = int(call.get("index", len(self.calls)))
            fn = call.get("function") or {}
            if index not in self.calls:
                self.calls[index] = str(call.get("id") or new_id("toolu_tw"))
                events += self.out.tool_start(self.calls[index], str(fn.get("name", "")))
            events += self.out.tool_args(str(fn.get("arguments") or ""))
        return events

    def close(self, complete: bool) -> list[JSON]:
        return []


class PivotToChat:
    """Pivot events in, Chat chunks out (``[DONE]`` after the last)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.id = "chatcmpl-" + new_id("")
        self.created = int(time.time())
        self.model = ctx.requested or ctx.model
        self.tools: dict[int, int] = {}  # pivot block index -> chat tool-call index
        self.usage: JSON = {}
        self.stop = "end_turn"
        self.done = False

    def _chunk(self, delta: JSON, finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                    "model": self.model, "choices": [choice]})  # fmt: skip

    def feed(self, event: JSON) -> list[bytes]:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self.usage = pivot_usage(message.get("usage"))
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = self.tools[event["index"]] = len(self.tools)
                call = {"index": index, "id": block.get("id"), "type": "function",
                        "function": {"name": block.get("name"), "arguments": ""}}  # fmt: skip
                return [self._chunk({"tool_calls": [call]})]
            return []
        if kind == "content_block_delta":
            return self._delta(event)
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
            body = {"error": {"message": error.get("message", ""),
                              "type": error.get("type", "api_error"), "param": None,
                              "code": None}}  # fmt: skip
            return [sse(body)]
        return []

    def _delta(self, event: JSON) -> list[bytes]:
        delta = event.get("delta") or {}
        dtype = delta.get("type")
        if dtype == "text_delta":
            return [self._chunk({"content": delta.get("text", "")})]
        if dtype == "thinking_delta":
            return [self._chunk({"reasoning_content": delta.get("thinking", "")})]
        if dtype == "input_json_delta" and event.get("index") in self.tools:
            call = {"index": self.tools[event["index"]],
                    "function": {"arguments": delta.get("partial_json", "")}}  # fmt: skip
            return [self._chunk({"tool_calls": [call]})]
        return []

    def _end(self) -> list[bytes]:
        if self.done:
            return []
        self.done = True
        out = [self._chunk({}, _FINISH.get(self.stop, "stop"))]
        if self.ctx.include_usage:
            out.append(sse({"id": self.id, "object": "chat.completion.chunk",
                            "created": self.created, "model": self.model, "choices": [],
                            "usage": _usage_from_pivot(self.usage)}))  # fmt: skip
        out.append(b"data: [DONE]\n\n")
        return out

    def close(self, complete: bool) -> list[bytes]:
        return []


class ChatCodec(NoCount):
    dialect = OPENAI_CHAT

    def to_pivot(self, doc: JSON, ctx: Context) -> JSON:
        return request_to_pivot(doc, ctx)

    def from_pivot(self, doc: JSON, ctx: Context) -> JSON:
        return request_from_pivot(doc, ctx)

    def response_to_pivot(self, doc: JSON, ctx: Context) -> JSON:
        return response_to_pivot(doc, ctx)

    def response_from_pivot(self, msg: JSON, ctx: Context) -> JSON:
        return response_from_pivot(msg, ctx)

    def stream_to_pivot(self, ctx: Context) -> ChatToPivot:
        return ChatToPivot(ctx)

    def stream_from_pivot(self, ctx: Context) -> PivotToChat:
        return PivotToChat(ctx)

    def error_to_pivot(self, status: int, body: bytes) -> tuple[str, str]:
        return openai_error_to_pivot(status, body)

    def error_body(self, status: int, kind: str, message: str) -> bytes:
        return openai_error_body(status, kind, message)

    def stream_error(self, kind: str, message: str) -> bytes:
        return b"data: " + openai_error_body(500, kind, message) + b"\n\n"

    def path(self, kind: str, model: str, stream: bool) -> str:
        return "/v1/chat/completions"

    def content_type(self, stream: bool) -> bytes:
        return b"text/event-stream; charset=utf-8" if stream else b"application/json"


_OPENAI_TYPE = {"invalid_request_error": "invalid_request_error",
                "authentication_error": "authentication_error",
                "permission_error": "permission_error", "not_found_error": "not_found_error",
                "rate_limit_error": "rate_limit_exceeded", "billing_error": "insufficient_quota",
                "request_too_large": "invalid_request_error", "api_error": "server_error",
                "overloaded_error": "server_error", "timeout_error": "timeout"}  # fmt: skip


def openai_error_to_pivot(status: int, body: bytes) -> tuple[str, str]:
    """(Anthropic error type, message) from an OpenAI error; the words are kept as sent."""
    doc = decode_or_none(body)
    error = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(error, str):
        return kind_for(status), error
    if not isinstance(error, dict):
        return unread_error(status, body)
    message = str(error.get("message", ""))
    code = error.get("code")
    if code == "context_length_exceeded" and "prompt is too long" not in message:
        message = f"prompt is too long: {message}"  # what Claude Code recovers on
    if code == "insufficient_quota":
        return "billing_error", message
    return kind_for(status), message


def openai_error_body(status: int, kind: str, message: str) -> bytes:
    code = "context_length_exceeded" if "prompt is too long" in message else None
    return encode({"error": {"message": message, "type": _OPENAI_TYPE.get(kind, "server_error"),
                             "param": None, "code": code}})  # fmt: skip
