"""The Gemini generateContent codec (what Gemini CLI speaks), to and from the pivot.

Signatures cross over both ways. A Gemini ``thoughtSignature`` becomes a thinking block
whose signature packs it (tag ``g``), so an Anthropic-shaped client sends it back; an
Anthropic thinking block (text and signature, tag ``a``) rides as the ``thoughtSignature``
of the next function call, which Gemini CLI keeps in its history and echoes.
"""

from __future__ import annotations

from typing import Any

from tollway.providers.base import GEMINI
from tollway.sse import SSEEvent
from tollway.surfaces.gemini import path_for, status_name
from tollway.translate.anthropic import Emitter, foreign_signature
from tollway.translate.chat import default_max_tokens
from tollway.translate.common import (
    JSON,
    TOO_LONG,
    Context,
    blocks,
    decode_or_none,
    dumps,
    encode,
    event_json,
    kind_for,
    new_id,
    pack,
    pivot_usage,
    prompt_total,
    sse,
    text_of,
    unpack,
)

_STOP = {"STOP": "end_turn", "MAX_TOKENS": "max_tokens", "SAFETY": "refusal",
         "RECITATION": "refusal", "PROHIBITED_CONTENT": "refusal", "BLOCKLIST": "refusal",
         "SPII": "refusal", "IMAGE_SAFETY": "refusal"}  # fmt: skip
_FINISH = {"end_turn": "STOP", "stop_sequence": "STOP", "tool_use": "STOP",
           "max_tokens": "MAX_TOKENS", "refusal": "SAFETY", "pause_turn": "STOP"}  # fmt: skip
_LEVEL_BUDGET = {"LOW": 2048, "MEDIUM": 8192, "HIGH": 16384}
_GEMINI_ONLY = ("safetySettings", "cachedContent", "labels")
_GEN_ONLY = ("candidateCount", "responseMimeType", "responseSchema", "responseJsonSchema",
             "presencePenalty", "frequencyPenalty", "seed", "responseModalities",
             "mediaResolution", "speechConfig", "responseLogprobs", "logprobs")  # fmt: skip
_PIVOT_ONLY = ("context_management", "container", "mcp_servers", "output_config",
               "service_tier", "metadata")  # fmt: skip


# --- requests -------------------------------------------------------------------------


def _media(data: JSON, url: bool) -> JSON:
    mime = str(data.get("mimeType", "application/octet-stream"))
    kind = "image" if mime.startswith("image/") else "document"
    if url:
        return {"type": kind, "source": {"type": "url", "url": str(data.get("fileUri", ""))}}
    source = {"type": "base64", "media_type": mime, "data": str(data.get("data", ""))}
    return {"type": kind, "source": source}


def _restored(part: JSON) -> JSON | None:
    """The Anthropic thinking block a part's thoughtSignature carries, if it carries one."""
    own = unpack("a", part.get("thoughtSignature"))
    return own if isinstance(own, dict) and own.get("type") == "thinking" else None


class _Ids:
    """Tool-call ids for calls that came without one, matched to their responses by name."""

    def __init__(self) -> None:
        self.waiting: dict[str, list[str]] = {}

    def call(self, fn: JSON) -> str:
        tool_id = str(fn.get("id") or new_id("toolu_tw"))
        self.waiting.setdefault(str(fn.get("name")), []).append(tool_id)
        return tool_id

    def response(self, fn: JSON) -> str:
        waiting = self.waiting.get(str(fn.get("name")), [])
        if fn.get("id"):
            if fn["id"] in waiting:
                waiting.remove(fn["id"])
            return str(fn["id"])
        return waiting.pop(0) if waiting else new_id("toolu_tw")


def _parts_to_blocks(parts: list[Any], where: str, ids: _Ids, ctx: Context) -> list[JSON]:
    out: list[JSON] = []
    for j, part in enumerate(parts):
        if not isinstance(part, dict):
            continue
        at = f"{where}[{j}]"
        restored = _restored(part)
        if restored is not None:
            out.append(restored)
        elif part.get("thoughtSignature"):
            ctx.drop(f"{at}.thoughtSignature")
        if part.get("thought"):
            if restored is None:
                ctx.drop(f"{at}(thought)")
            continue
        if "text" in part:
            if part["text"]:
                out.append({"type": "text", "text": str(part["text"])})
        elif "inlineData" in part:
            out.append(_media(part["inlineData"], False))
        elif "fileData" in part:
            out.append(_media(part["fileData"], True))
        elif "functionCall" in part:
            fn = part["functionCall"]
            out.append({"type": "tool_use", "id": ids.call(fn), "name": str(fn.get("name")),
                        "input": fn.get("args") or {}})  # fmt: skip
        elif "functionResponse" in part:
            fn = part["functionResponse"]
            response = fn.get("response")
            error = isinstance(response, dict) and set(response) == {"error"}
            body = response.get("output", response) if isinstance(response, dict) else response
            text = body if isinstance(body, str) else dumps(body)
            result: JSON = {"type": "tool_result", "tool_use_id": ids.response(fn),
                            "content": [{"type": "text", "text": text}]}  # fmt: skip
            if error:
                result["is_error"] = True
            out.append(result)
        else:
            ctx.drop(f"{at}({next(iter(part), 'empty')})")
    return out


