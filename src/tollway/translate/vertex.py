"""Vertex client -> Anthropic upstream: Claude Code's Vertex mode served by any Claude.

Vertex's Claude body is the Anthropic body with ``anthropic_version:
"vertex-2023-10-16"`` and no ``model`` (the path names it); answers, errors and SSE are
the Anthropic API's, byte for byte, so only the request changes.
"""

from __future__ import annotations

from tollway import translate
from tollway.providers.base import ANTHROPIC, VERTEX
from tollway.providers.betas import BodyEdit
from tollway.providers.cloud_models import from_vertex
from tollway.sse import SSEEvent


class SSEPassthrough:
    def feed(self, event: SSEEvent) -> list[bytes]:
        head = b"event: " + event.event.encode() + b"\n" if event.event is not None else b""
        return [head + b"data: " + event.data + b"\n\n"]

    def close(self, complete: bool) -> list[bytes]:
        return []


class VertexToAnthropic:
    client = VERTEX
    upstream = ANTHROPIC

    def __init__(self) -> None:
        self.dropped: list[str] = []
        self._kind = "generate"

    def request(self, body: bytes, model: str, stream: bool) -> bytes:
        edit = BodyEdit.parse(body)
        edit.remove("anthropic_version")
        edit.set("model", from_vertex(model))
        if stream and self._kind == "generate":
            edit.set("stream", True)
        else:
            edit.remove("stream")
        return edit.encode()

    def upstream_path(self, kind: str, model: str, stream: bool) -> str:
        self._kind = kind
        return "/v1/messages/count_tokens" if kind == "count_tokens" else "/v1/messages"

    def response(self, body: bytes) -> bytes:
        return body

    def error(self, status: int, body: bytes) -> bytes:
        return body

    def content_type(self, stream: bool) -> bytes:
        return b"text/event-stream" if stream else b"application/json"

    def stream(self) -> SSEPassthrough:
        return SSEPassthrough()


translate.register(VERTEX, ANTHROPIC, VertexToAnthropic)
