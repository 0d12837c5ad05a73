"""The Gemini codec, answers half: generateContent answers and chunk streams to and from
the pivot, and ``GeminiCodec`` binding both halves (requests: gemini.py)."""

from __future__ import annotations

from typing import Any

from tollway.providers.base import GEMINI
from tollway.sse import SSEEvent
from tollway.surfaces.gemini import path_for, status_name
from tollway.translate.anthropic import Emitter, foreign_signature
from tollway.translate.common import (
    JSON,
    TOO_LONG,
    Context,
    blocks,
    decode_or_none,
    encode,
    event_json,
    kind_for,
    new_id,
    pack,
    pivot_usage,
    prompt_total,
    sse,
    unpack,
    unread_error,
)
from tollway.translate.gemini import (
    _FINISH,
    _STOP,
    request_from_pivot,
    request_to_pivot,
)

# --- responses ------------------------------------------------------------------------


def usage_to_pivot(meta: JSON | None) -> JSON:
    m = meta or {}
    prompt = int(m.get("promptTokenCount") or 0) + int(m.get("toolUsePromptTokenCount") or 0)
    cached = min(int(m.get("cachedContentTokenCount") or 0), prompt)
    output = int(m.get("candidatesTokenCount") or 0) + int(m.get("thoughtsTokenCount") or 0)
    return {"input_tokens": prompt - cached, "output_tokens": output,
            "cache_read_input_tokens": cached, "cache_creation_input_tokens": 0}  # fmt: skip


def usage_from_pivot(usage: JSON | None) -> JSON:
    u = pivot_usage(usage)
    prompt = prompt_total(u)
    meta = {"promptTokenCount": prompt, "candidatesTokenCount": u["output_tokens"],
            "totalTokenCount": prompt + u["output_tokens"]}  # fmt: skip
    if u["cache_read_input_tokens"]:
        meta["cachedContentTokenCount"] = u["cache_read_input_tokens"]
    return meta


def _candidate(doc: JSON) -> JSON:
    candidates = doc.get("candidates") or [{}]
    return candidates[0] if isinstance(candidates[0], dict) else {}


def _stop(candidate: JSON, saw_tool: bool) -> str:
    stop = _STOP.get(str(candidate.get("finishReason")), "end_turn")
    return "tool_use" if saw_tool and stop == "end_turn" else stop


class GeminiToPivot:
    """Gemini chunks in, pivot events out; the chunk with a finishReason ends the message."""

    def __init__(self, ctx: Context) -> None:
        self.out = Emitter(ctx.model)
        self.usage: JSON | None = None
        self.saw_tool = False

    def feed(self, event: SSEEvent) -> list[JSON]:
        doc = event_json(event)
        if doc is None:
            return []
        if isinstance(doc.get("error"), dict):
            error = doc["error"]
            return self.out.error(kind_for(int(error.get("code") or 500)),
                                  str(error.get("message", "")))  # fmt: skip
        if doc.get("modelVersion"):
            self.out.model = doc["modelVersion"]
        if doc.get("usageMetadata"):
            self.usage = usage_to_pivot(doc["usageMetadata"])
        events = self.out.start()
        candidate = _candidate(doc)
        for part in (candidate.get("content") or {}).get("parts") or []:
            events += self.part(part)
        if candidate.get("finishReason"):
            events += self.out.finish(_stop(candidate, self.saw_tool), self.usage)
        return events

    def part(self, part: JSON) -> list[JSON]:
        signature = part.get("thoughtSignature")
        packed = pack("g", signature) if isinstance(signature, str) and signature else None
        if part.get("thought"):
            return self.out.thinking(str(part.get("text", "")), packed)
        events = self.out.signed("", packed) if packed else []
        if "functionCall" in part:
            fn = part["functionCall"]
            self.saw_tool = True
            tool_id = str(fn.get("id") or new_id("toolu_tw"))
            return events + self.out.tool(tool_id, str(fn.get("name")), fn.get("args") or {})
        if part.get("text"):
            return events + self.out.text(str(part["text"]))
        return events

    def close(self, complete: bool) -> list[JSON]:
        return []


