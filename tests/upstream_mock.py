"""A loopback mock upstream that speaks the real Anthropic and OpenAI wire formats.

The server runs on 127.0.0.1 (an ephemeral port) in a background thread with its own event
loop, so sync tests, async tests and tests that drive subprocesses can all use it alike.

    with MockUpstream() as mock:
        mock.enqueue(Reply(events=anthropic_events([text_block("hi")])))
        ...  # point a client (or the gateway) at mock.base_url
        assert mock.requests[0].header("x-api-key") == "sk-..."

Every request is recorded as received: method, raw path and query, headers in wire order
with their spelling, and the exact body bytes. A reply comes from the queue (the first
queued reply whose ``when`` accepts the request), else from ``responder``, else from the
default for the path, which answers like the real API (streaming when the body says
``"stream": true``). The SSE shapes follow the captures in shared/wire/.
"""

from __future__ import annotations

import asyncio
import functools
import json
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

DEFAULT_TEXT = "Hello from the mock upstream."
ANTHROPIC_USAGE: dict[str, Any] = {
    "input_tokens": 21,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
    "output_tokens": 9,
    "service_tier": "standard",
}
OPENAI_USAGE: dict[str, Any] = {
    "prompt_tokens": 17,
    "completion_tokens": 6,
    "total_tokens": 23,
    "prompt_tokens_details": {"cached_tokens": 0},
}
RESPONSES_USAGE: dict[str, Any] = {
    "input_tokens": 15,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 4,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 19,
}
SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"

Headers = Mapping[str, str] | Sequence[tuple[str, str]]


def _hex(n: int) -> str:
    return uuid.uuid4().hex[:n]


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class SSE:
    """One server-sent event; ``data`` is sent as JSON unless it is a str (e.g. "[DONE]")."""

    data: Any
    event: str | None = None
    delay: float | None = None  # seconds before this event; overrides Reply.event_delay

    def encode(self) -> bytes:
        payload = self.data if isinstance(self.data, str) else _dumps(self.data)
        head = f"event: {self.event}\n" if self.event is not None else ""
        return f"{head}data: {payload}\n\n".encode()


@dataclass
class Reply:
    """A canned reply: an SSE stream (``events``), a JSON body (``json``) or raw ``body``."""

    status: int = 200
    json: Any = None
    body: bytes | None = None
    events: Sequence[SSE] | None = None
    chunks: Sequence[bytes] | None = None  # a raw body written piece by piece (event_delay apart)
    headers: Headers = ()
    event_delay: float = 0.0  # seconds between events
    delay: float = 0.0  # seconds before the response head
    cut_after: int | None = None  # drop the TCP connection after this many events
    hold_open: float = 0.0  # after the last event, keep the stream open this long
    provider_headers: bool = True  # add request-id / rate-limit headers for the path
    when: Callable[[RecordedRequest], bool] | None = None  # only for matching requests


# --------------------------------------------------------------------------- records


@dataclass
class RecordedRequest:
    """One request as the mock received it, and what the mock did with it."""

    method: str
    raw_path: str  # the request target as sent: path and query
    headers: list[tuple[str, str]]  # in wire order, names spelled as sent
    body: bytes
    received_at: float
    peer: str = ""  # the client's address and port: one per connection
    reply_status: int | None = None
    reply_headers: list[tuple[str, str]] = field(default_factory=list)
    reply_body: bytearray = field(default_factory=bytearray)  # the body bytes written
    events_sent: int = 0
    completed: bool = False  # the whole reply was written
    cut: bool = False  # the mock dropped the connection on purpose (Reply.cut_after)
    disconnect: threading.Event = field(default_factory=threading.Event)

    @property
    def path(self) -> str:
        return self.raw_path.partition("?")[0]

    @property
    def query_string(self) -> str:
        return self.raw_path.partition("?")[2]

    @property
    def disconnected(self) -> bool:
        """The client went away before the reply was complete."""
        return self.disconnect.is_set()

    def header(self, name: str) -> str | None:
        """The first value of a header, matched without regard to case."""
        values = self.header_all(name)
        return values[0] if values else None

    def header_all(self, name: str) -> list[str]:
        low = name.lower()
        return [v for k, v in self.headers if k.lower() == low]

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def stream(self) -> bool:
        try:
            body = self.json()
        except ValueError:
            return False
        return isinstance(body, dict) and body.get("stream") is True

    def reply_header(self, name: str) -> str | None:
        low = name.lower()
        return next((v for k, v in self.reply_headers if k.lower() == low), None)


