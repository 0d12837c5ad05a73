"""OpenAI and the OpenAI-compatible presets (Groq, Mistral, OpenRouter, DeepSeek, xAI,
Together, Fireworks, Cerebras, Ollama, vLLM): Bearer auth, a base URL ending in /v1, and
bodies passed through byte for byte. The presets differ only in their catalog entry."""

from __future__ import annotations

from tollway.providers.base import KeyChoice
from tollway.providers.http import HTTPProvider, UpstreamLimits


class OpenAIProvider(HTTPProvider):
    """``OpenAIProvider("groq", base_url="https://api.groq.com/openai/v1", keys=[...])``."""

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        keys: list[KeyChoice],
        dialects: frozenset[str],
        limits: UpstreamLimits | None = None,
    ) -> None:
        super().__init__(name, kind="openai", base_url=base_url, keys=keys, limits=limits,
                         dialects=dialects)  # fmt: skip

    def _auth_headers(self, key: KeyChoice) -> list[tuple[str, str]]:
        if not key.secret:  # a local server without keys (Ollama, vLLM)
            return []
        return [("authorization", f"Bearer {key.secret}")]
