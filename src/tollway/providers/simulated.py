"""The built-in ``simulated`` provider: deterministic replies in every dialect, no network.

For demos and tests. Faults are injected per request with the header
``x-tollway-simulate: status=429; retry-after=3; cut-after=2; latency-ms=50`` (keys are
optional), or for every request through the provider's ``simulated`` settings.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import msgspec

from tollway.config import SimulatedSettings
from tollway.providers.base import (
    ANTHROPIC,
    OPENAI_CHAT,
    OPENAI_RESPONSES,
    KeyChoice,
    UpstreamRequest,
)

FAULT_HEADER = "x-tollway-simulate"
_MAX_LATENCY_MS = 600_000.0
REPLY = "Hello from the Tollway simulated provider. No upstream model was called."
_json = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Fault:
    status: int = 200
    retry_after: str | None = None
    cut_after: int | None = None  # events delivered before the stream is cut
    latency_ms: float | None = None


def parse_fault(value: str | None) -> Fault:
    if not value:
        return Fault()
    fields: dict[str, str] = {}
    for part in value.split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            fields[k.strip().lower()] = v.strip()
    try:
        fault = Fault(
            status=int(fields.get("status", 200)),
            retry_after=fields.get("retry-after"),
            cut_after=int(fields["cut-after"]) if "cut-after" in fields else None,
            latency_ms=float(fields["latency-ms"]) if "latency-ms" in fields else None,
        )
    except ValueError:
        return Fault()
    if fault.latency_ms is not None and not 0 <= fault.latency_ms <= _MAX_LATENCY_MS:
        return replace(fault, latency_ms=None)  # inf or NaN would sleep for ever
    return fault


class _Response:
    def __init__(
        self, status: int, headers: list[tuple[bytes, bytes]], parts: list[bytes],
        delay_s: float, cut: bool,
    ) -> None:  # fmt: skip
        self.status = status
        self.headers = headers
        self._parts = parts
        self._delay = delay_s
        self._cut = cut

    async def chunks(self) -> AsyncIterator[bytes]:
        from tollway.errors import UpstreamError

        for part in self._parts:
            if self._delay:
                await asyncio.sleep(self._delay)
            yield part
        if self._cut:
            raise UpstreamError("the simulated upstream cut the stream (fault injection)")

    async def read(self) -> bytes:
        return b"".join(self._parts)

    def close(self) -> None:
        return None


def _sse(event: str | None, data: object) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + _json.encode(data) + b"\n\n"


class SimulatedProvider:
    """Answers locally; ``usage`` is derived from the request so tests can predict it.

    Priced at zero (unless ``price_as`` names a provider) and recorded as ``simulated``.
    """

    simulated = True

    def __init__(self, name: str, settings: SimulatedSettings) -> None:
        self.name = name
        self.settings = settings
        self.dialects = frozenset({ANTHROPIC, OPENAI_CHAT, OPENAI_RESPONSES})
        self.keys = [KeyChoice(name="simulated", secret="")]

    def _words(self) -> list[str]:
        words = REPLY.split(" ")
        n = self.settings.output_tokens
        return [(words[i % len(words)] + " ") for i in range(n)]

    async def send(self, request: UpstreamRequest, key: KeyChoice) -> _Response:
        fault = parse_fault(dict(request.headers).get(FAULT_HEADER))
        latency = fault.latency_ms if fault.latency_ms is not None else self.settings.latency_ms
        if latency:
            await asyncio.sleep(latency / 1000)
        rid = "req_sim_" + hashlib.sha256(request.body).hexdigest()[:20]
        headers = [(b"request-id", rid.encode())]
        if fault.status != 200:
            return self._error(request, fault, headers)
        input_tokens = max(1, math.ceil(len(request.body) / 4))
        if request.path.endswith("/count_tokens"):
            headers.append((b"content-type", b"application/json"))
            return _Response(200, headers, [_json.encode({"input_tokens": input_tokens})], 0, False)
        words = self._words()
        if request.dialect == ANTHROPIC:
            parts = self._anthropic(request, rid, input_tokens, words)
        elif request.dialect == OPENAI_CHAT:
            parts = self._chat(request, rid, input_tokens, words)
        else:
            parts = self._responses(request, rid, input_tokens, words)
        ctype = b"text/event-stream; charset=utf-8" if request.stream else b"application/json"
        headers.append((b"content-type", ctype))
        cut = request.stream and fault.cut_after is not None
        if cut and fault.cut_after is not None:
            parts = parts[: fault.cut_after]
        delay = self.settings.chunk_delay_ms / 1000 if request.stream else 0.0
        return _Response(200, headers, parts, delay, cut)

    def _error(
        self, request: UpstreamRequest, fault: Fault, headers: list[tuple[bytes, bytes]]
    ) -> _Response:
        message = f"simulated upstream error {fault.status} (fault injection)"
        if request.dialect == ANTHROPIC:
            kind = {429: "rate_limit_error", 529: "overloaded_error", 401: "authentication_error"}
            body = {"type": "error", "error": {"type": kind.get(fault.status, "api_error"),
                                               "message": message}}  # fmt: skip
        else:
            body = {"error": {"message": message, "type": "server_error", "code": None}}
        headers = [*headers, (b"content-type", b"application/json")]
        if fault.retry_after is not None:
            headers.append((b"retry-after", fault.retry_after.encode()))
        return _Response(fault.status, headers, [_json.encode(body)], 0.0, False)

    def _anthropic(
        self, request: UpstreamRequest, rid: str, input_tokens: int, words: list[str]
    ) -> list[bytes]:
        msg_id = "msg_sim_" + rid[-20:]
        usage = {"input_tokens": input_tokens, "cache_creation_input_tokens": 0,
                 "cache_read_input_tokens": 0, "output_tokens": len(words)}  # fmt: skip
        if not request.stream:
            return [_json.encode({
                "id": msg_id, "type": "message", "role": "assistant", "model": request.model,
                "content": [{"type": "text", "text": "".join(words).rstrip()}],
                "stop_reason": "end_turn", "stop_sequence": None, "usage": usage,
            })]  # fmt: skip
        start: dict[str, object] = {
            "id": msg_id, "type": "message", "role": "assistant", "model": request.model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {**usage, "output_tokens": 1},
        }  # fmt: skip
        parts = [
            _sse("message_start", {"type": "message_start", "message": start}),
            _sse("content_block_start", {"type": "content_block_start", "index": 0,
                                         "content_block": {"type": "text", "text": ""}}),
        ]  # fmt: skip
        for w in words:
            parts.append(_sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                              "delta": {"type": "text_delta", "text": w}}))  # fmt: skip
        parts += [
            _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
            _sse("message_delta", {"type": "message_delta",
                                   "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                   "usage": {"output_tokens": len(words)}}),
            _sse("message_stop", {"type": "message_stop"}),
        ]  # fmt: skip
        return parts

    def _chat(
        self, request: UpstreamRequest, rid: str, input_tokens: int, words: list[str]
    ) -> list[bytes]:
        cid = "chatcmpl-sim" + rid[-20:]
        usage = {"prompt_tokens": input_tokens, "completion_tokens": len(words),
                 "total_tokens": input_tokens + len(words)}  # fmt: skip
        base = {"id": cid, "object": "chat.completion", "created": 0, "model": request.model}
        if not request.stream:
            return [_json.encode({**base, "choices": [{
                "index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": "".join(words).rstrip()}}],
                "usage": usage})]  # fmt: skip
        chunk = {**base, "object": "chat.completion.chunk"}
        parts = [_sse(None, {**chunk, "choices": [{"index": 0, "finish_reason": None,
                 "delta": {"role": "assistant", "content": ""}}]})]  # fmt: skip
        for w in words:
            parts.append(_sse(None, {**chunk, "choices": [{"index": 0, "finish_reason": None,
                                                           "delta": {"content": w}}]}))  # fmt: skip
        parts.append(_sse(None, {**chunk, "choices": [{"index": 0, "finish_reason": "stop",
                                                       "delta": {}}]}))  # fmt: skip
        wants_usage = b'"include_usage":true' in request.body.replace(b" ", b"")
        if wants_usage:
            parts.append(_sse(None, {**chunk, "choices": [], "usage": usage}))
        parts.append(b"data: [DONE]\n\n")
        return parts

    def _responses(
        self, request: UpstreamRequest, rid: str, input_tokens: int, words: list[str]
    ) -> list[bytes]:
        text = "".join(words).rstrip()
        usage = {"input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": len(words), "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": input_tokens + len(words)}  # fmt: skip
        item = {"id": "msg_sim" + rid[-16:], "type": "message", "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}]}  # fmt: skip
        done = {"id": "resp_sim" + rid[-16:], "object": "response", "status": "completed",
                "model": request.model, "output": [item], "usage": usage}  # fmt: skip
        if not request.stream:
            return [_json.encode(done)]
        created = {**done, "status": "in_progress", "output": [], "usage": None}
        parts = [_sse("response.created", {"type": "response.created", "response": created})]
        for w in words:
            parts.append(_sse("response.output_text.delta", {
                "type": "response.output_text.delta", "item_id": item["id"], "output_index": 0,
                "content_index": 0, "delta": w}))  # fmt: skip
        parts.append(
            _sse(
                "response.output_item.done",
                {"type": "response.output_item.done", "output_index": 0, "item": item},
            )
        )
        parts.append(_sse("response.completed", {"type": "response.completed", "response": done}))
        return parts

    async def close(self) -> None:
        return None