def response_to_pivot(doc: JSON, ctx: Context) -> JSON:
    translator = GeminiToPivot(ctx)
    events: list[JSON] = []
    for part in (_candidate(doc).get("content") or {}).get("parts") or []:
        events += translator.part(part)
    events += translator.out.stop_block()
    from tollway.translate.anthropic import collect

    message = collect(translator.out.start() + events)
    message.update({"model": doc.get("modelVersion") or ctx.model,
                    "stop_reason": _stop(_candidate(doc), translator.saw_tool),
                    "stop_sequence": None,
                    "usage": usage_to_pivot(doc.get("usageMetadata"))})  # fmt: skip
    return message


class _Parts:
    """Pivot blocks -> Gemini parts, a thinking block's pack riding on the next call."""

    def __init__(self) -> None:
        self.signature: str | None = None

    def thinking_done(self, block: JSON) -> list[JSON]:
        own = unpack("g", block.get("signature"))
        if isinstance(own, str):  # Gemini's own signature, back to Gemini
            if block.get("thinking"):
                return [{"text": block["thinking"], "thought": True, "thoughtSignature": own}]
            self.signature = own
            return []
        if block.get("signature") and not foreign_signature(block.get("signature")):
            self.signature = pack("a", block)
        return []

    def call(self, tool_id: Any, name: Any, args: Any) -> JSON:
        part: JSON = {"functionCall": {"id": tool_id, "name": name, "args": args or {}}}
        if self.signature is not None:
            part["thoughtSignature"] = self.signature
            self.signature = None
        return part


def response_from_pivot(msg: JSON, ctx: Context) -> JSON:
    parts: list[JSON] = []
    writer = _Parts()
    for block in blocks(msg.get("content")):
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            parts.append({"text": block["text"]})
        elif kind == "thinking":
            if block.get("thinking"):
                parts.append({"text": block["thinking"], "thought": True})
            parts.extend(writer.thinking_done(block))
        elif kind == "tool_use":
            parts.append(writer.call(block.get("id"), block.get("name"), block.get("input")))
    finish = _FINISH.get(str(msg.get("stop_reason")), "STOP")
    return {"candidates": [{"content": {"role": "model", "parts": parts or [{"text": ""}]},
                            "finishReason": finish, "index": 0}],
            "usageMetadata": usage_from_pivot(msg.get("usage")),
            "modelVersion": ctx.requested or ctx.model,
            "responseId": str(msg.get("id", ""))}  # fmt: skip


class PivotToGemini:
    """Pivot events in, Gemini chunks out. The last chunk with content is held back so the
    finishReason and usage ride on it (Gemini CLI treats an empty final chunk as invalid)."""

    def __init__(self, ctx: Context) -> None:
        self.model = ctx.requested or ctx.model
        self.id = ""
        self.held: list[JSON] | None = None
        self.blocks: dict[int, JSON] = {}
        self.args: dict[int, str] = {}
        self.writer = _Parts()
        self.usage: JSON = {}
        self.stop = "end_turn"
        self.done = False

    def _chunk(self, parts: list[JSON], finish: str | None = None) -> bytes:
        candidate: JSON = {"content": {"role": "model", "parts": parts}, "index": 0}
        body: JSON = {"candidates": [candidate], "modelVersion": self.model,
                      "responseId": self.id}  # fmt: skip
        if finish is not None:
            candidate["finishReason"] = finish
            body["usageMetadata"] = usage_from_pivot(self.usage)
        return sse(body)

    def _emit(self, parts: list[JSON]) -> list[bytes]:
        out = [self._chunk(self.held)] if self.held is not None else []
        self.held = parts
        return out

    def feed(self, event: JSON) -> list[bytes]:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self.id = str(message.get("id", ""))
            self.usage = pivot_usage(message.get("usage"))
        elif kind == "content_block_start":
            self.blocks[int(event["index"])] = dict(event.get("content_block") or {})
            self.args[int(event["index"])] = ""
        elif kind == "content_block_delta":
            return self._delta(int(event["index"]), event.get("delta") or {})
        elif kind == "content_block_stop":
            return self._stop(int(event["index"]))
        elif kind == "message_delta":
            self.usage = {**self.usage, **{k: v for k, v in (event.get("usage") or {}).items()
                                           if v is not None}}  # fmt: skip
            self.stop = str((event.get("delta") or {}).get("stop_reason") or self.stop)
        elif kind == "message_stop" and not self.done:
            self.done = True
            last = self.held if self.held is not None else [{"text": ""}]
            self.held = None
            return [self._chunk(last, _FINISH.get(self.stop, "STOP"))]
        elif kind == "error":
            error = event.get("error") or {}
            self.done = True
            return [gemini_stream_error(str(error.get("type")), str(error.get("message", "")))]
        return []

    def _delta(self, index: int, delta: JSON) -> list[bytes]:
        block = self.blocks.get(index, {})
        dtype = delta.get("type")
        if dtype == "text_delta" and delta.get("text"):
            return self._emit([{"text": delta["text"]}])
        if dtype == "thinking_delta":
            block["thinking"] = block.get("thinking", "") + delta.get("thinking", "")
            if delta.get("thinking"):
                return self._emit([{"text": delta["thinking"], "thought": True}])
        elif dtype == "signature_delta":
            block["signature"] = block.get("signature", "") + delta.get("signature", "")
        elif dtype == "input_json_delta":
            self.args[index] = self.args.get(index, "") + delta.get("partial_json", "")
        return []

    def _stop(self, index: int) -> list[bytes]:
        block = self.blocks.pop(index, {})
        kind = block.get("type")
        if kind == "thinking":
            own = self.writer.thinking_done(block)
            # Gemini's own signed thought was already sent as text: only its signature is new.
            return self._emit([{**own[0], "text": ""}]) if own else []
        if kind == "tool_use":
            args = decode_or_none(self.args.pop(index, "").encode() or b"{}")
            return self._emit([self.writer.call(block.get("id"), block.get("name"), args)])
        return []

    def close(self, complete: bool) -> list[bytes]:
        return []


