"""The Bedrock surface: Claude Code with ``CLAUDE_CODE_USE_BEDROCK=1`` and
``ANTHROPIC_BEDROCK_BASE_URL`` pointed at the gateway.

``POST /model/{model id}/invoke`` (JSON) and ``/invoke-with-response-stream`` (the binary
event stream), ``/count-tokens``; also under ``/bedrock``. The model and streaming come
from the path: a Bedrock id (``us.anthropic.claude-sonnet-4-5-20250929-v1:0``) names the
Anthropic model it serves (``claude-sonnet-4-5-20250929``), which is then routed like any
other request. The virtual key arrives as ``AWS_BEARER_TOKEN_BEDROCK`` (``Authorization:
Bearer``) or, with ``CLAUDE_CODE_SKIP_BEDROCK_AUTH=1``, in ``ANTHROPIC_CUSTOM_HEADERS``.
Errors are Bedrock's JSON (``{"message": ...}``); a stream that breaks ends with an
exception frame. The body translation is in ``translate/bedrock.py``.
"""

from __future__ import annotations

import re

import msgspec

from tollway.errors import GatewayError
from tollway.providers.base import BEDROCK
from tollway.providers.cloud_models import from_bedrock
from tollway.providers.eventstream import exception_frame
from tollway.sse import SSEEvent
from tollway.surfaces.base import Route

_json = msgspec.json.Encoder()
_PATH = re.compile(r"^(?:/bedrock)?/model/(.+)/(invoke|invoke-with-response-stream|count-tokens)$")
# The exception a Bedrock client expects for each status (its SDK maps these names).
_EXCEPTIONS = {
    400: "validationException", 401: "accessDeniedException", 402: "accessDeniedException",
    403: "accessDeniedException", 404: "resourceNotFoundException",
    408: "modelTimeoutException", 429: "throttlingException",
    503: "serviceUnavailableException", 504: "modelTimeoutException",
    529: "serviceUnavailableException",
}  # fmt: skip


def exception_name(status: int) -> str:
    return _EXCEPTIONS.get(status, "internalServerException")


class BedrockSurface:
    name = "bedrock"
    dialect = BEDROCK

    def error_body(self, error: GatewayError) -> bytes:
        return _json.encode({"message": error.message})

    def stream_error(self, error: GatewayError) -> bytes:
        return exception_frame(exception_name(error.status), error.message)

    @staticmethod
    def is_terminal(event: SSEEvent) -> bool:
        return event.event == "message_stop"


BEDROCK_SURFACE = BedrockSurface()


def match(path: str) -> Route | None:
    """``/model/{id}/invoke`` and friends -> their Route; None for any other path."""
    m = _PATH.match(path)
    if m is None:
        return None
    model, op = from_bedrock(m[1]), m[2]
    if op == "count-tokens":
        return Route(BEDROCK_SURFACE, "count_tokens", "/model/{model}/count-tokens", model=model)
    stream = op == "invoke-with-response-stream"
    return Route(BEDROCK_SURFACE, "generate", f"/model/{{model}}/{op}", model=model,
                 stream=stream)  # fmt: skip
