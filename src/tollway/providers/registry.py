"""Provider type -> the class that builds it, from its config section and resolved keys.

    provider = build("bedrock-us", "bedrock", pc, keys, aws, limits)

The type's defaults (base URL, key variable, dialects) are in ``catalog.py``; each type's
wire handling is in its own module. ``register`` adds a type (a plugin, a test double).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tollway.config import ProviderConfig
from tollway.providers.anthropic import AnthropicProvider, FoundryProvider
from tollway.providers.azure import AzureOpenAIProvider
from tollway.providers.base import AwsKey, KeyChoice, Provider
from tollway.providers.betas import BEDROCK_BETAS, VERTEX_BETAS, BetaPolicy
from tollway.providers.catalog import SPECS, ProviderSpec
from tollway.providers.http import UpstreamLimits
from tollway.providers.openai import OpenAIProvider
from tollway.providers.simulated import SimulatedProvider


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What a builder gets: the config section, its keys (secrets resolved) and limits."""

    name: str
    spec: ProviderSpec
    config: ProviderConfig
    keys: list[KeyChoice]
    aws: dict[KeyChoice, AwsKey]
    limits: UpstreamLimits

    @property
    def base_url(self) -> str:
        return self.config.base_url or self.spec.base_url_for(self.config.region)

    def policy(self, accepted: frozenset[str] | None) -> BetaPolicy:
        pc = self.config
        return BetaPolicy.of(accepted, pc.allow_betas, pc.drop_betas, pc.drop_fields)


Builder = Callable[[BuildContext], Provider]


def _anthropic(ctx: BuildContext) -> Provider:
    return AnthropicProvider(ctx.name, base_url=ctx.base_url, keys=ctx.keys,
                             policy=ctx.policy(None), limits=ctx.limits)  # fmt: skip


def _foundry(ctx: BuildContext) -> Provider:
    return FoundryProvider(ctx.name, base_url=ctx.base_url, keys=ctx.keys,
                           policy=ctx.policy(None), limits=ctx.limits)  # fmt: skip


def _openai(ctx: BuildContext) -> Provider:
    keys = ctx.keys or ([] if ctx.spec.needs_key else [KeyChoice("none", "")])
    return OpenAIProvider(ctx.name, base_url=ctx.base_url, keys=keys,
                          dialects=ctx.spec.dialects, limits=ctx.limits)  # fmt: skip


def _azure_openai(ctx: BuildContext) -> Provider:
    pc = ctx.config
    return AzureOpenAIProvider(ctx.name, base_url=ctx.base_url, keys=ctx.keys,
                               api_version=pc.api_version, model_map=dict(pc.model_map),
                               limits=ctx.limits)  # fmt: skip


def _bedrock(ctx: BuildContext) -> Provider:
    from tollway.providers.bedrock import BedrockProvider  # botocore: only when configured

    pc = ctx.config
    return BedrockProvider(
        ctx.name, region=pc.region or "us-east-1", keys=ctx.keys, base_url=pc.base_url,
        aws=ctx.aws, policy=ctx.policy(BEDROCK_BETAS), model_map=dict(pc.model_map),
        inference_profile=pc.inference_profile, limits=ctx.limits,
    )  # fmt: skip


def _vertex(ctx: BuildContext) -> Provider:
    from tollway.providers.vertex import VertexProvider  # google-auth: only when configured

    pc = ctx.config
    return VertexProvider(
        ctx.name, project=pc.project or "", region=pc.region or "global", keys=ctx.keys,
        base_url=pc.base_url, policy=ctx.policy(VERTEX_BETAS), model_map=dict(pc.model_map),
        limits=ctx.limits,
    )  # fmt: skip


def _gemini(ctx: BuildContext) -> Provider:
    from tollway.providers.gemini import GeminiProvider

    return GeminiProvider(ctx.name, base_url=ctx.base_url, keys=ctx.keys, limits=ctx.limits)


def _simulated(ctx: BuildContext) -> Provider:
    return SimulatedProvider(ctx.name, ctx.config.simulated)


class ProviderRegistry:
    """Family -> builder; ``registry.build(ctx)``. Every catalog family is registered."""

    def __init__(self) -> None:
        self._builders: dict[str, Builder] = {}

    def register(self, family: str, builder: Builder) -> None:
        """``family``: a catalog entry's ``family`` (the presets share ``openai``)."""
        self._builders[family] = builder

    def families(self) -> list[str]:
        return list(self._builders)

    def build(self, ctx: BuildContext) -> Provider:
        return self._builders[ctx.spec.family](ctx)


def default_registry() -> ProviderRegistry:
    registry = ProviderRegistry()
    for family, builder in (
        ("anthropic", _anthropic), ("openai", _openai), ("bedrock", _bedrock),
        ("vertex", _vertex), ("azure_openai", _azure_openai), ("azure_foundry", _foundry),
        ("gemini", _gemini), ("simulated", _simulated),
    ):  # fmt: skip
        registry.register(family, builder)
    return registry


def context(
    name: str,
    kind: str,
    config: ProviderConfig,
    keys: list[KeyChoice],
    limits: UpstreamLimits,
    aws: dict[KeyChoice, AwsKey] | None = None,
) -> BuildContext:
    return BuildContext(name, SPECS[kind], config, keys, aws or {}, limits)
