"""A translator for any two dialects: the client's codec and the upstream's, through the
pivot. Registered for every ordered pair of different dialects at import."""

from __future__ import annotations

import functools
import itertools
import logging
from typing import Protocol

from tollway.errors import InvalidRequest, UpstreamError
from tollway.providers.base import ANTHROPIC, GEMINI, OPENAI_CHAT, OPENAI_RESPONSES
from tollway.sse import SSEEvent
from tollway.translate.anthropic import AnthropicCodec
from tollway.translate.chat_replies import ChatCodec
from tollway.translate.common import JSON, Context, decode, decode_or_none, encode, unread_error
from tollway.translate.gemini_replies import GeminiCodec
from tollway.translate.responses_replies import ResponsesCodec

log = logging.getLogger("tollway.translate")
# What a codec raises on a document of the wrong shape: it reads well-typed documents.
_SHAPE_ERRORS = (TypeError, ValueError, AttributeError, KeyError, IndexError)
_API_NAMES = {ANTHROPIC: "Anthropic Messages", OPENAI_CHAT: "OpenAI Chat Completions",
              OPENAI_RESPONSES: "OpenAI Responses", GEMINI: "Gemini generateContent"}  # fmt: skip


def _api(dialect: str) -> str:
    return _API_NAMES.get(dialect, dialect)


class _Up(Protocol):
    def feed(self, event: SSEEvent) -> list[JSON]: ...
    def close(self, complete: bool) -> list[JSON]: ...


class _Down(Protocol):
    def feed(self, event: JSON) -> list[bytes]: ...
    def close(self, complete: bool) -> list[bytes]: ...


class Codec(Protocol):
    dialect: str

    def to_pivot(self, doc: JSON, ctx: Context) -> JSON: ...
    def from_pivot(self, doc: JSON, ctx: Context) -> JSON: ...
    def response_to_pivot(self, doc: JSON, ctx: Context) -> JSON: ...
    def response_from_pivot(self, msg: JSON, ctx: Context) -> JSON: ...
    def stream_to_pivot(self, ctx: Context) -> _Up: ...
    def stream_from_pivot(self, ctx: Context) -> _Down: ...
    def error_to_pivot(self, status: int, body: bytes) -> tuple[str, str]: ...
    def error_body(self, status: int, kind: str, message: str) -> bytes: ...
    def stream_error(self, kind: str, message: str) -> bytes: ...
    def path(self, kind: str, model: str, stream: bool) -> str: ...
    def content_type(self, stream: bool) -> bytes: ...

    counts: bool

    def count_to_pivot(self, doc: JSON, ctx: Context) -> JSON: ...
    def count_from_pivot(self, doc: JSON, ctx: Context) -> JSON: ...
    def count_response_to_pivot(self, doc: JSON) -> int: ...
    def count_response_from_pivot(self, tokens: int) -> JSON: ...


CODECS: dict[str, Codec] = {
    c.dialect: c for c in (AnthropicCodec(), ChatCodec(), ResponsesCodec(), GeminiCodec())
}


class _Stream:
    def __init__(self, up: _Up, down: _Down, client: Codec) -> None:
        self._up, self._down, self._client = up, down, client

    def feed(self, event: SSEEvent) -> list[bytes]:
        try:
            return [piece for e in self._up.feed(event) for piece in self._down.feed(e)]
        except _SHAPE_ERRORS:  # the relay ends the stream with the client's error event
            log.info("stream event not translatable: %r", event.data[:200], exc_info=True)
            raise UpstreamError(
                "the provider sent a stream event that is not valid for its API, so the "
                "stream could not be translated further; retry"
            ) from None

    def close(self, complete: bool) -> list[bytes]:
        try:
            out = [piece for e in self._up.close(complete) for piece in self._down.feed(e)]
        except _SHAPE_ERRORS:  # what was left of the stream did not translate: end it
            log.info("end of stream not translatable", exc_info=True)
            out = []
        return out + self._down.close(complete)