# --------------------------------------------------------------------------- Anthropic


def anthropic_headers() -> list[tuple[str, str]]:
    reset = "2026-01-01T00:00:00Z"
    out = [("request-id", f"req_mock_{_hex(24)}")]
    for kind, limit in (
        ("requests", 4000),
        ("input-tokens", 2000000),
        ("output-tokens", 400000),
        ("tokens", 2400000),
    ):
        out += [
            (f"anthropic-ratelimit-{kind}-limit", str(limit)),
            (f"anthropic-ratelimit-{kind}-remaining", str(limit - 1)),
            (f"anthropic-ratelimit-{kind}-reset", reset),
        ]
    return out


def text_block(text: str = DEFAULT_TEXT) -> dict[str, Any]:
    return {"type": "text", "text": text}


def thinking_block(thinking: str, signature: str) -> dict[str, Any]:
    return {"type": "thinking", "thinking": thinking, "signature": signature}


def tool_use_block(
    name: str, tool_input: dict[str, Any], tool_id: str | None = None
) -> dict[str, Any]:
    return {
        "type": "tool_use",
        "id": tool_id or f"toolu_mock_{_hex(16)}",
        "name": name,
        "input": tool_input,
    }


def anthropic_message(
    content: Sequence[dict[str, Any]] | str = DEFAULT_TEXT,
    *,
    model: str = "claude-haiku-4-5",
    usage: Mapping[str, Any] | None = None,
    stop_reason: str | None = None,
) -> dict[str, Any]:
    """A non-streaming Messages API reply."""
    blocks = [text_block(content)] if isinstance(content, str) else list(content)
    if stop_reason is None:
        stop_reason = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
    return {
        "id": f"msg_mock_{_hex(20)}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": blocks,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": dict(usage or ANTHROPIC_USAGE),
    }


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _words(text: str) -> list[str]:
    out: list[str] = []
    for i, word in enumerate(text.split(" ")):
        out.append(word if i == 0 else " " + word)
    return out


def _block_events(index: int, block: dict[str, Any]) -> list[SSE]:
    kind = block["type"]
    events: list[SSE] = []

    def delta(d: dict[str, Any]) -> SSE:
        data = {"type": "content_block_delta", "index": index, "delta": d}
        return SSE(data, "content_block_delta")

    if kind == "text":
        start = {"type": "text", "text": ""}
        deltas = [delta({"type": "text_delta", "text": t}) for t in _words(block["text"])]
    elif kind == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [delta({"type": "thinking_delta", "thinking": block["thinking"]})]
        deltas.append(delta({"type": "signature_delta", "signature": block["signature"]}))
    elif kind == "tool_use":
        start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
        partial = ["", *_pieces(json.dumps(block["input"]), 12)]
        deltas = [delta({"type": "input_json_delta", "partial_json": p}) for p in partial]
    else:
        raise ValueError(f"no streaming form for a {kind!r} block")
    data = {"type": "content_block_start", "index": index, "content_block": start}
    events.append(SSE(data, "content_block_start"))
    if kind == "text" and index == 0:
        events.append(SSE({"type": "ping"}, "ping"))
    events += deltas
    events.append(SSE({"type": "content_block_stop", "index": index}, "content_block_stop"))
    return events


def anthropic_events(
    content: Sequence[dict[str, Any]] | str = DEFAULT_TEXT,
    *,
    model: str = "claude-haiku-4-5",
    usage: Mapping[str, Any] | None = None,
    stop_reason: str | None = None,
) -> list[SSE]:
    """A Messages API stream, event for event as the real API sends it."""
    message = anthropic_message(content, model=model, usage=usage, stop_reason=stop_reason)
    final = {k: v for k, v in message["usage"].items() if k != "service_tier"}
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "usage": {**message["usage"], "output_tokens": 1},
    }
    events = [SSE({"type": "message_start", "message": start}, "message_start")]
    for index, block in enumerate(message["content"]):
        events += _block_events(index, block)
    stop = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    events.append(
        SSE({"type": "message_delta", "delta": stop, "usage": final}, "message_delta"),
    )
    events.append(SSE({"type": "message_stop"}, "message_stop"))
    return events


