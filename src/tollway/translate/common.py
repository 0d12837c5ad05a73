"""What every dialect codec shares: the pivot, the per-request context, JSON and SSE helpers.

The pivot is the Anthropic Messages shape (request, response and stream events, as plain
dicts): every codec converts its dialect to it and from it, so a pair is two codecs and
each dialect lives in one module. Facts a dialect keeps that the pivot has no field for
travel in the pivot's own opaque fields (a Gemini ``thoughtSignature`` rides in a
thinking block's ``signature``), so they survive a round trip through a client.
"""

from __future__ import annotations

import base64
import itertools
import secrets
from dataclasses import dataclass, field
from typing import Any

import msgspec

from tollway.errors import InvalidRequest
from tollway.sse import SSEEvent

JSON = dict[str, Any]
_encoder = msgspec.json.Encoder()
_ids = itertools.count(1)
_ID_PREFIX = secrets.token_hex(4)

# Anthropic error type by HTTP status, for errors whose own shape says less.
_KIND = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
         403: "permission_error", 404: "not_found_error", 408: "timeout_error",
         413: "request_too_large", 422: "invalid_request_error", 429: "rate_limit_error",
         500: "api_error", 502: "api_error", 503: "overloaded_error", 504: "timeout_error",
         529: "overloaded_error"}  # fmt: skip
# Claude Code recovers from an over-long prompt by matching these words.
TOO_LONG = "prompt is too long"


@dataclass(slots=True)
class Context:
    """One request's translation state, shared by its request, response and stream."""

    model: str  # as the upstream sees it
    stream: bool = False
    dropped: list[str] = field(default_factory=list)
    include_usage: bool = False  # a Chat client asked for the usage chunk
    custom_tools: set[str] = field(default_factory=set)  # Responses freeform tools by name
    requested: str = ""  # the model as the client named it, echoed in its responses

    def drop(self, path: str) -> None:
        if path not in self.dropped:
            self.dropped.append(path)


def decode(body: bytes) -> JSON:
    try:
        doc = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        raise InvalidRequest("the request body is not valid JSON for this API") from None
    if not isinstance(doc, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return doc


def decode_or_none(data: bytes) -> Any:
    try:
        return msgspec.json.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return None


def encode(value: Any) -> bytes:
    return _encoder.encode(value)


def dumps(value: Any) -> str:
    return _encoder.encode(value).decode()


def loads_args(text: str | None) -> Any:
    """Tool-call arguments (a JSON string) as an object; an unreadable string is kept."""
    if not text:
        return {}
    value = decode_or_none(text.encode())
    return value if isinstance(value, dict) else {"input": text}


def new_id(prefix: str) -> str:
    return f"{prefix}{_ID_PREFIX}{next(_ids):010x}"


def sse(data: Any, event: str | None = None) -> bytes:
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + encode(data) + b"\n\n"


def event_json(event: SSEEvent) -> JSON | None:
    value = decode_or_none(event.data)
    return value if isinstance(value, dict) else None


def kind_for(status: int) -> str:
    return _KIND.get(status, "api_error" if status >= 500 else "invalid_request_error")


def unread_error(status: int, body: bytes) -> tuple[str, str]:
    """(error type, message) of an error body no codec can read: the status and its words."""
    return kind_for(status), body.decode("utf-8", "replace")[:2000]


def text_of(content: Any) -> str:
    """The text of a string or a list of blocks/parts with ``text``."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p
        )
    return ""


def data_url(media_type: str, data: str) -> str:
    return f"data:{media_type};base64,{data}"


def parse_data_url(url: str) -> tuple[str, str] | None:
    """``data:<type>;base64,<data>`` -> (type, data), else None."""
    if not url.startswith("data:"):
        return None
    head, comma, data = url[5:].partition(",")
    if not comma or not head.endswith(";base64"):
        return None
    return head[: -len(";base64")] or "application/octet-stream", data


def pack(tag: str, value: Any) -> str:
    """An opaque token carrying ``value`` through a client (``tag`` says whose it is)."""
    raw = base64.urlsafe_b64encode(encode(value)).decode().rstrip("=")
    return f"tw{tag}.{raw}"


def unpack(tag: str, token: Any) -> Any:
    """The value ``pack(tag, ...)`` made, or None for any other token."""
    prefix = f"tw{tag}."
    if not isinstance(token, str) or not token.startswith(prefix):
        return None
    raw = token[len(prefix) :]
    try:
        data = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except ValueError:
        return None
    return decode_or_none(data)


def blocks(content: Any) -> list[JSON]:
    """Anthropic content as a list of blocks (a string is one text block)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if isinstance(content, list):
        return [b for b in content if isinstance(b, dict)]
    return []


def pivot_usage(usage: JSON | None) -> JSON:
    u = usage or {}
    return {
        "input_tokens": int(u.get("input_tokens") or 0),
        "output_tokens": int(u.get("output_tokens") or 0),
        "cache_read_input_tokens": int(u.get("cache_read_input_tokens") or 0),
        "cache_creation_input_tokens": int(u.get("cache_creation_input_tokens") or 0),
    }


def prompt_total(usage: JSON) -> int:
    u = pivot_usage(usage)
    total: int = u["input_tokens"] + u["cache_read_input_tokens"]
    return total + int(u["cache_creation_input_tokens"])


def merge_usage(old: JSON, new: JSON | None) -> JSON:
    out = dict(old)
    for k, v in (new or {}).items():
        if v is not None:
            out[k] = v
    return out


class NoCount:
    """For dialects with no token-count endpoint."""

    counts = False

    def count_to_pivot(self, doc: JSON, ctx: Context) -> JSON:
        raise InvalidRequest("this API has no token-count endpoint")

    def count_from_pivot(self, doc: JSON, ctx: Context) -> JSON:
        raise InvalidRequest("this API has no token-count endpoint")

    def count_response_to_pivot(self, doc: JSON) -> int:
        raise InvalidRequest("this API has no token-count endpoint")

    def count_response_from_pivot(self, tokens: int) -> JSON:
        raise InvalidRequest("this API has no token-count endpoint")
