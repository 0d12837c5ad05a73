"""Every provider type Tollway knows: its default base URL, key variable and dialects.

A leaf module (config, vault and the registry all read it; it imports nothing of theirs).
The registry (``registry.py``) pairs each type with the class that builds it.

    spec = SPECS["groq"]      # base_url, key_env, dialects
    spec.base_url_for(region=None)
"""

from __future__ import annotations

from dataclasses import dataclass

from tollway.providers.base import ANTHROPIC, GEMINI, OPENAI_CHAT, OPENAI_RESPONSES

CHAT = frozenset({OPENAI_CHAT})
CHAT_AND_RESPONSES = frozenset({OPENAI_CHAT, OPENAI_RESPONSES})
MESSAGES = frozenset({ANTHROPIC})


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    name: str
    family: str  # the module that speaks to it: anthropic, openai, bedrock, vertex, azure...
    dialects: frozenset[str]
    base_url: str | None  # None: the config must give one; "{region}" is filled in
    key_env: str | None = None  # the usual environment variable for its key
    needs_key: bool = True
    summary: str = ""

    def base_url_for(self, region: str | None) -> str:
        url = self.base_url or ""
        if "{region}" in url:
            if self.family == "vertex" and (region or "global") == "global":
                return "https://aiplatform.googleapis.com"
            return url.replace("{region}", region or "us-east-1")
        return url


def _openai_compatible(name: str, url: str, env: str | None, *, responses: bool = False,
                       needs_key: bool = True, summary: str = "") -> ProviderSpec:  # fmt: skip
    return ProviderSpec(
        name, "openai", CHAT_AND_RESPONSES if responses else CHAT, url, env,
        needs_key=needs_key, summary=summary,
    )  # fmt: skip


SPECS: dict[str, ProviderSpec] = {
    s.name: s
    for s in (
        ProviderSpec(
            "anthropic",
            "anthropic",
            MESSAGES,
            "https://api.anthropic.com",
            "ANTHROPIC_API_KEY",
            summary="Anthropic API (x-api-key)",
        ),
        ProviderSpec(
            "openai",
            "openai",
            CHAT_AND_RESPONSES,
            "https://api.openai.com/v1",
            "OPENAI_API_KEY",
            summary="OpenAI API (Bearer)",
        ),
        ProviderSpec(
            "gemini",
            "gemini",
            frozenset({GEMINI}),
            "https://generativelanguage.googleapis.com",
            "GEMINI_API_KEY",
            summary="the Gemini API (x-goog-api-key)",
        ),
        _openai_compatible(
            "groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY", responses=True
        ),
        _openai_compatible("mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
        _openai_compatible("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
        _openai_compatible("deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
        _openai_compatible("xai", "https://api.x.ai/v1", "XAI_API_KEY", responses=True),
        _openai_compatible("together", "https://api.together.xyz/v1", "TOGETHER_API_KEY"),
        _openai_compatible(
            "fireworks", "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY"
        ),
        _openai_compatible("cerebras", "https://api.cerebras.ai/v1", "CEREBRAS_API_KEY"),
        _openai_compatible(
            "ollama",
            "http://localhost:11434/v1",
            None,
            needs_key=False,
            summary="a local Ollama server (no key)",
        ),
        _openai_compatible(
            "vllm",
            "http://localhost:8000/v1",
            "VLLM_API_KEY",
            responses=True,
            needs_key=False,
            summary="a vLLM server (key optional)",
        ),
        ProviderSpec(
            "bedrock",
            "bedrock",
            MESSAGES,
            "https://bedrock-runtime.{region}.amazonaws.com",
            "AWS_BEARER_TOKEN_BEDROCK",
            summary="AWS Bedrock InvokeModel for Claude (SigV4 or a Bedrock API key)",
        ),
        ProviderSpec(
            "vertex",
            "vertex",
            MESSAGES,
            "https://{region}-aiplatform.googleapis.com",
            None,
            summary="Google Vertex AI rawPredict for Claude (google-auth)",
        ),
        ProviderSpec(
            "azure_openai",
            "azure_openai",
            CHAT_AND_RESPONSES,
            None,
            "AZURE_OPENAI_API_KEY",
            summary="Azure OpenAI deployments (api-key, api-version)",
        ),
        ProviderSpec(
            "azure_foundry",
            "azure_foundry",
            MESSAGES,
            None,
            "ANTHROPIC_FOUNDRY_API_KEY",
            summary="Claude on Azure AI Foundry (/anthropic/v1/messages, api-key)",
        ),
        ProviderSpec(
            "simulated",
            "simulated",
            frozenset(),
            None,
            None,
            needs_key=False,
            summary="built-in replies, no network",
        ),
    )  # fmt: skip
}

PROVIDER_TYPES = tuple(SPECS)
DEFAULT_BASE_URLS = {n: s.base_url for n, s in SPECS.items() if s.base_url is not None}