def anthropic_error(status: int, kind: str, message: str) -> Reply:
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return Reply(status=status, json=body)


# --------------------------------------------------------------------------- OpenAI


def openai_headers() -> list[tuple[str, str]]:
    return [
        ("x-request-id", f"req_{_hex(32)}"),
        ("openai-processing-ms", "42"),
        ("openai-version", "2020-10-01"),
        ("x-ratelimit-limit-requests", "10000"),
        ("x-ratelimit-remaining-requests", "9999"),
        ("x-ratelimit-reset-requests", "6ms"),
        ("x-ratelimit-limit-tokens", "30000000"),
        ("x-ratelimit-remaining-tokens", "29999990"),
        ("x-ratelimit-reset-tokens", "0s"),
    ]


def chat_completion(
    text: str = DEFAULT_TEXT,
    *,
    model: str = "gpt-4o",
    usage: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-mock{_hex(20)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": dict(usage or OPENAI_USAGE),
        "system_fingerprint": "fp_mock",
    }


def chat_events(
    text: str = DEFAULT_TEXT,
    *,
    model: str = "gpt-4o",
    include_usage: bool = True,
    usage: Mapping[str, Any] | None = None,
) -> list[SSE]:
    """A Chat Completions stream; the usage chunk only when the client asked for it."""
    base = {
        "id": f"chatcmpl-mock{_hex(20)}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_mock",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> SSE:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        data: dict[str, Any] = {**base, "choices": [choice]}
        if include_usage:
            data["usage"] = None
        return SSE(data)

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"content": piece}) for piece in _words(text)]
    events.append(chunk({}, "stop"))
    if include_usage:
        events.append(SSE({**base, "choices": [], "usage": dict(usage or OPENAI_USAGE)}))
    events.append(SSE("[DONE]"))
    return events


def openai_error(status: int, kind: str, message: str, code: str | None = None) -> Reply:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return Reply(status=status, json=body)


def responses_object(
    text: str = DEFAULT_TEXT,
    *,
    model: str = "gpt-4o",
    usage: Mapping[str, Any] | None = None,
    response_id: str | None = None,
    item_id: str | None = None,
) -> dict[str, Any]:
    """A completed Responses API object."""
    item = {
        "type": "message",
        "id": item_id or f"msg_mock{_hex(12)}",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }
    return {
        "id": response_id or f"resp_mock{_hex(16)}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "model": model,
        "output": [item],
        "usage": dict(usage or RESPONSES_USAGE),
        "error": None,
        "incomplete_details": None,
    }


def responses_events(
    text: str = DEFAULT_TEXT,
    *,
    model: str = "gpt-4o",
    usage: Mapping[str, Any] | None = None,
) -> list[SSE]:
    """A Responses API stream ending in ``response.completed``."""
    final = responses_object(text, model=model, usage=usage)
    item = final["output"][0]
    pending = {**final, "status": "in_progress", "output": [], "usage": None}
    where = {"item_id": item["id"], "output_index": 0, "content_index": 0}
    part = {"type": "output_text", "text": "", "annotations": []}
    datas: list[dict[str, Any]] = [
        {"type": "response.created", "response": pending},
        {"type": "response.in_progress", "response": pending},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**item, "status": "in_progress", "content": []},
        },
        {"type": "response.content_part.added", **where, "part": part},
    ]
    datas += [{"type": "response.output_text.delta", **where, "delta": w} for w in _words(text)]
    datas += [
        {"type": "response.output_text.done", **where, "text": text},
        {"type": "response.content_part.done", **where, "part": {**part, "text": text}},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": final},
    ]
    return [SSE({**d, "sequence_number": i}, d["type"]) for i, d in enumerate(datas)]


# --------------------------------------------------------------------------- defaults


# --------------------------------------------------------------------------- Gemini

