"""The OpenAI surfaces: Chat Completions, Responses and ``/v1/models``."""

from __future__ import annotations

import msgspec

from tollway.errors import GatewayError
from tollway.providers.base import OPENAI_CHAT, OPENAI_RESPONSES

_json = msgspec.json.Encoder()


class _OpenAIErrors:
    def error_body(self, error: GatewayError) -> bytes:
        return _json.encode(
            {"error": {"message": error.message, "type": error.openai_type,
                       "param": None, "code": error.openai_code}}
        )  # fmt: skip

    def models_body(self, models: list[str]) -> bytes:
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "tollway"} for m in models]
        return _json.encode({"object": "list", "data": data})


class OpenAIChatSurface(_OpenAIErrors):
    name = "openai_chat"
    dialect = OPENAI_CHAT


class OpenAIResponsesSurface(_OpenAIErrors):
    name = "openai_responses"
    dialect = OPENAI_RESPONSES
