"""The Bedrock and Vertex client surfaces: which paths they take, and their error shapes."""

from __future__ import annotations

import json

import pytest
from botocore.eventstream import EventStreamBuffer

from tollway.errors import NotFound, RateLimited
from tollway.surfaces import bedrock, vertex


@pytest.mark.parametrize(
    ("path", "kind", "model", "stream"),
    [
        ("/model/us.anthropic.claude-sonnet-4-5-20250929-v1:0/invoke", "generate",
         "claude-sonnet-4-5-20250929", False),
        ("/model/anthropic.claude-opus-4-6-v1/invoke-with-response-stream", "generate",
         "claude-opus-4-6", True),
        ("/bedrock/model/global.anthropic.claude-haiku-4-5-20251001-v1:0/invoke", "generate",
         "claude-haiku-4-5-20251001", False),
        ("/model/arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
         "us.anthropic.claude-sonnet-4-5-20250929-v1:0/invoke", "generate",
         "claude-sonnet-4-5-20250929", False),
        ("/model/anthropic.claude-sonnet-4-5-20250929-v1:0/count-tokens", "count_tokens",
         "claude-sonnet-4-5-20250929", None),
    ],
)  # fmt: skip
def test_bedrock_paths(path: str, kind: str, model: str, stream: bool | None) -> None:
    route = bedrock.match(path)
    assert route is not None
    assert (route.kind, route.model, route.stream) == (kind, model, stream)
    assert route.surface.dialect == "bedrock"


@pytest.mark.parametrize(
    ("path", "kind", "model", "stream"),
    [
        ("/v1/projects/p/locations/us-east5/publishers/anthropic/models/"
         "claude-sonnet-4-5@20250929:streamRawPredict", "generate",
         "claude-sonnet-4-5-20250929", True),
        ("/vertex/v1/projects/p/locations/global/publishers/anthropic/models/"
         "claude-opus-4-6:rawPredict", "generate", "claude-opus-4-6", False),
        ("/v1/projects/p/locations/us-east5/publishers/anthropic/models/"
         "count-tokens:rawPredict", "count_tokens", None, None),
    ],
)  # fmt: skip
def test_vertex_paths(path: str, kind: str, model: str | None, stream: bool | None) -> None:
    route = vertex.match(path)
    assert route is not None
    assert (route.kind, route.model, route.stream) == (kind, model, stream)


def test_other_paths_are_not_theirs() -> None:
    google = "/v1/projects/p/locations/l/publishers/google/models/gemini:rawPredict"
    for path in ("/v1/messages", "/model/x/predict", "/model//invoke", google):
        assert bedrock.match(path) is None and vertex.match(path) is None


def test_error_shapes() -> None:
    surface = bedrock.BEDROCK_SURFACE
    assert json.loads(surface.error_body(NotFound("no such model"))) == {"message": "no such model"}
    buf = EventStreamBuffer()
    buf.add_data(surface.stream_error(RateLimited("slow down", retry_after=1)))
    (frame,) = list(buf)
    assert frame.headers[":message-type"] == "exception"
    assert frame.headers[":exception-type"] == "throttlingException"
    assert json.loads(frame.payload) == {"message": "slow down"}
    body = json.loads(vertex.VERTEX_SURFACE.error_body(NotFound("gone")))
    assert body == {"type": "error", "error": {"type": "not_found_error", "message": "gone"}}
