"""The router's plan: weighted picks over a key's provider configs, fallback chains,
refusals left out, and translators attached where a provider speaks another dialect."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tollway import translate
from tollway.config import ProviderGrant
from tollway.errors import InvalidRequest, PermissionDenied
from tollway.governance.entities import KeyRecord
from tollway.pipeline.route import Router
from tollway.providers.base import ANTHROPIC, OPENAI_CHAT, KeyChoice
from tollway.routing.rules import Facts, RuleSet
from tollway.routing.settings import RoutingConfig


class _P:
    def __init__(self, name: str, kind: str, dialects: set[str]) -> None:
        self.name, self.kind, self.dialects = name, kind, frozenset(dialects)
        self.keys = [KeyChoice("k", "s")]

    async def send(self, request: object, key: object) -> object:
        raise NotImplementedError

    async def close(self) -> None:
        pass


PROVIDERS = {
    "anthropic": _P("anthropic", "anthropic", {ANTHROPIC}),
    "bedrock": _P("bedrock", "bedrock", {ANTHROPIC}),
    "vertex": _P("vertex", "vertex", {ANTHROPIC}),
    "openai": _P("openai", "openai", {OPENAI_CHAT}),
}
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _key(*grants: ProviderGrant) -> KeyRecord:
    return KeyRecord(id="vk_1", name="alice", key_hash="h", key_hint="tw-...", created_at=NOW,
                     updated_at=NOW, provider_configs=list(grants))  # fmt: skip


def _order(plan: object) -> list[str]:
    return [f"{c.target.provider.name}/{c.target.model}" for c in plan.candidates]  # type: ignore[attr-defined]


def test_weights_over_a_keys_provider_configs() -> None:
    router = Router(PROVIDERS, {})
    key = _key(ProviderGrant(provider="anthropic", weight=0.8),
               ProviderGrant(provider="bedrock", weight=0.2))  # fmt: skip
    rng = random.Random(5)
    firsts = Counter(_order(router.plan("claude-sonnet-4-5", ANTHROPIC, key, rng=rng))[0]
                     for _ in range(5000))  # fmt: skip
    assert firsts == {"anthropic/claude-sonnet-4-5": 4036, "bedrock/claude-sonnet-4-5": 964}
    plan = router.plan("claude-sonnet-4-5", ANTHROPIC, key, rng=random.Random(1))
    assert len(plan.candidates) == 2  # the other config follows as the fallback
    assert plan.candidates[1].why.startswith("fallback: the key's provider config")


def test_an_explicit_fallback_chain_replaces_the_default() -> None:
    router = Router({**PROVIDERS, "fax": _P("fax", "fax", {"fax"})}, {},
                    fallbacks={"anthropic": ["vertex", "openai/gpt-5", "fax/f-1"]})  # fmt: skip
    plan = router.plan("claude-opus-4-5", ANTHROPIC, _key())
    assert _order(plan) == ["anthropic/claude-opus-4-5", "vertex/claude-opus-4-5",
                            "openai/gpt-5"]  # fmt: skip
    translator = plan.candidates[2].target.translator  # openai speaks Chat: translated
    assert translator is not None and (translator.client, translator.upstream) == (
        ANTHROPIC, OPENAI_CHAT)  # fmt: skip
    # a provider whose dialect no pair reaches is left out, and the plan says why
    assert plan.skipped == [("fax/f-1", "model 'claude-opus-4-5' is served by provider "
                             "'fax', which does not speak this API (anthropic); call that "
                             "provider's own API surface instead")]  # fmt: skip


def test_candidates_the_key_may_not_use_are_left_out() -> None:
    router = Router(PROVIDERS, {}, fallbacks={"anthropic": ["bedrock", "vertex"]})
    key = _key(ProviderGrant(provider="anthropic"),
               ProviderGrant(provider="vertex", allowed_models=["claude-haiku-*"]))  # fmt: skip
    plan = router.plan("anthropic/claude-opus-4-5", ANTHROPIC, key)
    assert _order(plan) == ["anthropic/claude-opus-4-5"]
    assert [name for name, _ in plan.skipped] == ["bedrock/claude-opus-4-5",
                                                  "vertex/claude-opus-4-5"]  # fmt: skip
    with pytest.raises(PermissionDenied, match="may not use provider 'anthropic'"):
        router.plan("claude-opus-4-5", ANTHROPIC, _key(ProviderGrant(provider="openai")))


def test_a_session_pin_goes_first() -> None:
    router = Router(PROVIDERS, {})
    key = _key(ProviderGrant(provider="anthropic", weight=1000),
               ProviderGrant(provider="bedrock", weight=0.001))  # fmt: skip
    plan = router.plan("claude-x", ANTHROPIC, key, pinned=("bedrock", "claude-x"))
    assert _order(plan) == ["bedrock/claude-x", "anthropic/claude-x"]


class _Fake:
    client, upstream, dropped = ANTHROPIC, "fax", []


@pytest.fixture
def pair() -> Iterator[None]:
    assert not translate.supported(ANTHROPIC, "fax")
    translate.register(ANTHROPIC, "fax", _Fake)  # type: ignore[arg-type]
    try:
        yield
    finally:
        translate._PAIRS.pop((ANTHROPIC, "fax"))


def test_a_rule_target_in_another_dialect_gets_a_translator(pair: None) -> None:
    rules = RuleSet.compile(RoutingConfig.model_validate(
        {"rules": [{"name": "to-fax", "targets": [{"to": "fax/f-1"}]}]}))  # fmt: skip
    router = Router({**PROVIDERS, "fax": _P("fax", "fax", {"fax"})}, {}, rules)
    facts = Facts("claude-haiku-4-5", {}, "claude-code", 10, "alice")
    plan = router.plan("claude-haiku-4-5", ANTHROPIC, _key(), facts)
    [candidate] = plan.candidates
    assert plan.rule == "to-fax" and candidate.target.model == "f-1"
    assert isinstance(candidate.target.translator, _Fake)


def test_without_a_pair_the_only_candidate_is_refused() -> None:
    router = Router({"fax": _P("fax", "fax", {"fax"})}, {})
    with pytest.raises(InvalidRequest, match="does not speak this API"):
        router.plan("fax/f-1", ANTHROPIC, _key())
