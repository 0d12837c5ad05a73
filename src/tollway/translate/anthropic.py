"""The Anthropic Messages codec: the pivot itself, plus the helpers other codecs share
to write pivot streams (``Emitter``) and to read one whole (``collect``)."""

from __future__ import annotations

from typing import Any

from tollway.providers.base import ANTHROPIC
from tollway.sse import SSEEvent
from tollway.translate.common import (
    JSON,
    Context,
    decode_or_none,
    encode,
    event_json,
    kind_for,
    new_id,
    pivot_usage,
    sse,
    unread_error,
)


def foreign_signature(signature: Any) -> bool:
    """A signature another dialect made (packed by a codec), which Anthropic would refuse."""
    return isinstance(signature, str) and signature.startswith("tw") and "." in signature[:6]


class AnthropicCodec:
    counts = True
    dialect = ANTHROPIC

    def to_pivot(self, doc: JSON, ctx: Context) -> JSON:
        return doc

    def from_pivot(self, doc: JSON, ctx: Context) -> JSON:
        out = {**doc, "model": ctx.model}
        if ctx.stream:
            out["stream"] = True
        else:
            out.pop("stream", None)
        for i, message in enumerate(out.get("messages") or []):
            content = message.get("content")
            if not isinstance(content, list):
                continue
            kept = [
                b for b in content
                if not (b.get("type") == "thinking" and foreign_signature(b.get("signature")))
            ]  # fmt: skip
            if len(kept) != len(content):
                ctx.drop(f"messages[{i}].content.thinking(signature of another API)")
                message["content"] = kept
        return out

    def response_to_pivot(self, doc: JSON, ctx: Context) -> JSON:
        return doc

    def response_from_pivot(self, msg: JSON, ctx: Context) -> JSON:
        return msg

    def stream_to_pivot(self, ctx: Context) -> _Events:
        return _Events()

    def stream_from_pivot(self, ctx: Context) -> _Writer:
        return _Writer()

    def error_to_pivot(self, status: int, body: bytes) -> tuple[str, str]:
        doc = decode_or_none(body)
        error = doc.get("error") if isinstance(doc, dict) else None
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error.get("type") or kind_for(status)), error["message"]
        return unread_error(status, body)

    def error_body(self, status: int, kind: str, message: str) -> bytes:
        return encode({"type": "error", "error": {"type": kind, "message": message}})

    def stream_error(self, kind: str, message: str) -> bytes:
        return sse({"type": "error", "error": {"type": kind, "message": message}}, "error")

    def path(self, kind: str, model: str, stream: bool) -> str:
        return "/v1/messages/count_tokens" if kind == "count_tokens" else "/v1/messages"

    def content_type(self, stream: bool) -> bytes:
        return b"text/event-stream; charset=utf-8" if stream else b"application/json"

    def count_to_pivot(self, doc: JSON, ctx: Context) -> JSON:
        return doc

    def count_from_pivot(self, doc: JSON, ctx: Context) -> JSON:
        out = {k: v for k, v in doc.items() if k not in ("max_tokens", "stream")}
        return {**out, "model": ctx.model}

    def count_response_to_pivot(self, doc: JSON) -> int:
        return int(doc.get("input_tokens") or 0)

    def count_response_from_pivot(self, tokens: int) -> JSON:
        return {"input_tokens": tokens}


class _Events:
    """Anthropic upstream events are already pivot events."""

    def feed(self, event: SSEEvent) -> list[JSON]:
        doc = event_json(event)
        if doc is None or doc.get("type") == "ping":
            return []
        return [doc]

    def close(self, complete: bool) -> list[JSON]:
        return []


class _Writer:
    def feed(self, event: JSON) -> list[bytes]:
        return [sse(event, str(event.get("type")))]

    def close(self, complete: bool) -> list[bytes]:
        return []


