"""The Anthropic Messages surface: ``/v1/messages``, ``count_tokens``, ``/v1/models``."""

from __future__ import annotations

import msgspec

from tollway.errors import GatewayError
from tollway.providers.base import ANTHROPIC
from tollway.sse import SSEEvent

_json = msgspec.json.Encoder()


class AnthropicSurface:
    name = "anthropic"
    dialect = ANTHROPIC

    def error_body(self, error: GatewayError) -> bytes:
        return _json.encode(
            {"type": "error", "error": {"type": error.anthropic_type, "message": error.message}}
        )

    def stream_error(self, error: GatewayError) -> bytes:
        """The SSE event that ends a stream which broke after it started."""
        return b"event: error\ndata: " + self.error_body(error) + b"\n\n"

    @staticmethod
    def is_terminal(event: SSEEvent) -> bool:
        return event.event == "message_stop"

    def models_body(self, models: list[str]) -> bytes:
        data = [_model(m) for m in models]
        return _json.encode(
            {"data": data, "has_more": False,
             "first_id": models[0] if models else None,
             "last_id": models[-1] if models else None}
        )  # fmt: skip

    def model_body(self, model: str) -> bytes:
        return _json.encode(_model(model))


def _model(model: str) -> dict[str, str]:
    return {"type": "model", "id": model, "display_name": model,
            "created_at": "2025-01-01T00:00:00Z"}  # fmt: skip