def gemini_stream_error(kind: str, message: str, status: int = 500) -> bytes:
    return sse({"error": {"code": status, "message": message, "status": status_name(status)}})


def _count_contents(doc: JSON) -> JSON:
    inner = doc.get("generateContentRequest")
    return inner if isinstance(inner, dict) else doc


class GeminiCodec:
    counts = True
    dialect = GEMINI

    def to_pivot(self, doc: JSON, ctx: Context) -> JSON:
        return request_to_pivot(doc, ctx)

    def from_pivot(self, doc: JSON, ctx: Context) -> JSON:
        return request_from_pivot(doc, ctx)

    def response_to_pivot(self, doc: JSON, ctx: Context) -> JSON:
        return response_to_pivot(doc, ctx)

    def response_from_pivot(self, msg: JSON, ctx: Context) -> JSON:
        return response_from_pivot(msg, ctx)

    def stream_to_pivot(self, ctx: Context) -> GeminiToPivot:
        return GeminiToPivot(ctx)

    def stream_from_pivot(self, ctx: Context) -> PivotToGemini:
        return PivotToGemini(ctx)

    def error_to_pivot(self, status: int, body: bytes) -> tuple[str, str]:
        doc = decode_or_none(body)
        error = doc.get("error") if isinstance(doc, dict) else None
        if isinstance(doc, list) and doc and isinstance(doc[0], dict):
            error = doc[0].get("error")  # some Google endpoints wrap the error in a list
        if not isinstance(error, dict):
            return unread_error(status, body)
        message = str(error.get("message", ""))
        if "exceeds the maximum number of tokens" in message and TOO_LONG not in message:
            message = f"{TOO_LONG}: {message}"
        return kind_for(status), message

    def error_body(self, status: int, kind: str, message: str) -> bytes:
        return encode({"error": {"code": status, "message": message,
                                 "status": status_name(status)}})  # fmt: skip

    def stream_error(self, kind: str, message: str) -> bytes:
        return gemini_stream_error(kind, message)

    def path(self, kind: str, model: str, stream: bool) -> str:
        return path_for(kind, model, stream)

    def content_type(self, stream: bool) -> bytes:
        return b"text/event-stream" if stream else b"application/json; charset=utf-8"

    def count_to_pivot(self, doc: JSON, ctx: Context) -> JSON:
        return request_to_pivot(_count_contents(doc), ctx)

    def count_from_pivot(self, doc: JSON, ctx: Context) -> JSON:
        return {"contents": request_from_pivot(doc, ctx)["contents"]}

    def count_response_to_pivot(self, doc: JSON) -> int:
        return int(doc.get("totalTokens") or 0)

    def count_response_from_pivot(self, tokens: int) -> JSON:
        return {"totalTokens": tokens}
