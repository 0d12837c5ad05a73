"""Model name -> provider and upstream model, checked against the key's grants."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tollway.config import ProviderGrant
from tollway.errors import InvalidRequest, ModelNotFound, PermissionDenied
from tollway.governance.allowlist import ModelAllowlist
from tollway.governance.entities import KeyRecord
from tollway.providers.base import Provider
from tollway.translate import Translator

# Bare model names map to a provider by prefix (a small catalog; providers may list more).
_CATALOG = (
    ("claude-", "anthropic"),
    ("gpt-", "openai"),
    ("chatgpt-", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("codex-", "openai"),
    ("text-embedding-", "openai"),
    ("gemini-", "gemini"),
)


def find_grant(key: KeyRecord, provider: str) -> ProviderGrant | None:
    """The key's config for this provider; a ``"*"`` config covers any provider."""
    wildcard = None
    for grant in key.provider_configs:
        if grant.provider == provider:
            return grant
        if grant.provider == "*":
            wildcard = grant
    return wildcard


@dataclass(frozen=True, slots=True)
class Target:
    provider: Provider
    model: str  # as the upstream should see it
    requested: str  # as the client sent it
    # Set when the provider does not speak the client's dialect (see tollway.translate).
    translator: Translator | None = None


class Router:
    """Resolves ``provider/model`` or bare names; the only catch-all is ``simulated``."""

    def __init__(self, providers: Mapping[str, Provider], declared: Mapping[str, list[str]]):
        self.providers = providers
        self._declared = {m: name for name, models in declared.items() for m in models}
        self._allowlists: dict[tuple[str, ...], ModelAllowlist] = {}

    def _allowlist(self, patterns: list[str]) -> ModelAllowlist:
        key = tuple(patterns)
        found = self._allowlists.get(key)
        if found is None:
            found = self._allowlists[key] = ModelAllowlist(patterns)
        return found

    def provider_for(self, model: str) -> tuple[str, str]:
        if "/" in model:
            name, bare = model.split("/", 1)
            if name in self.providers:
                return name, bare
        if model in self._declared:
            return self._declared[model], model
        for prefix, name in _CATALOG:
            if model.startswith(prefix) and name in self.providers:
                return name, model
        if "simulated" in self.providers:
            return "simulated", model
        configured = ", ".join(sorted(self.providers)) or "none"
        raise ModelNotFound(
            f"no configured provider serves model {model!r} (providers: {configured}); "
            "name it as provider/model, e.g. anthropic/claude-sonnet-4-5"
        )

    def resolve(self, model: str | None, dialect: str, key: KeyRecord) -> Target:
        if not model:
            raise InvalidRequest("the request has no 'model' field; name the model to use")
        name, bare = self.provider_for(model)
        provider = self.providers[name]
        if key.provider_configs:
            grant = find_grant(key, name)
            if grant is None:
                allowed = ", ".join(g.provider for g in key.provider_configs)
                raise PermissionDenied(
                    f"virtual key {key.name!r} may not use provider {name!r} "
                    f"(model {model!r}); it may use: {allowed}"
                )
            allow = self._allowlist(grant.allowed_models)
            if not (allow.allows(bare) or allow.allows(f"{name}/{bare}")):
                raise PermissionDenied(
                    f"virtual key {key.name!r} may not use model {model!r} on {name}; "
                    f"allowed: {allow.describe()}"
                )
        if dialect not in provider.dialects:
            raise InvalidRequest(
                f"model {model!r} is served by provider {name!r}, which does not speak this "
                f"API ({dialect}); call that provider's own API surface instead"
            )
        return Target(provider=provider, model=bare, requested=model)