class Emitter:
    """Writes a pivot (Anthropic) event stream from pieces: text, thinking, tool calls."""

    def __init__(self, model: str, message_id: str | None = None) -> None:
        self.model = model
        self.id = message_id or new_id("msg_tw")
        self.started = False
        self.finished = False
        self.index = -1
        self.open: str | None = None  # the kind of the open block
        self.tool_ids: list[str] = []

    def start(self, usage: JSON | None = None) -> list[JSON]:
        if self.started:
            return []
        self.started = True
        message: JSON = {"id": self.id, "type": "message", "role": "assistant", "model": self.model,
                   "content": [], "stop_reason": None, "stop_sequence": None,
                   "usage": pivot_usage(usage)}  # fmt: skip
        return [{"type": "message_start", "message": message}]

    def _block(self, kind: str, block: JSON) -> list[JSON]:
        out = self.start() + self.stop_block()
        self.index += 1
        self.open = kind
        return [*out, {"type": "content_block_start", "index": self.index, "content_block": block}]

    def _delta(self, delta: JSON) -> JSON:
        return {"type": "content_block_delta", "index": self.index, "delta": delta}

    def stop_block(self) -> list[JSON]:
        if self.open is None:
            return []
        self.open = None
        return [{"type": "content_block_stop", "index": self.index}]

    def text(self, text: str) -> list[JSON]:
        if not text:
            return self.start()
        out = [] if self.open == "text" else self._block("text", {"type": "text", "text": ""})
        return [*out, self._delta({"type": "text_delta", "text": text})]

    def thinking(self, text: str, signature: str | None = None) -> list[JSON]:
        out: list[JSON] = []
        if self.open != "thinking":
            out = self._block("thinking", {"type": "thinking", "thinking": "", "signature": ""})
        if text:
            out.append(self._delta({"type": "thinking_delta", "thinking": text}))
        if signature:
            out.append(self._delta({"type": "signature_delta", "signature": signature}))
        return out

    def signed(self, text: str, signature: str) -> list[JSON]:
        """A whole thinking block (closed at once), e.g. to carry a signature."""
        out = self._block("thinking", {"type": "thinking", "thinking": "", "signature": ""})
        if text:
            out.append(self._delta({"type": "thinking_delta", "thinking": text}))
        out.append(self._delta({"type": "signature_delta", "signature": signature}))
        return out + self.stop_block()

    def redacted(self, data: str) -> list[JSON]:
        return self._block("redacted", {"type": "redacted_thinking", "data": data}) + (
            self.stop_block()
        )

    def tool_start(self, tool_id: str, name: str) -> list[JSON]:
        self.tool_ids.append(tool_id)
        block = {"type": "tool_use", "id": tool_id, "name": name, "input": {}}
        return self._block("tool", block)

    def tool_args(self, partial: str) -> list[JSON]:
        if not partial or self.open != "tool":
            return []
        return [self._delta({"type": "input_json_delta", "partial_json": partial})]

    def tool(self, tool_id: str, name: str, arguments: Any) -> list[JSON]:
        text = encode(arguments).decode() if not isinstance(arguments, str) else arguments
        return self.tool_start(tool_id, name) + self.tool_args(text) + self.stop_block()

    def finish(self, stop_reason: str, usage: JSON | None) -> list[JSON]:
        if self.finished:
            return []
        self.finished = True
        out = self.start() + self.stop_block()
        delta = {"stop_reason": stop_reason, "stop_sequence": None}
        out.append({"type": "message_delta", "delta": delta, "usage": pivot_usage(usage)})
        out.append({"type": "message_stop"})
        return out

    def error(self, kind: str, message: str) -> list[JSON]:
        self.finished = True
        return [{"type": "error", "error": {"type": kind, "message": message}}]


def collect(events: list[JSON]) -> JSON:
    """A whole message from pivot stream events (what a non-streaming answer would be)."""
    message: JSON = {}
    parts: dict[int, JSON] = {}
    json_text: dict[int, str] = {}
    for event in events:
        kind = event.get("type")
        if kind == "message_start":
            message = {**event["message"]}
        elif kind == "content_block_start":
            parts[event["index"]] = dict(event["content_block"])
        elif kind == "content_block_delta":
            block, delta = parts[event["index"]], event["delta"]
            dtype = delta.get("type")
            if dtype == "text_delta":
                block["text"] = block.get("text", "") + delta["text"]
            elif dtype == "thinking_delta":
                block["thinking"] = block.get("thinking", "") + delta["thinking"]
            elif dtype == "signature_delta":
                block["signature"] = block.get("signature", "") + delta["signature"]
            elif dtype == "input_json_delta":
                json_text[event["index"]] = (
                    json_text.get(event["index"], "") + delta["partial_json"]
                )
        elif kind == "message_delta":
            message.update(event.get("delta") or {})
            message["usage"] = {**message.get("usage", {}), **(event.get("usage") or {})}
    for index, text in json_text.items():
        value = decode_or_none(text.encode())
        parts[index]["input"] = value if value is not None else {}
    message["content"] = [parts[i] for i in sorted(parts)]
    return message
