"""Rules compiled at load: refused with their line, tried by priority and scope, first
match wins; tiers and aliases below every rule."""

from __future__ import annotations

import pytest

from tollway.config import parse_config
from tollway.errors import ConfigError
from tollway.routing.rules import Facts, RuleSet

PROVIDERS = """\
providers:
  anthropic: {keys: [{value: sk-a}]}
  bedrock: {type: anthropic, base_url: "http://127.0.0.1:9", keys: [{value: sk-b}]}
  groq: {type: openai, base_url: "http://127.0.0.1:9/v1", keys: [{value: sk-g}]}
"""


def _rules(text: str) -> RuleSet:
    config = parse_config(PROVIDERS + text, environ={})
    return RuleSet.compile(config.routing)


def _facts(model: str = "claude-haiku-4-5-20251001", **kw: object) -> Facts:
    base: dict[str, object] = {"model": model, "headers": {}, "client": "claude-code",
                               "tokens": 100, "key": "alice"}  # fmt: skip
    return Facts(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rules", "where"),
    [
        ("    targets: [{to: nowhere/claude-x}]\n", "line 8: routing.rules.0.targets.0.to: "
         "Value error, provider 'nowhere' is not configured"),
        ("    targets: [{to: claude-x}]\n", "line 8: routing.rules.0.targets.0.to: "
         "Value error, 'claude-x': name a target as provider/model"),
        ("    targets: []\n", "line 8: routing.rules.0.targets: List should have at least 1"),
        ("    when: {client: vim}\n    targets: [{to: bedrock/x}]\n", "line 8: "
         "routing.rules.0.when.client.0: Input should be 'claude-code'"),
        ("    when: {modle: x}\n    targets: [{to: bedrock/x}]\n",
         "line 8: routing.rules.0.when.modle: Extra inputs are not permitted"),
        ("    targets: [{to: bedrock/x, weight: 0}]\n",
         "line 8: routing.rules.0.targets.0.weight: Input should be greater than 0"),
        ("    scope: {team: a, key: b}\n    targets: [{to: bedrock/x}]\n",
         "line 8: routing.rules.0.scope: Value error, a scope names one of key, team or customer"),
        ("    fallbacks: [gone]\n    targets: [{to: bedrock/x}]\n",
         "line 8: routing.rules.0.fallbacks.0: Value error, provider 'gone' is not configured"),
    ],
    ids=["unknown-provider", "no-provider", "no-targets", "bad-client", "typo", "zero-weight",
         "two-scopes", "bad-fallback"],
)  # fmt: skip
def test_an_invalid_rule_is_refused_with_its_line(rules: str, where: str) -> None:
    text = "routing:\n  rules:\n  - name: r1\n" + rules
    with pytest.raises(ConfigError) as info:
        parse_config(PROVIDERS + text, "tollway.yaml", environ={})
    assert f"tollway.yaml:{where}" in str(info.value)


def test_tiers_and_fallbacks_are_checked_too() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(PROVIDERS + "routing:\n  tiers: {haiku: grok/x}\n", "c.yaml", environ={})
    assert "c.yaml:line 6: routing.tiers.haiku: Value error, provider 'grok'" in str(info.value)
    with pytest.raises(ConfigError) as info:
        parse_config(PROVIDERS + "routing:\n  fallbacks: {anthropic: [bedrock, nope]}\n", "c.yaml",
                     environ={})  # fmt: skip
    assert "c.yaml:line 6: routing.fallbacks.anthropic.1: Value error, provider 'nope'" in str(
        info.value
    )


def test_env_providers_count_as_configured() -> None:
    text = "routing:\n  tiers: {haiku: openai/gpt-5-mini}\n"
    parse_config(text, environ={"OPENAI_API_KEY": "sk-o"})
    with pytest.raises(ConfigError):
        parse_config(text, environ={"OPENAI_API_KEY": "tw-a-virtual-key"})


