"""Unknown paths that are a misconfigured base URL get the fix."""

from __future__ import annotations

import pytest

from tollway.providers.base import ANTHROPIC, OPENAI_CHAT
from tollway.surfaces.paths import misconfigured_base_url

HOST = "127.0.0.1:8080"


@pytest.mark.parametrize(
    ("path", "dialect", "kind", "fix"),
    [
        ("/v1/v1/messages", ANTHROPIC, "doubled_v1", "drop /v1 from ANTHROPIC_BASE_URL (use "
         "http://127.0.0.1:8080)"),
        ("/anthropic/v1/v1/messages", ANTHROPIC, "doubled_v1", "use http://127.0.0.1:8080/anthropic"),
        ("/anthropic/anthropic/v1/messages", ANTHROPIC, "doubled_prefix",
         "use http://127.0.0.1:8080/anthropic as the base URL"),
        ("/v1/v1/chat/completions", OPENAI_CHAT, "doubled_v1", "use http://127.0.0.1:8080/v1)"),
        ("/openai/openai/v1/responses", OPENAI_CHAT, "doubled_prefix",
         "use http://127.0.0.1:8080/openai/v1 as the base URL"),
        ("/chat/completions", OPENAI_CHAT, "missing_v1", "use http://127.0.0.1:8080/v1"),
        ("/api/v1/messages", ANTHROPIC, "wrong_prefix", "not under /api"),
    ],
)  # fmt: skip
def test_hints(path: str, dialect: str, kind: str, fix: str) -> None:
    hint = misconfigured_base_url(path, dialect, HOST)
    assert hint is not None and hint.kind == kind
    assert fix in hint.fix


@pytest.mark.parametrize("path", ["/v1/messages", "/favicon.ico", "/v1/complete", "/x"])
def test_no_hint_for_real_or_unrelated_paths(path: str) -> None:
    assert misconfigured_base_url(path, ANTHROPIC, HOST) is None
