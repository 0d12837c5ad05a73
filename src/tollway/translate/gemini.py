"""The Gemini generateContent codec (what Gemini CLI speaks), requests half; answers and
streams are in gemini_replies.py.

Signatures cross over both ways. A Gemini ``thoughtSignature`` becomes a thinking block
whose signature packs it (tag ``g``), so an Anthropic-shaped client sends it back; an
Anthropic thinking block (text and signature, tag ``a``) rides as the ``thoughtSignature``
of the next function call, which Gemini CLI keeps in its history and echoes.
"""

from __future__ import annotations

from typing import Any

from tollway.translate.chat import default_max_tokens
from tollway.translate.common import (
    JSON,
    Context,
    blocks,
    dumps,
    new_id,
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