GEMINI_USAGE: dict[str, Any] = {
    "promptTokenCount": 31,
    "candidatesTokenCount": 7,
    "totalTokenCount": 38,
}


def gemini_response(
    parts: Sequence[dict[str, Any]] | str = DEFAULT_TEXT,
    *,
    model: str = "gemini-2.5-flash",
    usage: Mapping[str, Any] | None = None,
    finish: str = "STOP",
) -> dict[str, Any]:
    """A whole generateContent answer (gemini_p / gemini_tool captures)."""
    given = [{"text": parts}] if isinstance(parts, str) else list(parts)
    return {
        "candidates": [
            {"content": {"parts": given, "role": "model"}, "finishReason": finish, "index": 0}
        ],
        "usageMetadata": dict(usage or GEMINI_USAGE),
        "modelVersion": model,
        "responseId": f"mock{_hex(10)}",
    }


def gemini_events(
    parts: Sequence[dict[str, Any]] | str = DEFAULT_TEXT,
    *,
    model: str = "gemini-2.5-flash",
    usage: Mapping[str, Any] | None = None,
) -> list[SSE]:
    """A streamGenerateContent?alt=sse stream: text word by word, the last chunk carrying
    finishReason and usageMetadata (a functionCall part arrives whole)."""
    whole = gemini_response(parts, model=model, usage=usage)
    given = whole["candidates"][0]["content"]["parts"]
    pieces: list[dict[str, Any]] = []
    for part in given:
        if set(part) == {"text"}:
            pieces += [{"text": w} for w in _words(part["text"])]
        else:
            pieces.append(part)
    events = []
    for i, piece in enumerate(pieces):
        candidate: dict[str, Any] = {"content": {"parts": [piece], "role": "model"}, "index": 0}
        chunk: dict[str, Any] = {"candidates": [candidate], "modelVersion": model,
                                 "responseId": whole["responseId"]}  # fmt: skip
        if i == len(pieces) - 1:
            candidate["finishReason"] = "STOP"
            chunk["usageMetadata"] = whole["usageMetadata"]
        events.append(SSE(chunk))
    return events


def gemini_error(status: int, message: str, code: str = "INVALID_ARGUMENT") -> Reply:
    return Reply(status=status, json={"error": {"code": status, "message": message,
                                                "status": code}})  # fmt: skip


def _is_gemini(path: str) -> bool:
    return path.startswith("/v1beta/models")


# --------------------------------------------------------------------------- OpenAI tools


