"""Azure OpenAI: a resource's deployments, the ``api-version`` query and an ``api-key``.

Chat Completions go to ``{resource}/openai/deployments/{deployment}/chat/completions
?api-version=...``; the Responses API to ``{resource}/openai/v1/responses`` with the
deployment as the body's ``model``. A model's deployment is its ``model_map`` entry, else
the model name itself (Azure's default when deploying). Claude on Azure AI Foundry is
``FoundryProvider`` in anthropic.py (it speaks the Anthropic API).
"""

from __future__ import annotations

from urllib.parse import quote

from tollway.errors import InvalidRequest
from tollway.providers.base import KeyChoice, UpstreamRequest
from tollway.providers.betas import BodyEdit
from tollway.providers.catalog import CHAT_AND_RESPONSES
from tollway.providers.http import HTTPProvider, Outgoing, UpstreamLimits

API_VERSION = "2024-10-21"


class AzureOpenAIProvider(HTTPProvider):
    """``AzureOpenAIProvider("azure", base_url="https://res.openai.azure.com", keys=[...])``."""

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        keys: list[KeyChoice],
        api_version: str | None = None,
        model_map: dict[str, str] | None = None,
        limits: UpstreamLimits | None = None,
    ) -> None:
        base = base_url.rstrip("/").removesuffix("/openai")
        super().__init__(name, kind="azure_openai", base_url=base, keys=keys, limits=limits,
                         dialects=CHAT_AND_RESPONSES)  # fmt: skip
        self.api_version = api_version or API_VERSION
        self._model_map = model_map or {}

    def deployment(self, model: str) -> str:
        return self._model_map.get(model, model)

    async def prepare(self, request: UpstreamRequest, key: KeyChoice) -> Outgoing:
        deployment = self.deployment(request.model)
        headers = [*request.headers, ("api-key", key.secret)]
        if request.path == "/v1/chat/completions":
            url = (f"{self.base_url}/openai/deployments/{quote(deployment, safe='')}"
                   f"/chat/completions?api-version={quote(self.api_version, safe='')}")  # fmt: skip
            return Outgoing(url, headers, request.body)
        if request.path == "/v1/responses":
            body = request.body
            if deployment != request.model:
                edit = BodyEdit.parse(body)
                edit.set("model", deployment)
                body = edit.encode()
            return Outgoing(f"{self.base_url}/openai/v1/responses", headers, body)
        raise InvalidRequest(
            f"provider {self.name} (azure_openai) serves /v1/chat/completions and "
            "/v1/responses only"
        )
