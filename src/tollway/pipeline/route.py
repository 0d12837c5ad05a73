"""Model name -> ordered candidates (provider, upstream model), checked against the key.

``Router.plan`` answers the request's candidates, primary first: the first routing rule
that fires names weighted targets (``provider/model``); without one the model names its
provider (``provider/model``, a declared model or the catalog) or, for a key with several
provider configs that serve the model, a weighted pick among them. The rest follow as the
fallback chain: ``routing.fallbacks`` (or the rule's ``fallbacks``) where configured,
else the key's other provider configs that serve the model, heaviest first. A candidate
the key may not use, or whose provider speaks neither the client's dialect nor one
``tollway.translate`` can pair with it, is left out (and named in ``Plan.skipped``).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tollway import translate
from tollway.config import ProviderGrant
from tollway.errors import GatewayError, InvalidRequest, ModelNotFound, PermissionDenied
from tollway.governance.allowlist import ModelAllowlist
from tollway.governance.entities import KeyRecord
from tollway.providers.base import ANTHROPIC, OPENAI_CHAT, OPENAI_RESPONSES, Provider
from tollway.routing.balance import weighted_order
from tollway.routing.rules import Facts, Match, RuleSet
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
# Provider types that serve a model family under the family's own names.
_FAMILIES = {
    "anthropic": frozenset({"anthropic", "bedrock", "vertex", "foundry", "azure_foundry"}),
    "openai": frozenset({"openai", "azure", "azure_openai"}),
    "gemini": frozenset({"gemini", "vertex"}),
}
_PREFERRED = (ANTHROPIC, OPENAI_CHAT, OPENAI_RESPONSES)


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


@dataclass(frozen=True, slots=True)
class Candidate:
    target: Target
    why: str  # "rule haiku-cheap target 1 of 2 (weight 0.8)", "fallback of anthropic", ...


@dataclass(slots=True)
class Plan:
    candidates: list[Candidate]
    match: Match | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (provider/model, why)

    @property
    def rule(self) -> str | None:
        return self.match.rule.name if self.match is not None else None


def _family(model: str) -> str | None:
    for prefix, family in _CATALOG:
        if model.startswith(prefix):
            return family
    return None


class Router:
    """``router.plan(model, dialect, key, facts, rng)``; ``resolve`` for the primary alone."""

    def __init__(
        self,
        providers: Mapping[str, Provider],
        declared: Mapping[str, list[str]],
        rules: RuleSet | None = None,
        fallbacks: Mapping[str, list[str]] | None = None,
    ):
        self.providers = providers
        self.rules = rules or RuleSet([])
        self.fallbacks = dict(fallbacks or {})
        self._declared_by = {name: frozenset(models) for name, models in declared.items()}
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
        family = _family(model)
        if family is not None:
            if family in self.providers:
                return family, model
            for name in self.providers:  # the first provider of the family's types
                if self._kind(name) in _FAMILIES.get(family, frozenset({family})):
                    return name, model
        if "simulated" in self.providers:
            return "simulated", model
        configured = ", ".join(sorted(self.providers)) or "none"
        raise ModelNotFound(
            f"no configured provider serves model {model!r} (providers: {configured}); "
            "name it as provider/model, e.g. anthropic/claude-sonnet-4-5"
        )

    def serves(self, name: str, model: str) -> bool:
        """Whether provider ``name`` serves ``model`` under that name: declared, or of the
        model's family (by the provider's type), or the simulated provider."""
        provider = self.providers.get(name)
        if provider is None:
            return False
        declared = self._declared_by.get(name)
        if declared:
            return model in declared
        kind = self._kind(name)
        if kind == "simulated":
            return True
        family = _family(model)
        return family is not None and kind in _FAMILIES.get(family, frozenset({family}))

    def _kind(self, name: str) -> str:
        provider = self.providers[name]
        if getattr(provider, "simulated", False):
            return "simulated"
        return str(getattr(provider, "kind", name))

    def resolve(self, model: str | None, dialect: str, key: KeyRecord) -> Target:
        """The primary target only (listing models, a plan without failover)."""
        return self.plan(model, dialect, key).candidates[0].target

    def plan(
        self,
        model: str | None,
        dialect: str,
        key: KeyRecord,
        facts: Facts | None = None,
        rng: random.Random | None = None,
        pinned: tuple[str, str] | None = None,
    ) -> Plan:
        """Ordered candidates; raises the first refusal when none is usable."""
        if not model:
            raise InvalidRequest("the request has no 'model' field; name the model to use")
        rng = rng or random.Random()
        match = self.rules.match(facts) if facts is not None and self.rules.rules else None
        if match is not None:
            wanted = self._from_rule(match, rng)
        else:
            wanted = self._from_model(model, key, rng)
        plan = Plan([], match)
        first_error: GatewayError | None = None
        seen: set[tuple[str, str]] = set()
        for name, bare, why in wanted:
            if (name, bare) in seen:
                continue
            seen.add((name, bare))
            try:
                target = self._target(name, bare, model, dialect, key)
            except GatewayError as err:
                first_error = first_error or err
                plan.skipped.append((f"{name}/{bare}", err.message))
                continue
            plan.candidates.append(Candidate(target, why))
        if not plan.candidates:
            raise first_error or ModelNotFound(f"no provider can serve model {model!r}")
        if pinned is not None:
            at = next((i for i, c in enumerate(plan.candidates)
                       if (c.target.provider.name, c.target.model) == pinned), None)  # fmt: skip
            if at:
                plan.candidates.insert(0, plan.candidates.pop(at))
        return plan

    def _from_rule(self, match: Match, rng: random.Random) -> list[tuple[str, str, str]]:
        rule = match.rule.rule
        targets = weighted_order(rule.targets, lambda t: t.weight, rng)
        out = []
        for t in targets:
            name, _, bare = t.to.partition("/")
            out.append((name, bare, f"rule {rule.name} target {t.to} (weight {t.weight:g})"))
        if not out:
            return out
        first = out[0]
        chain = rule.fallbacks if rule.fallbacks is not None else self.fallbacks.get(first[0], [])
        out += self._chain(chain, first[1], f"fallback of rule {rule.name}")
        return out

    def _chain(self, chain: Sequence[str], model: str, why: str) -> list[tuple[str, str, str]]:
        out = []
        for entry in chain:
            name, sep, bare = entry.partition("/")
            out.append((name, bare if sep else model, why))
        return out

    def _from_model(
        self, model: str, key: KeyRecord, rng: random.Random
    ) -> list[tuple[str, str, str]]:
        name, bare = self.provider_for(model)
        explicit = "/" in model and model.split("/", 1)[0] == name
        grants = [g for g in key.provider_configs
                  if g.provider != "*" and self.serves(g.provider, bare)]  # fmt: skip
        primary = [(name, bare, "the model names the provider" if explicit else "by model")]
        if not explicit and grants and (len(grants) > 1 or grants[0].provider != name):
            picked = weighted_order(grants, lambda g: g.weight, rng)
            primary = [
                (
                    picked[0].provider,
                    bare,
                    f"weighted pick among the key's providers (weight {picked[0].weight:g})",
                )
            ]
        first = primary[0][0]
        if first in self.fallbacks:
            return primary + self._chain(self.fallbacks[first], bare, f"fallback of {first}")
        rest = [g for g in sorted(grants, key=lambda g: -g.weight) if g.provider != first]
        return primary + [(g.provider, bare, f"fallback: the key's provider config "
                           f"(weight {g.weight:g})") for g in rest]  # fmt: skip

    def _target(self, name: str, bare: str, requested: str, dialect: str, key: KeyRecord) -> Target:
        provider = self.providers.get(name)
        if provider is None:
            raise ModelNotFound(f"provider {name!r} is not configured")
        if key.provider_configs:
            grant = find_grant(key, name)
            if grant is None:
                allowed = ", ".join(g.provider for g in key.provider_configs)
                raise PermissionDenied(
                    f"virtual key {key.name!r} may not use provider {name!r} "
                    f"(model {requested!r}); it may use: {allowed}"
                )
            allow = self._allowlist(grant.allowed_models)
            if not (allow.allows(bare) or allow.allows(f"{name}/{bare}")):
                raise PermissionDenied(
                    f"virtual key {key.name!r} may not use model {requested!r} on {name}; "
                    f"allowed: {allow.describe()}"
                )
        translator = None
        if dialect not in provider.dialects:
            upstream = preferred_dialect(provider)
            translator = translate.pair(dialect, upstream)
            if translator is None:
                raise InvalidRequest(
                    f"model {requested!r} is served by provider {name!r}, which does not speak "
                    f"this API ({dialect}); call that provider's own API surface instead"
                )
        return Target(provider=provider, model=bare, requested=requested, translator=translator)


def preferred_dialect(provider: Provider) -> str:
    """The dialect to translate to: the provider's own ``dialect`` attribute if it has one,
    else the first of anthropic, openai_chat, openai_responses it speaks."""
    own = getattr(provider, "dialect", None)
    if isinstance(own, str) and own in provider.dialects:
        return own
    for d in _PREFERRED:
        if d in provider.dialects:
            return d
    return sorted(provider.dialects)[0]