def _schema(fn: JSON) -> JSON:
    if isinstance(fn.get("parametersJsonSchema"), dict):
        return dict(fn["parametersJsonSchema"])
    if isinstance(fn.get("parameters"), dict):
        lowered: JSON = _lower_types(fn["parameters"])
        return lowered
    return {"type": "object", "properties": {}}


def _lower_types(schema: Any) -> Any:
    """Gemini's OpenAPI-style schema (``"type": "OBJECT"``) as JSON Schema."""
    if isinstance(schema, dict):
        return {k: (v.lower() if k == "type" and isinstance(v, str) else _lower_types(v))
                for k, v in schema.items()}  # fmt: skip
    if isinstance(schema, list):
        return [_lower_types(v) for v in schema]
    return schema


def _tools_to_pivot(doc: JSON, ctx: Context) -> list[JSON]:
    tools: list[JSON] = []
    for i, group in enumerate(doc.get("tools") or []):
        for name in group:
            if name != "functionDeclarations":
                ctx.drop(f"tools[{i}].{name}")
        for fn in group.get("functionDeclarations") or []:
            tool: JSON = {"name": str(fn.get("name")), "input_schema": _schema(fn)}
            if fn.get("description"):
                tool["description"] = fn["description"]
            tools.append(tool)
    return tools


def _choice_to_pivot(doc: JSON, names: set[str], ctx: Context) -> JSON | None:
    config = (doc.get("toolConfig") or {}).get("functionCallingConfig") or {}
    mode = config.get("mode")
    if mode == "NONE":
        return {"type": "none"}
    if mode in ("ANY", "VALIDATED"):
        allowed = [n for n in config.get("allowedFunctionNames") or [] if n in names]
        if len(config.get("allowedFunctionNames") or []) != len(allowed):
            ctx.drop("toolConfig.functionCallingConfig.allowedFunctionNames(not in tools)")
        if len(allowed) == 1:
            return {"type": "tool", "name": allowed[0]}
        return {"type": "any"}
    return None


def _thinking(config: JSON, cap: int) -> JSON | None:
    thinking = config.get("thinkingConfig") or {}
    budget = thinking.get("thinkingBudget")
    if budget is None:
        budget = _LEVEL_BUDGET.get(str(thinking.get("thinkingLevel", "")).upper())
    elif budget < 0:
        budget = _LEVEL_BUDGET["MEDIUM"]
    if not budget or budget < 1024 or cap <= 1024:
        return None
    return {"type": "enabled", "budget_tokens": min(int(budget), cap - 1)}


def request_to_pivot(doc: JSON, ctx: Context) -> JSON:
    ids = _Ids()
    messages: list[JSON] = []
    for i, content in enumerate(doc.get("contents") or []):
        role = "assistant" if content.get("role") == "model" else "user"
        found = _parts_to_blocks(content.get("parts") or [], f"contents[{i}].parts", ids, ctx)
        if not found:
            continue
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(found)
        else:
            messages.append({"role": role, "content": found})
    out: JSON = {"model": ctx.model, "messages": messages}
    system = doc.get("systemInstruction")
    if isinstance(system, dict) and system.get("parts"):
        out["system"] = [{"type": "text", "text": text_of(system["parts"])}]
    config = doc.get("generationConfig") or {}
    out["max_tokens"] = int(config.get("maxOutputTokens") or default_max_tokens(ctx.model))
    tools = _tools_to_pivot(doc, ctx)
    if tools:
        out["tools"] = tools
        choice = _choice_to_pivot(doc, {t["name"] for t in tools}, ctx)
        if choice is not None:
            out["tool_choice"] = choice
    for name, ours in (("temperature", "temperature"), ("topP", "top_p"), ("topK", "top_k"),
                       ("stopSequences", "stop_sequences")):  # fmt: skip
        if config.get(name) is not None:
            out[ours] = config[name]
    if "temperature" in out:
        out["temperature"] = min(float(out["temperature"]), 1.0)
    thinking = _thinking(config, out["max_tokens"])
    if thinking is not None and _thinking_continues(messages):
        out["thinking"] = thinking
        for name in ("temperature", "top_p", "top_k"):
            if out.pop(name, None) is not None:
                ctx.drop(f"generationConfig.{name}(with thinking)")
    elif config.get("thinkingConfig"):
        ctx.drop("generationConfig.thinkingConfig")
    for name in _GEN_ONLY:
        if name in config:
            ctx.drop(f"generationConfig.{name}")
    for name in _GEMINI_ONLY:
        if name in doc:
            ctx.drop(name)
    if ctx.stream:
        out["stream"] = True
    return out


def _thinking_continues(messages: list[JSON]) -> bool:
    """Thinking can be asked for only if every assistant turn with a tool call kept its
    thinking block (Anthropic refuses a tool loop whose thinking was lost)."""
    for message in messages:
        content = message["content"]
        if message["role"] == "assistant" and any(b["type"] == "tool_use" for b in content):
            if content[0]["type"] not in ("thinking", "redacted_thinking"):
                return False
    return True


