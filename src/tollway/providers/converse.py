"""Bedrock's Converse API for the models that are not Claude (Llama, Nova, Mistral, ...).

The Bedrock provider keeps speaking Anthropic Messages to the pipeline; for a model id
whose vendor is not ``anthropic`` it calls ``POST /model/{id}/converse`` (or
``/converse-stream``) instead of InvokeModel, with the body made here from the Anthropic
request, and re-expresses the answer as the Anthropic API's (a message JSON, or the
ConverseStream event-stream frames as Anthropic SSE), so meter and relay see one shape
and any client dialect reaches these models through the Anthropic pivot.

    is_converse("us.meta.llama3-3-70b-instruct-v1:0")  -> True
    converse_body(anthropic_body) -> (body, dropped)
    message_body(converse_json, model) -> anthropic message JSON
    to_sse(chunks, provider, model)  # ConverseStream frames -> Anthropic SSE
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import msgspec

from tollway.errors import InvalidRequest, UpstreamError
from tollway.providers.cloud_models import PROFILES
from tollway.providers.eventstream import EventStreamDecoder

_json = msgspec.json.Encoder()
_STOPS = {
    "end_turn": "end_turn", "tool_use": "tool_use", "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence", "guardrail_intervened": "refusal",
    "content_filtered": "refusal", "model_context_window_exceeded": "max_tokens",
}  # fmt: skip
_IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif",
                  "image/webp": "webp"}  # fmt: skip
# Request fields with no Converse equivalent: dropped and named.
_IGNORED = ("metadata", "thinking", "betas", "anthropic_beta", "context_management",
            "output_config", "service_tier", "top_k", "container", "mcp_servers")  # fmt: skip


def is_converse(bedrock_model: str) -> bool:
    """A Bedrock model id (or profile, or ARN) whose vendor is not Anthropic."""
    name = bedrock_model.rsplit("/", 1)[-1]
    for prefix in PROFILES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    return "." in name and not name.startswith(("anthropic.", "arn:"))


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict))
    return ""


def _block(block: Mapping[str, Any], dropped: list[str], where: str) -> dict[str, Any] | None:
    kind = block.get("type")
    if kind == "text":
        return {"text": block.get("text", "")}
    if kind == "image":
        source = block.get("source") or {}
        fmt = _IMAGE_FORMATS.get(str(source.get("media_type", "")))
        if source.get("type") == "base64" and fmt:
            return {"image": {"format": fmt, "source": {"bytes": source.get("data", "")}}}
    elif kind == "tool_use":
        return {"toolUse": {"toolUseId": block.get("id", ""), "name": block.get("name", ""),
                            "input": block.get("input") or {}}}  # fmt: skip
    elif kind == "tool_result":
        raw = block.get("content", "")
        parts: list[dict[str, Any]] = []
        for item in [{"type": "text", "text": raw}] if isinstance(raw, str) else raw or []:
            converted = _block(item, dropped, where + ".content")
            if converted is not None:
                parts.append(converted)
        result: dict[str, Any] = {"toolUseId": block.get("tool_use_id", ""),
                                  "content": parts or [{"text": ""}]}  # fmt: skip
        if block.get("is_error"):
            result["status"] = "error"
        return {"toolResult": result}
    elif kind in ("thinking", "redacted_thinking"):
        dropped.append(f"{where}.{kind}")
        return None
    dropped.append(f"{where}.{kind}")
    return None


def _tool_config(doc: Mapping[str, Any], dropped: list[str]) -> dict[str, Any] | None:
    tools = []
    for tool in doc.get("tools") or []:
        if "input_schema" not in tool:  # a server tool (web search, ...): not on Converse
            dropped.append(f"tools.{tool.get('name', tool.get('type', '?'))}")
            continue
        spec: dict[str, Any] = {"name": tool["name"], "inputSchema": {"json": tool["input_schema"]}}
        if tool.get("description"):
            spec["description"] = tool["description"]
        tools.append({"toolSpec": spec})
    if not tools:
        return None
    config: dict[str, Any] = {"tools": tools}
    choice = doc.get("tool_choice") or {}
    kind = choice.get("type")
    if kind == "none":
        dropped.append("tools")  # Converse has no "none": the tools are not offered
        return None
    if kind == "auto":
        config["toolChoice"] = {"auto": {}}
    elif kind == "any":
        config["toolChoice"] = {"any": {}}
    elif kind == "tool":
        config["toolChoice"] = {"tool": {"name": choice.get("name", "")}}
    return config


def converse_body(body: bytes) -> tuple[bytes, list[str]]:
    """The Converse body for an Anthropic Messages body, and the fields dropped."""
    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise InvalidRequest("request body is not JSON") from None
    if not isinstance(doc, dict):
        raise InvalidRequest("request body must be a JSON object")
    dropped = [f for f in _IGNORED if f in doc]
    out: dict[str, Any] = {}
    system = doc.get("system")
    if system:
        out["system"] = [{"text": _text_of(system)}]
    messages = []
    for i, message in enumerate(doc.get("messages") or []):
        content = message.get("content", "")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        parts = [p for j, b in enumerate(blocks)
                 if (p := _block(b, dropped, f"messages.{i}.content.{j}")) is not None]  # fmt: skip
        if parts:
            messages.append({"role": message.get("role", "user"), "content": parts})
    out["messages"] = messages
    inference: dict[str, Any] = {}
    for ours, theirs in (("max_tokens", "maxTokens"), ("temperature", "temperature"),
                         ("top_p", "topP"), ("stop_sequences", "stopSequences")):  # fmt: skip
        if doc.get(ours) is not None:
            inference[theirs] = doc[ours]
    if inference:
        out["inferenceConfig"] = inference
    tools = _tool_config(doc, dropped)
    if tools is not None:
        out["toolConfig"] = tools
    return _json.encode(out), dropped


def _usage(raw: Mapping[str, Any] | None) -> dict[str, int]:
    raw = raw or {}
    return {
        "input_tokens": int(raw.get("inputTokens", 0)),
        "output_tokens": int(raw.get("outputTokens", 0)),
        "cache_read_input_tokens": int(raw.get("cacheReadInputTokens", 0)),
        "cache_creation_input_tokens": int(raw.get("cacheWriteInputTokens", 0)),
    }


def _message_id() -> str:
    return f"msg_bdrk_{uuid.uuid4().hex[:24]}"


def message_body(body: bytes, model: str) -> bytes:
    """A Converse response as an Anthropic message (unreadable bodies pass unchanged)."""
    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return body
    if not isinstance(doc, dict):
        return body
    content: list[dict[str, Any]] = []
    for block in ((doc.get("output") or {}).get("message") or {}).get("content") or []:
        if "text" in block:
            content.append({"type": "text", "text": block["text"]})
        elif "toolUse" in block:
            use = block["toolUse"]
            content.append({"type": "tool_use", "id": use.get("toolUseId", ""),
                            "name": use.get("name", ""),
                            "input": use.get("input") or {}})  # fmt: skip
    stop = str(doc.get("stopReason", "end_turn"))
    return _json.encode({
        "id": _message_id(), "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": _STOPS.get(stop, "end_turn"), "stop_sequence": None,
        "usage": _usage(doc.get("usage")),
    })  # fmt: skip


def _sse(kind: str, data: Mapping[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + _json.encode({"type": kind, **data}) + b"\n\n"


class ConverseStream:
    """ConverseStream events in, Anthropic stream events out (one instance per stream)."""

    def __init__(self, provider: str, model: str) -> None:
        self._provider, self._model = provider, model
        self._open: set[int] = set()
        self._stop = "end_turn"
        self.done = False

    def event(self, kind: str, doc: Mapping[str, Any]) -> list[bytes]:
        if kind == "messageStart":
            return [_sse("message_start", {"message": {
                "id": _message_id(), "type": "message", "role": "assistant", "model": self._model,
                "content": [], "stop_reason": None, "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0}}})]  # fmt: skip
        index = int(doc.get("contentBlockIndex", 0))
        if kind == "contentBlockStart":
            use = (doc.get("start") or {}).get("toolUse")
            if use is None:
                return []
            self._open.add(index)
            block = {"type": "tool_use", "id": use.get("toolUseId", ""),
                     "name": use.get("name", ""), "input": {}}  # fmt: skip
            return [_sse("content_block_start", {"index": index, "content_block": block})]
        if kind == "contentBlockDelta":
            out = []
            delta = doc.get("delta") or {}
            if index not in self._open:  # a text block has no contentBlockStart
                self._open.add(index)
                out.append(
                    _sse(
                        "content_block_start",
                        {"index": index, "content_block": {"type": "text", "text": ""}},
                    )
                )
            if "text" in delta:
                out.append(_sse("content_block_delta", {"index": index, "delta": {
                    "type": "text_delta", "text": delta["text"]}}))  # fmt: skip
            elif "toolUse" in delta:
                out.append(_sse("content_block_delta", {"index": index, "delta": {
                    "type": "input_json_delta",
                    "partial_json": (delta["toolUse"] or {}).get("input", "")}}))  # fmt: skip
            return out
        if kind == "contentBlockStop":
            if index not in self._open:
                return []
            self._open.discard(index)
            return [_sse("content_block_stop", {"index": index})]
        if kind == "messageStop":
            self._stop = _STOPS.get(str(doc.get("stopReason", "end_turn")), "end_turn")
            return [_sse("content_block_stop", {"index": i}) for i in sorted(self._open)]
        if kind == "metadata":
            self.done = True
            return [
                _sse("message_delta", {"delta": {"stop_reason": self._stop, "stop_sequence": None},
                                       "usage": _usage(doc.get("usage"))}),
                _sse("message_stop", {}),
            ]  # fmt: skip
        return []


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


async def to_sse(chunks: AsyncIterator[bytes], provider: str, model: str) -> AsyncIterator[bytes]:
    """ConverseStream's binary event stream in, Anthropic SSE out."""
    decoder = EventStreamDecoder(provider)
    state = ConverseStream(provider, model)
    async for data in chunks:
        out: list[bytes] = []
        try:
            for headers, payload in decoder.feed(data):
                if _text(headers.get(":message-type", "event")) != "event":
                    name = _text(headers.get(":exception-type") or "exception")
                    message = payload[:500].decode("utf-8", "replace")
                    try:
                        parsed = msgspec.json.decode(payload)
                        if isinstance(parsed, dict):
                            message = str(parsed.get("message") or parsed.get("Message") or "")
                    except msgspec.DecodeError:
                        pass
                    raise UpstreamError(f"provider {provider} stream failed ({name}): {message}")
                try:
                    doc = msgspec.json.decode(payload)
                except msgspec.DecodeError:
                    raise UpstreamError(
                        f"provider {provider} sent an unreadable stream event"
                    ) from None
                out += state.event(_text(headers.get(":event-type", "")), doc)
        except UpstreamError:
            if out:
                yield b"".join(out)
            raise
        if out:
            yield b"".join(out)
    decoder.finish()