def chat_tool_events(
    calls: Sequence[tuple[str, str, dict[str, Any]]],
    *,
    text: str = "",
    model: str = "gpt-4o",
    include_usage: bool = True,
    usage: Mapping[str, Any] | None = None,
    groq: bool = False,
) -> list[SSE]:
    """A Chat Completions stream asking for tool calls ``(id, name, arguments)``, their
    arguments in two pieces each. ``groq`` adds Groq's ``x_groq`` usage to the last chunk,
    as Groq does."""
    base = {"id": f"chatcmpl-mock{_hex(20)}", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": model}  # fmt: skip

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**base, "choices": [choice]}

    events = [SSE(chunk({"role": "assistant", "content": None}))]
    events += [SSE(chunk({"content": w})) for w in _words(text)]
    for index, (call_id, name, args) in enumerate(calls):
        head = {"index": index, "id": call_id, "type": "function",
                "function": {"name": name, "arguments": ""}}  # fmt: skip
        events.append(SSE(chunk({"tool_calls": [head]})))
        encoded = _dumps(args)
        half = len(encoded) // 2
        for piece in (encoded[:half], encoded[half:]):
            events.append(
                SSE(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
            )
    last = chunk({}, "tool_calls" if calls else "stop")
    counted = dict(usage or OPENAI_USAGE)
    if groq:
        last["x_groq"] = {"id": f"req_{_hex(26)}", "usage": {**counted, "queue_time": 0.01}}
    events.append(SSE(last))
    if include_usage:
        events.append(SSE({**base, "choices": [], "usage": counted}))
    events.append(SSE("[DONE]"))
    return events


def chat_tool_completion(
    calls: Sequence[tuple[str, str, dict[str, Any]]], *, model: str = "gpt-4o"
) -> dict[str, Any]:
    body = chat_completion("", model=model)
    message = body["choices"][0]["message"]
    message["content"] = None
    message["tool_calls"] = [
        {"id": call_id, "type": "function", "function": {"name": name, "arguments": _dumps(args)}}
        for call_id, name, args in calls
    ]
    body["choices"][0]["finish_reason"] = "tool_calls"
    return body


def _is_anthropic(path: str) -> bool:
    return path.startswith("/v1/messages") or path == "/v1/models"


def _is_openai(path: str) -> bool:
    return path.endswith("/chat/completions") or path.endswith("/responses")


def default_reply(req: RecordedRequest) -> Reply:
    """What the real API would answer, with the mock's text and usage."""
    path, method = req.path, req.method
    try:
        body = req.json() if req.body else {}
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    model = str(body.get("model") or "mock-model")
    stream = body.get("stream") is True
    if method == "HEAD" or (method == "GET" and path == "/"):
        return Reply(status=200, body=b"", provider_headers=False)
    if method == "POST" and path == "/v1/messages":
        if stream:
            return Reply(events=anthropic_events(model=model))
        return Reply(json=anthropic_message(model=model))
    if method == "POST" and path == "/v1/messages/count_tokens":
        return Reply(json={"input_tokens": max(1, len(req.body) // 4)})
    if method == "POST" and path.endswith("/chat/completions"):
        if stream:
            options = body.get("stream_options") or {}
            include = isinstance(options, dict) and options.get("include_usage") is True
            return Reply(events=chat_events(model=model, include_usage=include))
        return Reply(json=chat_completion(model=model))
    if method == "POST" and path.endswith("/responses"):
        if stream:
            return Reply(events=responses_events(model=model))
        return Reply(json=responses_object(model=model))
    if method == "POST" and _is_gemini(path):
        model = path.rpartition("/")[2].partition(":")[0]
        if path.endswith(":countTokens"):
            return Reply(json={"totalTokens": max(1, len(req.body) // 4)})
        if path.endswith(":streamGenerateContent"):
            return Reply(events=gemini_events(model=model))
        return Reply(json=gemini_response(model=model))
    if method == "GET" and path.endswith("/models"):
        ids = ["claude-opus-4-5", "claude-haiku-4-5", "gpt-4o"]
        data = [{"id": i, "object": "model", "type": "model", "display_name": i} for i in ids]
        return Reply(json={"object": "list", "data": data, "has_more": False})
    if _is_gemini(path):
        return gemini_error(404, f"mock: no route {method} {path}", "NOT_FOUND")
    if _is_openai(path):
        return openai_error(404, "invalid_request_error", f"mock: no route {method} {path}")
    return anthropic_error(404, "not_found_error", f"mock: no route {method} {path}")


def _headers_for(req: RecordedRequest, reply: Reply) -> list[tuple[str, str]]:
    given = list(reply.headers.items() if isinstance(reply.headers, Mapping) else reply.headers)
    names = {k.lower() for k, _ in given}
    out: list[tuple[str, str]] = []
    if reply.provider_headers:
        if _is_openai(req.path):
            out += openai_headers()
        elif _is_gemini(req.path):
            out.append(("x-gemini-service-tier", "standard"))
        elif _is_anthropic(req.path) or not req.path.startswith("/v1/"):
            out += anthropic_headers()
    if reply.events is not None:
        out += [("Content-Type", SSE_CONTENT_TYPE), ("Cache-Control", "no-cache")]
    elif reply.body is None:
        out.append(("Content-Type", "application/json"))
    return [(k, v) for k, v in out if k.lower() not in names] + given


# --------------------------------------------------------------------------- server


class MockUpstream:
    """The mock server; ``start()``/``stop()`` or use it as a context manager."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.responder: Callable[[RecordedRequest], Reply | None] | None = None
        self.any_disconnect = threading.Event()
        self._stopping = False
        self._queue: list[Reply] = []
        self._records: list[RecordedRequest] = []
        self._cond = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._sock: socket.socket | None = None
        self._error: BaseException | None = None

    # -- lifecycle

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> MockUpstream:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        sock.listen(128)
        sock.setblocking(False)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(ready,), name="mock-upstream", daemon=True
        )
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the mock upstream did not start within 10 s")
        if self._error is not None:
            self._thread.join(5)
            raise RuntimeError("the mock upstream failed to start") from self._error
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._stopping = True  # handlers cancelled by the shutdown are not client disconnects
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(15)
        if self._thread.is_alive():
            raise RuntimeError("the mock upstream did not stop within 15 s")
        self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> MockUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self, ready: threading.Event) -> None:
        loop = self._loop
        assert loop is not None and self._sock is not None
        asyncio.set_event_loop(loop)
        try:
            app = web.Application(client_max_size=256 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(
                app, handler_cancellation=True, shutdown_timeout=0.5, access_log=None
            )
            loop.run_until_complete(self._runner.setup())
            site = web.SockSite(self._runner, self._sock)
            loop.run_until_complete(site.start())
        except BaseException as exc:  # reported to start() in the test's thread
            self._error = exc
            if self._runner is not None:
                loop.run_until_complete(self._runner.cleanup())
            loop.close()
            self._sock.close()
            ready.set()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._runner.cleanup())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            asyncio.set_event_loop(None)

    # -- scripting

    def enqueue(self, *replies: Reply) -> None:
        """Replies served in order; each is used once (by a request its ``when`` accepts)."""
        with self._cond:
            self._queue.extend(replies)

    def reset(self) -> None:
        with self._cond:
            self._queue.clear()
            self._records.clear()
            self.responder = None
            self.any_disconnect.clear()

    @property
    def pending(self) -> int:
        """Queued replies not served yet."""
        with self._cond:
            return len(self._queue)

    def _pick(self, req: RecordedRequest) -> Reply:
        with self._cond:
            for i, reply in enumerate(self._queue):
                if reply.when is None or reply.when(req):
                    return self._queue.pop(i)
        responder = self.responder
        if responder is not None:
            reply = responder(req)
            if reply is not None:
                return reply
        return default_reply(req)

    # -- inspection

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._cond:
            return list(self._records)

    def calls(self, path: str | None = None, method: str | None = None) -> list[RecordedRequest]:
        return [
            r
            for r in self.requests
            if (path is None or r.path == path) and (method is None or r.method == method)
        ]

    def wait_for_requests(
        self, count: int = 1, timeout: float = 10.0, path: str | None = None
    ) -> list[RecordedRequest]:
        """Block until ``count`` requests (to ``path``) have arrived; raise on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [r for r in self._records if path is None or r.path == path]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(found)} of {count} requests in {timeout} s")
                self._cond.wait(left)

    def wait_disconnect(self, timeout: float = 5.0) -> RecordedRequest | None:
        """The first request whose client went away mid-reply, or None after ``timeout``."""
        if not self.any_disconnect.wait(timeout):
            return None
        return next((r for r in self.requests if r.disconnected), None)

    async def wait_disconnect_async(self, timeout: float = 5.0) -> RecordedRequest | None:
        return await asyncio.to_thread(self.wait_disconnect, timeout)

    # -- the handler (runs in the mock's thread)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        rec = RecordedRequest(
            method=request.method,
            raw_path=request.raw_path,
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers],
            body=body,
            received_at=time.time(),
            peer=str(request.transport.get_extra_info("peername")) if request.transport else "",
        )
        with self._cond:
            self._records.append(rec)
            self._cond.notify_all()
        try:
            reply = self._pick(rec)
            headers = _headers_for(rec, reply)
            rec.reply_status = reply.status
            rec.reply_headers = headers
            if reply.delay:
                await asyncio.sleep(reply.delay)
            if reply.chunks is not None:
                return await self._raw(request, rec, reply, headers)
            if reply.events is None:
                return self._plain(rec, reply, headers)
            return await self._stream(request, rec, reply, headers)
        except (asyncio.CancelledError, ConnectionError):
            if not (rec.cut or rec.completed or self._stopping):
                rec.disconnect.set()
                self.any_disconnect.set()
            raise

    def _plain(
        self, rec: RecordedRequest, reply: Reply, headers: list[tuple[str, str]]
    ) -> web.Response:
        if reply.body is not None:
            data = reply.body
        elif reply.json is not None:
            data = _dumps(reply.json).encode()
        else:
            data = b""
        rec.reply_body += data
        resp = web.Response(status=reply.status, body=data)
        for k, v in headers:
            resp.headers.add(k, v)
        rec.completed = True
        return resp

    async def _stream(
        self,
        request: web.Request,
        rec: RecordedRequest,
        reply: Reply,
        headers: list[tuple[str, str]],
    ) -> web.StreamResponse:
        resp = web.StreamResponse(status=reply.status)
        for k, v in headers:
            resp.headers.add(k, v)
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        events = list(reply.events or ())
        for i, event in enumerate(events):
            if reply.cut_after is not None and i >= reply.cut_after:
                return self._cut(request, rec, resp)
            pause = reply.event_delay if event.delay is None else event.delay
            if pause:
                await asyncio.sleep(pause)
            data = event.encode()
            if i == len(events) - 1 and reply.cut_after is None and not reply.hold_open:
                # Mark it before the last bytes leave: a client may act on them at once.
                rec.completed = True
            rec.reply_body += data
            rec.events_sent += 1
            await resp.write(data)
        if reply.cut_after is not None and reply.cut_after <= len(events):
            return self._cut(request, rec, resp)
        if reply.hold_open:
            await asyncio.sleep(reply.hold_open)
        rec.completed = True
        await resp.write_eof()
        return resp

    async def _raw(
        self,
        request: web.Request,
        rec: RecordedRequest,
        reply: Reply,
        headers: list[tuple[str, str]],
    ) -> web.StreamResponse:
        resp = web.StreamResponse(status=reply.status)
        for k, v in headers:
            resp.headers.add(k, v)
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i, chunk in enumerate(reply.chunks or ()):
            if reply.cut_after is not None and i >= reply.cut_after:
                return self._cut(request, rec, resp)
            if reply.event_delay and i:
                await asyncio.sleep(reply.event_delay)
            rec.events_sent += 1
            await resp.write(chunk)
        if reply.hold_open:
            await asyncio.sleep(reply.hold_open)
        rec.completed = True
        await resp.write_eof()
        return resp

    def _cut(
        self, request: web.Request, rec: RecordedRequest, resp: web.StreamResponse
    ) -> web.StreamResponse:
        rec.cut = True
        transport = request.transport
        if transport is not None:
            transport.abort()
        return resp


@functools.lru_cache(maxsize=8)
def gzip_bomb(decoded_mb: int, byte: bytes = b"\0", member_mb: int = 64) -> bytes:
    """Gzip that inflates to ``decoded_mb`` MiB of ``byte`` (about 1,000:1).

    Members of ``member_mb`` MiB back to back (RFC 1952 allows several), so that a 1 GiB
    bomb is made by compressing 64 MiB once.
    """
    size = min(decoded_mb, member_mb)
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = byte * (1 << 20)
    member = b"".join([packer.compress(block) for _ in range(size)] + [packer.flush()])
    return member * (decoded_mb // size)


class SentRequests:
    """An event hook for an SDK's ``http_client``: what the client really put on the wire.

    ``anthropic.DefaultHttpxClient(event_hooks={"request": [sent]})`` (the SDKs use httpx2,
    so a plain ``httpx.Client`` is refused).
    """

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.headers: list[list[tuple[str, str]]] = []
        self.urls: list[str] = []

    def __call__(self, request: Any) -> None:
        self.bodies.append(request.read())
        self.headers.append(list(request.headers.items()))
        self.urls.append(str(request.url))


__all__ = [
    "ANTHROPIC_USAGE",
    "DEFAULT_TEXT",
    "OPENAI_USAGE",
    "RESPONSES_USAGE",
    "SSE",
    "MockUpstream",
    "RecordedRequest",
    "Reply",
    "SentRequests",
    "anthropic_error",
    "anthropic_events",
    "anthropic_headers",
    "anthropic_message",
    "chat_completion",
    "chat_events",
    "default_reply",
    "gzip_bomb",
    "openai_error",
    "openai_headers",
    "responses_events",
    "responses_object",
    "text_block",
    "thinking_block",
    "tool_use_block",
]