def _block_to_part(block: JSON, where: str, names: dict[str, str], ctx: Context) -> JSON | None:
    kind = block.get("type")
    if kind == "text":
        return {"text": block.get("text", "")}
    if kind in ("image", "document"):
        source = block.get("source") or {}
        if source.get("type") == "base64":
            return {"inlineData": {"mimeType": source.get("media_type"),
                                   "data": source.get("data")}}  # fmt: skip
        if source.get("type") == "text":
            return {"text": str(source.get("data", ""))}
        if source.get("type") == "url":
            mime = "application/pdf" if kind == "document" else "image/png"
            return {"fileData": {"mimeType": mime, "fileUri": source.get("url")}}
    if kind == "tool_use":
        names[str(block.get("id"))] = str(block.get("name"))
        return {"functionCall": {"id": block.get("id"), "name": block.get("name"),
                                 "args": block.get("input") or {}}}  # fmt: skip
    if kind == "tool_result":
        content = block.get("content")
        text = text_of(blocks(content))
        if any(b.get("type") != "text" for b in blocks(content)):
            ctx.drop(f"{where}.content(image)")
        key = "error" if block.get("is_error") else "output"
        tool_id = str(block.get("tool_use_id"))
        return {"functionResponse": {"id": tool_id, "name": names.get(tool_id, ""),
                                     "response": {key: text}}}  # fmt: skip
    ctx.drop(f"{where}({kind})")
    return None


def _turn(i: int, message: JSON, names: dict[str, str], ctx: Context) -> JSON:
    parts: list[JSON] = []
    signature: str | None = None  # a Gemini signature waiting for its part
    for j, block in enumerate(blocks(message.get("content"))):
        where = f"messages[{i}].content[{j}]"
        if block.get("type") in ("thinking", "redacted_thinking"):
            own = unpack("g", block.get("signature"))
            if not isinstance(own, str):
                ctx.drop(f"{where}({block.get('type')})")  # another API's: unverifiable here
            elif block.get("thinking"):
                parts.append({"text": block["thinking"], "thought": True, "thoughtSignature": own})
            else:
                signature = own
            continue
        part = _block_to_part(block, where, names, ctx)
        if part is None:
            continue
        if signature is not None:
            part["thoughtSignature"] = signature
            signature = None
        parts.append(part)
    role = "model" if message.get("role") == "assistant" else "user"
    return {"role": role, "parts": parts}


def request_from_pivot(doc: JSON, ctx: Context) -> JSON:
    names: dict[str, str] = {}
    contents = [_turn(i, m, names, ctx) for i, m in enumerate(doc.get("messages") or [])]
    out: JSON = {"contents": [c for c in contents if c["parts"]]}
    system = doc.get("system")
    if system:
        out["systemInstruction"] = {"parts": [{"text": text_of(blocks(system))}]}
    declarations = []
    for i, tool in enumerate(doc.get("tools") or []):
        if "input_schema" not in tool or tool.get("type") not in (None, "custom"):
            ctx.drop(f"tools[{i}]({tool.get('type') or tool.get('name')})")
            continue
        fn: JSON = {"name": tool["name"], "parametersJsonSchema": tool["input_schema"]}
        if tool.get("description"):
            fn["description"] = tool["description"]
        declarations.append(fn)
    if declarations:
        out["tools"] = [{"functionDeclarations": declarations}]
        names_declared = {d["name"] for d in declarations}
        calling = _choice_from_pivot(doc.get("tool_choice"), names_declared, ctx)
        if calling is not None:
            out["toolConfig"] = {"functionCallingConfig": calling}
    config: JSON = {}
    for ours, name in (("max_tokens", "maxOutputTokens"), ("temperature", "temperature"),
                       ("top_p", "topP"), ("top_k", "topK"),
                       ("stop_sequences", "stopSequences")):  # fmt: skip
        if doc.get(ours) is not None:
            config[name] = doc[ours]
    thinking = doc.get("thinking") or {}
    if thinking.get("type") == "enabled":
        config["thinkingConfig"] = {
            "includeThoughts": True,
            "thinkingBudget": thinking.get("budget_tokens"),
        }
    elif thinking.get("type") == "adaptive":
        config["thinkingConfig"] = {"includeThoughts": True, "thinkingBudget": -1}
    if config:
        out["generationConfig"] = config
    for name in _PIVOT_ONLY:
        if name in doc:
            ctx.drop(name)
    return out


def _choice_from_pivot(choice: JSON | None, names: set[str], ctx: Context) -> JSON | None:
    if not choice:
        return None
    kind = choice.get("type")
    if kind == "none":
        return {"mode": "NONE"}
    if kind == "any":
        return {"mode": "ANY"}
    if kind == "tool":
        if choice.get("name") in names:
            return {"mode": "ANY", "allowedFunctionNames": [choice["name"]]}
        ctx.drop("tool_choice.name(not in tools)")
        return {"mode": "ANY"}
    return {"mode": "AUTO"}


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
            return kind_for(status), body.decode("utf-8", "replace")[:2000]
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
