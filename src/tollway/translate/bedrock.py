"""Bedrock client -> Anthropic upstream: Claude Code's Bedrock mode served by any Claude.

The two bodies differ only in their envelope: Bedrock's has ``anthropic_version:
"bedrock-2023-05-31"`` and no ``model``/``stream`` (the path names them); its betas are a
body ``anthropic_beta`` list, kept for the Anthropic-dialect provider to place (the
Anthropic API reads them from the header, a Bedrock upstream from the body). Answers:
a JSON message is the same on both; a stream becomes Bedrock's event stream, one frame
per Anthropic event (``ping`` has no Bedrock form), the last carrying
``amazon-bedrock-invocationMetrics``; CountTokens answers ``{"inputTokens": n}``; errors
are Bedrock's ``{"message": ...}``.
"""

from __future__ import annotations

import base64

import msgspec

from tollway import translate
from tollway.errors import InvalidRequest
from tollway.providers.base import ANTHROPIC, BEDROCK
from tollway.providers.betas import BodyEdit
from tollway.providers.eventstream import CONTENT_TYPE, chunk_frame, exception_frame
from tollway.sse import SSEEvent
from tollway.surfaces.bedrock import exception_name

_json = msgspec.json.Encoder()


class _Usage(msgspec.Struct):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None


class _Message(msgspec.Struct):
    usage: _Usage = msgspec.field(default_factory=_Usage)


class _Event(msgspec.Struct):
    type: str = ""
    message: _Message | None = None
    usage: _Usage | None = None


class _ErrorBody(msgspec.Struct):
    type: str = ""
    message: str = ""


class _Error(msgspec.Struct):
    error: _ErrorBody | None = None
    message: str = ""


class _Count(msgspec.Struct):
    input_tokens: int = 0


_event = msgspec.json.Decoder(_Event)
_error = msgspec.json.Decoder(_Error)
_count = msgspec.json.Decoder(_Count)
_raw_doc = msgspec.json.Decoder(dict[str, msgspec.Raw])


def _message_of(body: bytes) -> tuple[str, str]:
    try:
        parsed = _error.decode(body)
    except msgspec.DecodeError:
        return "", body[:500].decode("utf-8", "replace")
    if parsed.error is not None:
        return parsed.error.type, parsed.error.message
    return "", parsed.message


def _counted_body(edit: BodyEdit) -> bytes | None:
    """The InvokeModel body inside a CountTokens request (``input.invokeModel.body``)."""
    if "messages" in edit.doc or "input" not in edit.doc:
        return None
    wrapped = edit.get("input")
    invoke = wrapped.get("invokeModel") if isinstance(wrapped, dict) else None
    encoded = invoke.get("body") if isinstance(invoke, dict) else None
    if not isinstance(encoded, str):
        raise InvalidRequest("CountTokens takes input.invokeModel.body (base64 JSON)")
    try:
        return base64.b64decode(encoded, validate=True)
    except ValueError:
        raise InvalidRequest("input.invokeModel.body is not base64") from None


class EventFrames:
    """Anthropic SSE events in, Bedrock event stream frames out."""

    def __init__(self) -> None:
        self._input = 0
        self._output = 0
        self._started: float | None = None

    def feed(self, event: SSEEvent) -> list[bytes]:
        if event.event == "ping":
            return []
        if event.event == "error":
            kind, message = _message_of(event.data)
            status = (
                529 if kind == "overloaded_error" else 429 if kind == "rate_limit_error" else 500
            )
            return [exception_frame(exception_name(status), message)]
        try:
            parsed = _event.decode(event.data)
        except msgspec.DecodeError:
            return [chunk_frame(event.data)]
        if parsed.type == "message_start" and parsed.message is not None:
            usage = parsed.message.usage
            self._input = usage.input_tokens
        elif parsed.type == "message_delta" and parsed.usage is not None:
            self._output = parsed.usage.output_tokens
        elif parsed.type == "message_stop":
            doc = _raw_doc.decode(event.data)
            metrics = {"inputTokenCount": self._input, "outputTokenCount": self._output}
            doc["amazon-bedrock-invocationMetrics"] = msgspec.Raw(_json.encode(metrics))
            return [chunk_frame(_json.encode(doc))]
        return [chunk_frame(event.data)]

    def close(self, complete: bool) -> list[bytes]:
        return []


class BedrockToAnthropic:
    client = BEDROCK
    upstream = ANTHROPIC

    def __init__(self) -> None:
        self.dropped: list[str] = []
        self._kind = "generate"

    def request(self, body: bytes, model: str, stream: bool) -> bytes:
        edit = BodyEdit.parse(body)
        inner = _counted_body(edit)
        if inner is not None:  # CountTokens: the InvokeModel body it wraps is counted
            self._kind = "count_tokens"
            edit = BodyEdit.parse(inner)
        edit.remove("anthropic_version")
        edit.set("model", model)
        if stream and self._kind == "generate":
            edit.set("stream", True)
        else:
            edit.remove("stream")
        if self._kind == "count_tokens":
            edit.remove("max_tokens")  # Anthropic's count_tokens does not take it
        return edit.encode()

    def upstream_path(self, kind: str, model: str, stream: bool) -> str:
        self._kind = kind
        return "/v1/messages/count_tokens" if kind == "count_tokens" else "/v1/messages"

    def response(self, body: bytes) -> bytes:
        if self._kind == "count_tokens":
            try:
                return _json.encode({"inputTokens": _count.decode(body).input_tokens})
            except msgspec.DecodeError:
                return body
        return body

    def error(self, status: int, body: bytes) -> bytes:
        _, message = _message_of(body)
        return _json.encode({"message": message or f"upstream error {status}"})

    def content_type(self, stream: bool) -> bytes:
        return CONTENT_TYPE if stream else b"application/json"

    def stream(self) -> EventFrames:
        return EventFrames()


translate.register(BEDROCK, ANTHROPIC, BedrockToAnthropic)
