"""The Gemini surface: ``/v1beta/models/{model}:generateContent`` and its siblings.

Gemini CLI (google-genai) names the model and the method in the path; the key comes in
``x-goog-api-key``. Errors use Google's shape (``{"error": {"code", "message", "status"}}``)
and a broken stream ends with a data event carrying that ``error`` (the SDK raises on it).
"""

from __future__ import annotations

import msgspec

from tollway.errors import GatewayError
from tollway.providers.base import GEMINI
from tollway.sse import SSEEvent
from tollway.surfaces.base import Route

_json = msgspec.json.Encoder()
# HTTP status -> the google.rpc code name the SDKs and Gemini CLI read.
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 402: "FAILED_PRECONDITION",
           403: "PERMISSION_DENIED", 404: "NOT_FOUND", 408: "DEADLINE_EXCEEDED",
           409: "ABORTED", 413: "INVALID_ARGUMENT", 422: "INVALID_ARGUMENT",
           429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 500: "INTERNAL", 501: "UNIMPLEMENTED",
           502: "UNAVAILABLE", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
           529: "UNAVAILABLE"}  # fmt: skip
_METHODS = {
    "generateContent": ("generate", False),
    "streamGenerateContent": ("generate", True),
    "countTokens": ("count_tokens", False),
}
PREFIXES = ("/v1beta/models", "/gemini/v1beta/models", "/v1/models", "/gemini/v1/models")


def status_name(status: int) -> str:
    return _STATUS.get(status, "INTERNAL" if status >= 500 else "INVALID_ARGUMENT")


def path_for(kind: str, model: str, stream: bool) -> str:
    """The upstream path (and query) for a call to ``model``."""
    if kind == "count_tokens":
        return f"/v1beta/models/{model}:countTokens"
    if stream:
        return f"/v1beta/models/{model}:streamGenerateContent?alt=sse"
    return f"/v1beta/models/{model}:generateContent"


class GeminiSurface:
    name = "gemini"
    dialect = GEMINI

    def error_body(self, error: GatewayError) -> bytes:
        return _json.encode(
            {"error": {"code": error.status, "message": error.message,
                       "status": status_name(error.status)}}
        )  # fmt: skip

    def stream_error(self, error: GatewayError) -> bytes:
        return b"data: " + self.error_body(error) + b"\n\n"

    @staticmethod
    def is_terminal(event: SSEEvent) -> bool:
        """Gemini streams have no closing event: the chunk with a finishReason is the last."""
        return b'"finishReason"' in event.data

    def models_body(self, models: list[str]) -> bytes:
        return _json.encode({"models": [model_entry(m) for m in models]})

    def model_body(self, model: str) -> bytes:
        return _json.encode(model_entry(model))


def model_entry(model: str) -> dict[str, object]:
    return {
        "name": f"models/{model}", "baseModelId": model, "version": "001",
        "displayName": model, "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
        "supportedGenerationMethods": ["generateContent", "countTokens"],
    }  # fmt: skip


GEMINI_SURFACE = GeminiSurface()


def match(path: str) -> Route | None:
    """A Gemini path -> its Route: ``models/{model}:{method}``, the list, or one model."""
    for prefix in PREFIXES:
        if path == prefix and "beta" in prefix:
            return Route(GEMINI_SURFACE, "models", path)
        if path.startswith(prefix + "/"):
            rest = path[len(prefix) + 1 :]
            break
    else:
        return None
    model, colon, method = rest.rpartition(":")
    if not colon:
        # /v1/models/{id} without a method is the Anthropic and OpenAI model lookup.
        ok = rest and "beta" in prefix
        return Route(GEMINI_SURFACE, "model", path, model=rest) if ok else None
    found = _METHODS.get(method)
    if found is None or not model:
        return None
    kind, stream = found
    canonical = "/v1beta/models/{model}:" + method
    return Route(GEMINI_SURFACE, kind, canonical, model=model, stream=stream)
