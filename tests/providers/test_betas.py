"""Beta policies and body edits: what each provider keeps, renames and drops."""

from __future__ import annotations

import json

import pytest

from tollway.errors import InvalidRequest
from tollway.providers.betas import (
    BEDROCK_BETAS,
    VERTEX_BETAS,
    BetaPolicy,
    BodyEdit,
    header_betas,
)

CLAUDE_CODE = [
    "claude-code-20250219", "context-1m-2025-08-07", "interleaved-thinking-2025-05-14",
    "thinking-token-count-2026-05-13", "context-management-2025-06-27",
    "prompt-caching-scope-2026-01-05", "mid-conversation-system-2026-04-07",
    "effort-2025-11-24", "advanced-tool-use-2025-11-20",
]  # fmt: skip


def test_each_cloud_keeps_what_it_takes() -> None:
    kept, dropped = BetaPolicy.of(BEDROCK_BETAS).split(CLAUDE_CODE)
    assert kept == ["context-1m-2025-08-07", "interleaved-thinking-2025-05-14",
                    "context-management-2025-06-27", "effort-2025-11-24",
                    "tool-search-tool-2025-10-19"]  # fmt: skip
    assert dropped == [
        "claude-code-20250219",
        "thinking-token-count-2026-05-13",
        "prompt-caching-scope-2026-01-05",
        "mid-conversation-system-2026-04-07",
    ]
    kept, dropped = BetaPolicy.of(VERTEX_BETAS).split(CLAUDE_CODE)
    assert "effort-2025-11-24" in dropped and "claude-code-20250219" in kept
    anthropic = BetaPolicy.of(None, drop=["effort-2025-11-24"])
    kept, dropped = anthropic.split([*CLAUDE_CODE, "tool-search-tool-2025-10-19"])
    assert dropped == ["effort-2025-11-24"] and kept[-1] == "advanced-tool-use-2025-11-20"
    assert kept.count("advanced-tool-use-2025-11-20") == 1


def test_fields_go_with_their_beta_and_the_rest_keep_their_bytes() -> None:
    body = (
        b'{"model":"m","max_tokens":5,"output_config":{"effort":"high","format":{"x":1}},'
        b'"context_management":{"edits":[]},"metadata":{"user_id":"{\\"a\\": 1}"}}'
    )
    edit = BodyEdit.parse(body)
    policy = BetaPolicy.of(VERTEX_BETAS, drop_fields=["metadata"])
    edit.apply(policy, ["effort-2025-11-24"])
    out = edit.encode()
    assert json.loads(out) == {"model": "m", "max_tokens": 5,
                               "output_config": {"format": {"x": 1}},
                               "context_management": {"edits": []}}  # fmt: skip
    assert edit.dropped == ["metadata", "output_config.effort"]
    assert b'"max_tokens":5' in out


def test_betas_from_headers_and_bad_bodies() -> None:
    assert header_betas([("Anthropic-Beta", "a, b"), ("x", "y"), ("anthropic-beta", "c")]) == [
        "a", "b", "c"]  # fmt: skip
    with pytest.raises(InvalidRequest):
        BodyEdit.parse(b"[1]")
    with pytest.raises(InvalidRequest):
        BodyEdit.parse(b'{"anthropic_beta": "one"}').pop_betas()
