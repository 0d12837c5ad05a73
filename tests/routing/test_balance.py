"""Weighted orders, session pins and retry tokens: pure, seeded, exact."""

from __future__ import annotations

import random
from collections import Counter

from tollway.providers.base import KeyChoice, key_order
from tollway.routing.balance import Affinity, Pin, RetryBudget, weighted_order
from tollway.routing.settings import AffinitySettings, RetrySettings


def test_weights_converge_to_their_shares() -> None:
    """0.8/0.2 over 10,000 seeded picks: the exact counts of this seed, within 1% of 8:2."""
    rng = random.Random(1234)
    items = [("anthropic", 0.8), ("bedrock", 0.2)]
    firsts = Counter(weighted_order(items, lambda i: i[1], rng)[0][0] for _ in range(10_000))
    assert firsts == {"anthropic": 7985, "bedrock": 2015}


def test_the_rest_follow_heaviest_first() -> None:
    rng = random.Random(7)
    items = [("a", 1.0), ("b", 5.0), ("c", 3.0), ("d", 3.0)]
    orders = Counter(tuple(n for n, _ in weighted_order(items, lambda i: i[1], rng))
                     for _ in range(2000))  # fmt: skip
    for order in orders:
        rest = [dict(items)[n] for n in order[1:]]
        assert rest == sorted(rest, reverse=True)
    assert orders[("b", "c", "d", "a")] > orders[("a", "b", "c", "d")] > 0
    assert ("d", "b", "c", "a") in orders  # ties keep their order after the pick


def test_provider_keys_converge_too() -> None:
    rng = random.Random(99)
    keys = [KeyChoice("k1", "s1", 3.0), KeyChoice("k2", "s2", 1.0)]
    firsts = Counter(key_order(keys, rng)[0].name for _ in range(4000))
    assert firsts == {"k1": 3032, "k2": 968}


def test_affinity_pins_expire_and_are_bounded() -> None:
    aff = Affinity(AffinitySettings(max_sessions=2, ttl_s=60))
    aff.set("vk1", "s1", Pin("anthropic", "main", "claude-x", 0.0))
    assert aff.get("vk1", "s1", 10.0) == Pin("anthropic", "main", "claude-x", 0.0)
    assert aff.get("vk2", "s1", 10.0) is None  # another key's session of the same id
    assert aff.get("vk1", None, 10.0) is None
    assert aff.get("vk1", "s1", 61.0) is None and len(aff) == 0  # expired and dropped
    for i in range(3):
        aff.set("vk1", f"s{i}", Pin("p", "k", "m", 100.0))
    assert len(aff) == 2 and aff.get("vk1", "s0", 100.0) is None  # least recent evicted


def test_affinity_can_be_off() -> None:
    aff = Affinity(AffinitySettings(enabled=False))
    aff.set("vk1", "s1", Pin("p", "k", "m", 0.0))
    assert aff.get("vk1", "s1", 0.0) is None


def test_retry_tokens_earn_spend_and_refill() -> None:
    budget = RetryBudget(RetrySettings(burst=2, ratio=0.5, per_second=0.25))
    assert budget.spend("p", 0.0) and budget.spend("p", 0.0)
    assert not budget.spend("p", 0.0)
    budget.earn("p", 0.0)
    budget.earn("p", 0.0)  # two first attempts at 0.5 each: one retry
    assert budget.spend("p", 0.0) and not budget.spend("p", 0.0)
    assert budget.tokens("p", 4.0) == 1.0  # a token per 4 s
    assert budget.tokens("p", 100.0) == 2.0  # never above burst
    assert budget.tokens("other", 0.0) == 2.0  # each provider has its own
