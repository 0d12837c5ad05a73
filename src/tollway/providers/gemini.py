"""The Gemini API (generativelanguage.googleapis.com) as a native upstream.

It speaks the Gemini dialect only: Gemini clients pass through byte for byte, others are
translated (``tollway.translate``). The key goes in ``x-goog-api-key``; the model is in
the path (``/v1beta/models/{model}:streamGenerateContent?alt=sse``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tollway.providers.base import GEMINI, KeyChoice, UpstreamRequest
from tollway.providers.http import HTTPProvider, UpstreamLimits


class GeminiProvider(HTTPProvider):
    """``GeminiProvider("gemini", base_url=..., keys=[...])``; ``kind`` is always gemini."""

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        keys: Sequence[KeyChoice],
        limits: UpstreamLimits | None = None,
        kind: str = "gemini",
        **session: Any,
    ) -> None:
        super().__init__(name, kind="gemini", base_url=base_url, keys=keys, limits=limits,
                         **session)  # fmt: skip
        self.dialects = frozenset({GEMINI})

    def url_for(self, request: UpstreamRequest) -> str:
        url = self.base_url + request.path
        if request.query:
            url += "?" + request.query.decode("latin-1")
        return url

    def _auth_headers(self, key: KeyChoice) -> list[tuple[str, str]]:
        return [("x-goog-api-key", key.secret)]