def test_first_match_by_priority_then_scope_then_order() -> None:
    rules = _rules("""\
routing:
  rules:
  - {name: low, targets: [{to: bedrock/a}]}
  - {name: team, scope: {team: platform}, targets: [{to: bedrock/b}]}
  - {name: key, scope: {key: alice}, targets: [{to: bedrock/c}]}
  - {name: high, priority: 5, when: {model: "gpt-*"}, targets: [{to: groq/d}]}
""")
    assert [r.name for r in rules.rules] == ["high", "key", "team", "low"]
    assert rules.match(_facts()).rule.name == "key"  # type: ignore[union-attr]
    assert rules.match(_facts(key="bob", team="platform")).rule.name == "team"  # type: ignore[union-attr]
    assert rules.match(_facts(key="bob")).rule.name == "low"  # type: ignore[union-attr]
    assert rules.match(_facts("gpt-5")).rule.name == "high"  # type: ignore[union-attr]


def test_conditions_all_must_hold() -> None:
    rules = _rules("""\
routing:
  rules:
  - name: big-cc
    when:
      model: ["claude-*sonnet*", "claude-*opus*"]
      headers: {X-Team: "blue*"}
      client: claude-code
      tokens: {min: 1000, max: 50000}
      budget_used_pct: {gte: 80}
    targets: [{to: bedrock/x}]
""")
    ok = _facts("claude-sonnet-4-5", headers={"x-team": "blue-7"}, tokens=2000,
                budget_used_pct=lambda: 85.0)  # fmt: skip
    assert rules.match(ok) is not None
    match, skipped = rules.explain(_facts("claude-sonnet-4-5", headers={"x-team": "red"}))
    assert match is None
    assert skipped == [("big-cc", "header x-team is 'red', not 'blue*'")]
    cases = {
        "model 'claude-haiku-4-5' matches none of ['claude-*sonnet*', 'claude-*opus*']":
            _facts("claude-haiku-4-5", headers={"x-team": "blue"}),
        "client 'codex' is not one of ['claude-code']":
            _facts("claude-opus-4-5", headers={"x-team": "blue"}, client="codex"),
        "about 100 tokens, outside [1000, 50000]":
            _facts("claude-opus-4-5", headers={"x-team": "blue"}),
        "budget used 50.0% is outside the rule's range":
            _facts("claude-opus-4-5", headers={"x-team": "blue"}, tokens=1000,
                   budget_used_pct=lambda: 50.0),
        "the key has no budget to measure":
            _facts("claude-opus-4-5", headers={"x-team": "blue"}, tokens=1000),
    }  # fmt: skip
    for why, facts in cases.items():
        assert rules.explain(facts)[1] == [("big-cc", why)]


def test_tiers_and_aliases_come_after_every_rule() -> None:
    rules = _rules("""\
routing:
  tiers: {haiku: bedrock/claude-haiku-4-5, opus: anthropic/claude-opus-4-5}
  aliases: {"fast[1]": groq/llama-3.3-70b}
  rules:
  - {name: bottom, priority: -1000000, when: {model: "claude-*opus*"}, targets: [{to: groq/o}]}
""")
    assert [r.name for r in rules.rules] == ["bottom", "tier:haiku", "tier:opus", "alias:fast[1]"]
    for model in ("claude-haiku-4-5-20251001", "claude-3-5-haiku-20241022"):
        match = rules.match(_facts(model))
        assert match is not None and match.rule.name == "tier:haiku"
    assert rules.match(_facts("claude-opus-4-5")).rule.name == "bottom"  # type: ignore[union-attr]
    assert rules.match(_facts("fast[1]")).rule.name == "alias:fast[1]"  # type: ignore[union-attr]
    assert rules.match(_facts("fast1")) is None  # an alias is literal, not a glob
    assert rules.match(_facts("claude-sonnet-4-5")) is None
