"""Routing rules compiled once: scope, priority, conditions, weighted targets.

Rules are tried by priority (higher first), then scope (key, team, customer, global),
then the order given (stored rules before the config file's); the first whose scope and
conditions all hold fires. Tiers and aliases compile to global rules below every other.

    rules = RuleSet.compile(config.routing, stored)
    match = rules.match(facts)      # Match(rule, why) or None; rules.explain(facts) says why
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from tollway.routing.settings import (
    TIERS,
    Conditions,
    RoutingConfig,
    RoutingRule,
    Scope,
    WeightedTarget,
)

_TIER_PRIORITY = -1_000_001  # below any rule's priority (bounded at -1,000,000)
_ALIAS_PRIORITY = -1_000_000 - 2


@dataclass(frozen=True, slots=True)
class Facts:
    """What a rule may look at, for one request."""

    model: str
    headers: Mapping[str, str]  # lower-case names
    client: str
    tokens: int  # estimated: body bytes / 4
    key: str
    team: str | None = None
    customer: str | None = None
    budget_used_pct: Callable[[], float | None] = lambda: None  # read only when asked


@dataclass(frozen=True, slots=True)
class Compiled:
    rule: RoutingRule
    source: str  # "api", "config", "tier" or "alias"
    order: int
    models: tuple[re.Pattern[str], ...] | None
    headers: tuple[tuple[str, re.Pattern[str]], ...]

    @property
    def name(self) -> str:
        return self.rule.name

    def sort_key(self) -> tuple[int, int, int]:
        return (-self.rule.priority, -self.rule.scope.rank, self.order)


@dataclass(frozen=True, slots=True)
class Match:
    rule: Compiled
    why: list[str] = field(default_factory=list)


def estimate_tokens(body: bytes) -> int:
    """A request's size in tokens, estimated as bytes / 4 (rules compare against it)."""
    return len(body) // 4


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern))


def _compile(rule: RoutingRule, source: str, order: int) -> Compiled:
    models = None
    if rule.when.model is not None:
        models = tuple(_glob(p) for p in rule.when.model)
    headers = tuple((name, _glob(p)) for name, p in rule.when.headers.items())
    return Compiled(rule, source, order, models, headers)


def _sugar(config: RoutingConfig) -> list[tuple[RoutingRule, str]]:
    out: list[tuple[RoutingRule, str]] = []
    for tier, target in config.tiers.items():
        out.append((RoutingRule.model_construct(
            name=f"tier:{tier}", scope=Scope(), priority=_TIER_PRIORITY,
            when=Conditions(model=[TIERS[tier]]), targets=[WeightedTarget(to=target)],
            fallbacks=None), "tier"))  # fmt: skip
    for alias, target in config.aliases.items():
        out.append((RoutingRule.model_construct(
            name=f"alias:{alias}", scope=Scope(), priority=_ALIAS_PRIORITY,
            when=Conditions(model=[_escape(alias)]), targets=[WeightedTarget(to=target)],
            fallbacks=None), "alias"))  # fmt: skip
    return out


def _escape(name: str) -> str:
    """A literal model name as a glob (``[`` and ``*`` match themselves)."""
    return re.sub(r"([*?\[])", r"[\1]", name)


class RuleSet:
    def __init__(self, compiled: Sequence[Compiled]) -> None:
        self.rules = sorted(compiled, key=Compiled.sort_key)

    @classmethod
    def compile(cls, config: RoutingConfig, stored: Sequence[RoutingRule] = ()) -> RuleSet:
        found: list[Compiled] = []
        for rule in stored:
            found.append(_compile(rule, "api", len(found)))
        for rule in config.rules:
            found.append(_compile(rule, "config", len(found)))
        for rule, source in _sugar(config):
            found.append(_compile(rule, source, len(found)))
        return cls(found)

    def match(self, facts: Facts) -> Match | None:
        for rule in self.rules:
            why = _holds(rule, facts)
            if why is not None:
                return Match(rule, why)
        return None

    def explain(self, facts: Facts) -> tuple[Match | None, list[tuple[str, str]]]:
        """The match, and each rule tried before it with the reason it did not fire."""
        skipped: list[tuple[str, str]] = []
        for rule in self.rules:
            why = _holds(rule, facts)
            if why is not None:
                return Match(rule, why), skipped
            skipped.append((rule.name, _miss(rule, facts)))
        return None, skipped


def _scope_holds(scope: Scope, facts: Facts) -> bool:
    if scope.key is not None:
        return facts.key == scope.key
    if scope.team is not None:
        return facts.team == scope.team
    if scope.customer is not None:
        return facts.customer == scope.customer
    return True


def _holds(rule: Compiled, facts: Facts) -> list[str] | None:
    """The reasons the rule fires, or None when it does not."""
    return None if _miss(rule, facts) else _reasons(rule, facts)


def _miss(rule: Compiled, facts: Facts) -> str:
    """Why the rule does not fire ("" when it does)."""
    when = rule.rule.when
    if not _scope_holds(rule.rule.scope, facts):
        return f"scope {rule.rule.scope.describe()} does not cover this key"
    if rule.models is not None and not any(p.match(facts.model) for p in rule.models):
        return f"model {facts.model!r} matches none of {when.model}"
    for name, pattern in rule.headers:
        value = facts.headers.get(name)
        if value is None or not pattern.match(value):
            return f"header {name} is {value!r}, not {when.headers[name]!r}"
    if when.client is not None and facts.client not in when.client:
        return f"client {facts.client!r} is not one of {when.client}"
    if when.tokens is not None:
        low, high = when.tokens.min, when.tokens.max
        if (low is not None and facts.tokens < low) or (high is not None and facts.tokens > high):
            return f"about {facts.tokens} tokens, outside [{low}, {high}]"
    if when.budget_used_pct is not None:
        used = facts.budget_used_pct()
        low_pct, below = when.budget_used_pct.gte, when.budget_used_pct.lt
        if used is None:
            return "the key has no budget to measure"
        if (low_pct is not None and used < low_pct) or (below is not None and used >= below):
            return f"budget used {used:.1f}% is outside the rule's range"
    return ""


def _reasons(rule: Compiled, facts: Facts) -> list[str]:
    when, out = rule.rule.when, [f"scope {rule.rule.scope.describe()}"]
    if when.model is not None:
        out.append(f"model {facts.model!r} matches {when.model}")
    out += [f"header {name} matches {when.headers[name]!r}" for name, _ in rule.headers]
    if when.client is not None:
        out.append(f"client is {facts.client}")
    if when.tokens is not None:
        out.append(f"about {facts.tokens} tokens")
    if when.budget_used_pct is not None:
        used = facts.budget_used_pct()
        out.append(f"budget used {used:.1f}%" if used is not None else "budget used")
    return out
