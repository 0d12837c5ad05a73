"""The OpenAI surfaces: Chat Completions, Responses and ``/v1/models``."""

from __future__ import annotations

import msgspec

from tollway.errors import GatewayError
from tollway.providers.base import OPENAI_CHAT, OPENAI_RESPONSES
from tollway.sse import SSEEvent

# Events after which a Responses stream has nothing more to say.
_RESPONSES_DONE = frozenset({"response.completed", "response.incomplete", "response.failed"})

_json = msgspec.json.Encoder()


class _OpenAIErrors:
    def error_body(self, error: GatewayError) -> bytes:
        return _json.encode(
            {"error": {"message": error.message, "type": error.openai_type,
                       "param": None, "code": error.openai_code}}
        )  # fmt: skip

    def models_body(self, models: list[str]) -> bytes:
        return _json.encode({"object": "list", "data": [_model(m) for m in models]})

    def model_body(self, model: str) -> bytes:
        return _json.encode(_model(model))


def _model(model: str) -> dict[str, object]:
    return {"id": model, "object": "model", "created": 0, "owned_by": "tollway"}


class OpenAIChatSurface(_OpenAIErrors):
    name = "openai_chat"
    dialect = OPENAI_CHAT

    def stream_error(self, error: GatewayError) -> bytes:
        """A chunk carrying ``error`` (the openai SDK raises on it), and no ``[DONE]``."""
        return b"data: " + self.error_body(error) + b"\n\n"

    @staticmethod
    def is_terminal(event: SSEEvent) -> bool:
        return event.data == b"[DONE]"


class OpenAIResponsesSurface(_OpenAIErrors):
    name = "openai_responses"
    dialect = OPENAI_RESPONSES

    def stream_error(self, error: GatewayError) -> bytes:
        """The Responses ``error`` event; with no ``response.completed`` Codex retries.

        It also carries an ``error`` object, which is what the openai SDK raises on."""
        event = {"type": "error", "code": error.openai_code, "message": error.message,
                 "param": None, "sequence_number": 0,
                 "error": {"type": error.openai_type, "code": error.openai_code,
                           "message": error.message}}  # fmt: skip
        return b"event: error\ndata: " + _json.encode(event) + b"\n\n"

    @staticmethod
    def is_terminal(event: SSEEvent) -> bool:
        if event.event is not None:
            return event.event in _RESPONSES_DONE
        return any(b'"type":"' + t.encode() + b'"' in event.data[:64] for t in _RESPONSES_DONE)
