"""The ``routing:`` section of the config: rules, tiers, aliases, fallbacks and the
retry, breaker and affinity settings. Validated at load: a bad rule stops the start with
its line (config.py), or is refused by ``PUT /api/routing-rules`` with its field path.

Rule targets name ``provider/model``; the provider must be configured. The set of known
providers reaches the validators through the validation context (``providers``).
"""

from __future__ import annotations

import fnmatch
import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tollway.limits import Weight

CLIENTS = ("claude-code", "codex", "gemini-cli", "cursor", "sdk")
# Claude Code's model tiers, as the model names it sends them (claude-haiku-4-5-20251001,
# claude-3-5-haiku-20241022, claude-opus-4-5, ...).
TIERS = {"haiku": "claude-*haiku*", "sonnet": "claude-*sonnet*", "opus": "claude-*opus*"}
_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")
_RULE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def check_target(value: str, info: ValidationInfo) -> str:
    """``provider/model`` whose provider is configured (when the context names them)."""
    provider, sep, model = value.partition("/")
    if not sep or not provider or not model:
        raise ValueError(f"{value[:100]!r}: name a target as provider/model")
    known = (info.context or {}).get("providers")
    if known is not None and provider not in known:
        have = ", ".join(sorted(known)) or "none"
        raise ValueError(f"provider {provider!r} is not configured (providers: {have})")
    return value


def check_fallback(value: str, info: ValidationInfo) -> str:
    """A fallback is ``provider`` (the same model) or ``provider/model``."""
    if "/" in value:
        return check_target(value, info)
    known = (info.context or {}).get("providers")
    if not value or (known is not None and value not in known):
        have = ", ".join(sorted(known or ())) or "none"
        raise ValueError(f"provider {value[:64]!r} is not configured (providers: {have})")
    return value


TargetName = Annotated[str, AfterValidator(check_target)]
FallbackName = Annotated[str, AfterValidator(check_fallback)]


class WeightedTarget(_Model):
    to: str
    weight: Weight = 1.0

    @field_validator("to")
    @classmethod
    def _to(cls, v: str, info: ValidationInfo) -> str:
        return check_target(v, info)


class TokenRange(_Model):
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)


class PercentRange(_Model):
    gte: float | None = Field(default=None, ge=0, le=1000)
    lt: float | None = Field(default=None, ge=0, le=1000)


class Scope(_Model):
    """Whom a rule applies to; none set is global. Entities are named by name."""

    key: str | None = None
    team: str | None = None
    customer: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Scope:
        if sum(v is not None for v in (self.key, self.team, self.customer)) > 1:
            raise ValueError("a scope names one of key, team or customer")
        return self

    @property
    def rank(self) -> int:
        """More specific scopes win ties: key, team, customer, global."""
        return 3 if self.key else 2 if self.team else 1 if self.customer else 0

    def describe(self) -> str:
        for kind in ("key", "team", "customer"):
            value = getattr(self, kind)
            if value is not None:
                return f"{kind} {value!r}"
        return "global"


class Conditions(_Model):
    """Every condition set must hold; none set matches every request."""

    model: list[str] | None = None  # globs over the model as requested
    headers: dict[str, str] = Field(default_factory=dict)  # header name -> glob of its value
    client: list[Literal["claude-code", "codex", "gemini-cli", "cursor", "sdk"]] | None = None
    tokens: TokenRange | None = None  # estimated request tokens (body bytes / 4)
    budget_used_pct: PercentRange | None = None  # the fullest budget of the key's chain

    @field_validator("model", "client", mode="before")
    @classmethod
    def _listed(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v

    @field_validator("model")
    @classmethod
    def _globs(cls, v: list[str] | None) -> list[str] | None:
        for pattern in v or ():
            if not pattern or len(pattern) > 256:
                raise ValueError("a model glob has 1-256 characters")
            fnmatch.translate(pattern)
        return v

    @field_validator("headers")
    @classmethod
    def _headers(cls, v: dict[str, str]) -> dict[str, str]:
        for name in v:
            if not _HEADER.match(name):
                raise ValueError(f"{name[:64]!r} is not a header name")
        return {k.lower(): pattern for k, pattern in v.items()}


class RoutingRule(_Model):
    name: str
    scope: Scope = Field(default_factory=Scope)
    priority: int = Field(default=0, ge=-1_000_000, le=1_000_000)  # higher first
    when: Conditions = Field(default_factory=Conditions)
    targets: list[WeightedTarget] = Field(min_length=1, max_length=32)
    fallbacks: list[FallbackName] | None = None  # provider or provider/model, in order

    @field_validator("scope", mode="before")
    @classmethod
    def _global(cls, v: object) -> object:
        return {} if v == "global" or v is None else v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _RULE_NAME.match(v):
            raise ValueError(f"{v[:64]!r}: use letters, digits, '_', '.', ':' or '-' (1-64)")
        return v


class RetrySettings(_Model):
    """Failover before the first byte. ``max_attempts`` counts every upstream try of one
    request (the first included); a provider's retry tokens refill by ``ratio`` per first
    attempt and ``per_second``, up to ``burst``, so retries stay a fraction of traffic."""

    max_attempts: int = Field(default=3, ge=1, le=10)
    deadline_s: float = Field(default=600, gt=0, le=86_400)  # all attempts, to the first byte
    ratio: float = Field(default=0.2, ge=0, le=10)
    per_second: float = Field(default=1.0, ge=0, le=10_000)
    burst: float = Field(default=10, ge=0, le=100_000)


class BreakerSettings(_Model):
    """Per (provider, key, model): opens after ``failures`` in a row, for ``cooldown_s``
    (doubling on each failed probe, up to ``max_cooldown_s``); a 429's retry-after opens
    it at once for that long."""

    failures: int = Field(default=5, ge=1, le=1000)
    cooldown_s: float = Field(default=30, gt=0, le=86_400)
    max_cooldown_s: float = Field(default=300, gt=0, le=86_400)


class AffinitySettings(_Model):
    """A session (``X-Claude-Code-Session-Id``) keeps its provider and key while healthy."""

    enabled: bool = True
    max_sessions: int = Field(default=100_000, ge=1, le=10_000_000)
    ttl_s: float = Field(default=6 * 3600, gt=0)


class RoutingConfig(_Model):
    rules: list[RoutingRule] = Field(default_factory=list)
    # Claude Code's tiers (haiku, sonnet, opus) -> provider/model, as global rules.
    tiers: dict[Literal["haiku", "sonnet", "opus"], TargetName] = Field(default_factory=dict)
    # A model name clients may send -> provider/model.
    aliases: dict[str, TargetName] = Field(default_factory=dict)
    # Provider -> its fallback chain (provider or provider/model), replacing the default.
    fallbacks: dict[str, list[FallbackName]] = Field(default_factory=dict)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    affinity: AffinitySettings = Field(default_factory=AffinitySettings)

    @field_validator("fallbacks")
    @classmethod
    def _chains(cls, v: dict[str, list[str]], info: ValidationInfo) -> dict[str, list[str]]:
        for provider in v:
            check_fallback(provider, info)
        return v

    @model_validator(mode="after")
    def _unique(self) -> RoutingConfig:
        names = [r.name for r in self.rules]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup is not None:
            raise ValueError(f"rule names are unique: {dup!r} appears twice")
        return self


class StoredRules(_Model):
    """What ``PUT /api/routing-rules`` takes and stores."""

    rules: list[RoutingRule] = Field(default_factory=list, max_length=1000)
