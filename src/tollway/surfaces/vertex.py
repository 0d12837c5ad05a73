"""The Vertex surface: Claude Code with ``CLAUDE_CODE_USE_VERTEX=1`` and
``ANTHROPIC_VERTEX_BASE_URL`` pointed at the gateway (``http://host:port/v1``).

``POST /v1/projects/{project}/locations/{region}/publishers/anthropic/models/{model}:
rawPredict`` (JSON), ``:streamRawPredict`` (SSE) and ``models/count-tokens:rawPredict``;
also under ``/vertex``. The project and region in the path are the client's and are not
used: the gateway routes the model (``claude-sonnet-4-5@20250929`` is
``claude-sonnet-4-5-20250929``) like any other request. Vertex answers Claude requests in
the Anthropic API's shapes, errors included, so this surface does too. The virtual key
comes in ``ANTHROPIC_CUSTOM_HEADERS`` (``x-api-key: tw-...``) with
``CLAUDE_CODE_SKIP_VERTEX_AUTH=1``.
"""

from __future__ import annotations

import re

from tollway.errors import GatewayError
from tollway.providers.base import VERTEX
from tollway.providers.cloud_models import from_vertex
from tollway.sse import SSEEvent
from tollway.surfaces.anthropic import AnthropicSurface
from tollway.surfaces.base import Route

_PATH = re.compile(
    r"^(?:/vertex)?/v1/projects/[^/]+/locations/[^/]+/publishers/anthropic/models/"
    r"([^/:]+):(rawPredict|streamRawPredict)$"
)
_ANTHROPIC = AnthropicSurface()


class VertexSurface:
    name = "vertex"
    dialect = VERTEX

    def error_body(self, error: GatewayError) -> bytes:
        return _ANTHROPIC.error_body(error)

    def stream_error(self, error: GatewayError) -> bytes:
        return _ANTHROPIC.stream_error(error)

    @staticmethod
    def is_terminal(event: SSEEvent) -> bool:
        return event.event == "message_stop"


VERTEX_SURFACE = VertexSurface()


def match(path: str) -> Route | None:
    m = _PATH.match(path)
    if m is None:
        return None
    model, verb = m[1], m[2]
    if model == "count-tokens":  # the model is named in the body
        return Route(VERTEX_SURFACE, "count_tokens", "/models/count-tokens:rawPredict")
    stream = verb == "streamRawPredict"
    return Route(VERTEX_SURFACE, "generate", f"/models/{{model}}:{verb}",
                 model=from_vertex(model), stream=stream)  # fmt: skip
