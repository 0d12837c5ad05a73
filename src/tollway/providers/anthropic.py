"""The Anthropic API (and Claude on Azure AI Foundry, which speaks it under /anthropic).

Requests pass through byte for byte. The one exception: a body ``anthropic_beta`` list
(Bedrock's place for betas, kept by the Bedrock client surface) is moved into the
``anthropic-beta`` header, which is where the Anthropic API reads them; and a provider
configured with ``drop_betas`` / ``drop_fields`` has those removed.
"""

from __future__ import annotations

import logging

from tollway.providers.base import ANTHROPIC, KeyChoice, UpstreamRequest
from tollway.providers.betas import BetaPolicy, BodyEdit, header_betas
from tollway.providers.http import HTTPProvider, Outgoing, UpstreamLimits

log = logging.getLogger("tollway.providers")


class AnthropicProvider(HTTPProvider):
    """``AnthropicProvider("anthropic", base_url="https://api.anthropic.com", keys=[...])``."""

    auth_headers: tuple[str, ...] = ("x-api-key",)
    label = "anthropic"

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        keys: list[KeyChoice],
        policy: BetaPolicy | None = None,
        limits: UpstreamLimits | None = None,
    ) -> None:
        super().__init__(name, kind="anthropic", base_url=base_url, keys=keys, limits=limits,
                         dialects=frozenset({ANTHROPIC}))  # fmt: skip
        self.policy = policy or BetaPolicy.of(None)

    def _auth_headers(self, key: KeyChoice) -> list[tuple[str, str]]:
        return [(name, key.secret) for name in self.auth_headers]

    async def prepare(self, request: UpstreamRequest, key: KeyChoice) -> Outgoing:
        headers, body = request.headers, request.body
        if not self.policy.trivial or b'"anthropic_beta"' in body:
            headers, body = self._filtered(request)
        return Outgoing(self.url_for(request), headers + self._auth_headers(key), body)

    def _filtered(self, request: UpstreamRequest) -> tuple[list[tuple[str, str]], bytes]:
        edit = BodyEdit.parse(request.body)
        kept, dropped = self.policy.split(header_betas(request.headers) + edit.pop_betas())
        edit.apply(self.policy, dropped)
        notes = [f"beta {b}" for b in dropped] + [f"field {f}" for f in edit.dropped]
        if notes:
            log.info("provider %s (%s) dropped %s, as configured", self.name, self.label,
                     ", ".join(notes))  # fmt: skip
        headers = [(k, v) for k, v in request.headers if k.lower() != "anthropic-beta"]
        if kept:
            headers.append(("anthropic-beta", ",".join(kept)))
        return headers, edit.encode()


class FoundryProvider(AnthropicProvider):
    """Claude on Azure AI Foundry: ``https://{resource}.services.ai.azure.com/anthropic``
    + ``/v1/messages``, the resource key in ``api-key`` (and ``x-api-key``)."""

    auth_headers = ("api-key", "x-api-key")
    label = "azure_foundry"

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        keys: list[KeyChoice],
        policy: BetaPolicy | None = None,
        limits: UpstreamLimits | None = None,
    ) -> None:
        super().__init__(name, base_url=base_url, keys=keys, policy=policy, limits=limits)
        self.kind = "azure_foundry"