class PivotTranslator:
    """``client`` <-> ``upstream`` through the Anthropic-shaped pivot; one per request."""

    def __init__(self, client: str, upstream: str) -> None:
        self.client, self.upstream = client, upstream
        self._c, self._u = CODECS[client], CODECS[upstream]
        self.dropped: list[str] = []
        self._ctx = Context(model="", dropped=self.dropped)
        self._kind = "generate"

    def request(self, body: bytes, model: str, stream: bool) -> bytes:
        self._ctx.model, self._ctx.stream = model, stream
        doc = decode(body)
        self._ctx.requested = str(doc.get("model") or model)
        try:
            if self._kind == "count_tokens":
                return encode(self._count_request(doc))
            return encode(self._u.from_pivot(self._c.to_pivot(doc, self._ctx), self._ctx))
        except _SHAPE_ERRORS as exc:
            # The codecs read a body of the client API's shape; a field of another type
            # (an object where a string goes) is the client's error, answered in its dialect.
            log.info("%s -> %s: request not translatable", self.client, self.upstream,
                     exc_info=True)  # fmt: skip
            raise InvalidRequest(
                f"the request body does not have the shape the {_api(self.client)} API gives "
                f"it, so it cannot be translated for a model that speaks {_api(self.upstream)} "
                f"({type(exc).__name__}: {exc}); check each field's type against the API "
                "reference"
            ) from None

    def upstream_path(self, kind: str, model: str, stream: bool) -> str:
        self._kind = kind
        if kind == "count_tokens" and not self._u.counts:
            raise InvalidRequest(
                f"token counting is not available: the model's provider speaks "
                f"{self.upstream}, which has no token-count endpoint"
            )
        return self._u.path(kind, model, stream)

    def _count_request(self, doc: JSON) -> JSON:
        return self._u.count_from_pivot(self._c.count_to_pivot(doc, self._ctx), self._ctx)

    def response(self, body: bytes) -> bytes:
        doc = decode_or_none(body)
        if not isinstance(doc, dict):  # a 200 whose body is no answer: a 502, not a 200
            log.info("%s answer is not a JSON object: %r", self.upstream, body[:200])
            raise UpstreamError(
                f"the provider answered 200 with a body that is not a valid {_api(self.upstream)} "
                f"response (not a JSON object), so it could not be translated for this "
                f"{_api(self.client)} client; retry"
            )
        try:
            if self._kind == "count_tokens":
                tokens = self._u.count_response_to_pivot(doc)
                return encode(self._c.count_response_from_pivot(tokens))
            message = self._u.response_to_pivot(doc, self._ctx)
            return encode(self._c.response_from_pivot(message, self._ctx))
        except _SHAPE_ERRORS:  # answered as a 502 in the client's dialect; usage was read
            log.info("%s answer not translatable: %r", self.upstream, body[:200], exc_info=True)
            raise UpstreamError(
                f"the provider answered with a body that is not a valid {_api(self.upstream)} "
                f"response, so it could not be translated for this {_api(self.client)} client; "
                "retry"
            ) from None

    def error(self, status: int, body: bytes) -> bytes:
        try:
            kind, message = self._u.error_to_pivot(status, body)
        except _SHAPE_ERRORS:  # an error body of the wrong shape: its status still says it
            kind, message = unread_error(status, body)
        return self._c.error_body(status, kind, message)

    def content_type(self, stream: bool) -> bytes:
        return self._c.content_type(stream)

    def stream(self) -> _Stream:
        up = self._u.stream_to_pivot(self._ctx)
        return _Stream(up, self._c.stream_from_pivot(self._ctx), self._c)


def register_all() -> None:
    from tollway.translate import register

    for client, upstream in itertools.permutations(CODECS, 2):
        register(client, upstream, functools.partial(PivotTranslator, client, upstream))
