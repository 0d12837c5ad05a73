from __future__ import annotations

import copy
from collections import defaultdict
from datetime import UTC, datetime
from fractions import Fraction

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tollway.governance.ratelimit import Permit, RateLimited, RateLimiter, RateLimitSpec
from tollway.governance.windows import Duration

MINUTE = Duration(1, "m")


def requests(limit: int, scope: str = "vk:k1", window: Duration = MINUTE) -> RateLimitSpec:
    return RateLimitSpec(scope, request_max_limit=limit, request_reset_duration=window)


def tokens(limit: int, scope: str = "vk:k1", window: Duration = MINUTE) -> RateLimitSpec:
    return RateLimitSpec(scope, token_max_limit=limit, token_reset_duration=window)


def admit(limiter: RateLimiter, specs: list[RateLimitSpec], now: float, n: int = 0) -> Permit:
    outcome = limiter.acquire(specs, n, now)
    assert isinstance(outcome, Permit), outcome
    return outcome


def refuse(limiter: RateLimiter, specs: list[RateLimitSpec], now: float, n: int = 0) -> RateLimited:
    outcome = limiter.acquire(specs, n, now)
    assert isinstance(outcome, RateLimited), outcome
    return outcome


def test_request_limit_with_an_honest_retry_after() -> None:
    limiter, spec = RateLimiter(), requests(3)
    for t in (0.0, 1.0, 2.0):
        admit(limiter, [spec], t)
    hit = refuse(limiter, [spec], 3.0)
    assert (hit.scope, hit.kind, hit.limit, hit.window) == ("vk:k1", "requests", 3, MINUTE)
    # Next window: 3 * (120 - t) / 60 + 1 <= 3 from t = 80.
    assert hit.retry_after == 77
    assert hit.message == "vk:k1: limit of 3 requests per 1 minute reached; retry in 77 s"
    refuse(limiter, [spec], 79.0)
    admit(limiter, [spec], 80.0)


def test_the_previous_window_damps_a_burst_at_the_edge() -> None:
    limiter, spec = RateLimiter(), requests(10)
    for i in range(10):
        admit(limiter, [spec], 59.0 + i / 100)
    assert refuse(limiter, [spec], 60.5).retry_after == 6  # 10 * (120 - t) / 60 + 1 <= 10
    admit(limiter, [spec], 66.5)


def test_concurrency_slots() -> None:
    limiter = RateLimiter()
    spec = RateLimitSpec("team:t1", concurrency_max=2)
    first, _ = admit(limiter, [spec], 0.0), admit(limiter, [spec], 0.0)
    hit = refuse(limiter, [spec], 0.0)
    assert (hit.kind, hit.limit, hit.window, hit.retry_after) == ("concurrency", 2, None, 1)
    limiter.release(first, 0, 1.0)
    limiter.release(first, 0, 1.0)  # idempotent: frees one slot only
    assert limiter.in_flight("team:t1") == 1
    admit(limiter, [spec], 1.0)
    refuse(limiter, [spec], 1.0)


def test_tokens_are_reserved_then_corrected() -> None:
    limiter, spec = RateLimiter(), tokens(1000)
    permit = admit(limiter, [spec], 0.0, 800)
    assert refuse(limiter, [spec], 1.0, 800).kind == "tokens"
    limiter.release(permit, 100, 2.0)
    admit(limiter, [spec], 3.0, 800)


def test_oversized_token_estimate_is_admitted_into_an_empty_window() -> None:
    limiter, spec = RateLimiter(), tokens(1000)
    admit(limiter, [spec], 10.0, 5000)
    hit = refuse(limiter, [spec], 11.0, 5000)
    assert hit.retry_after == 109  # 5000 counted in full: the estimate is zero from t = 120
    refuse(limiter, [spec], 119.5, 5000)
    admit(limiter, [spec], 120.0, 5000)


def test_all_limits_are_checked_at_once_and_the_longest_wait_is_named() -> None:
    limiter = RateLimiter()
    key, team = requests(1), requests(100, "team:t1", Duration(1, "h"))
    admit(limiter, [key, team], 0.0)
    hour = requests(1, "team:t1", Duration(1, "h"))
    hit = refuse(limiter, [key, hour], 1.0)
    assert (hit.scope, hit.window) == ("team:t1", Duration(1, "h"))
    assert limiter.acquire([key, RateLimitSpec("x", concurrency_max=1)], 0, 1.0) == RateLimited(
        "vk:k1", "requests", 1, MINUTE, 119
    )
    assert limiter.in_flight("x") == 0  # a refusal counts nothing


def test_monthly_windows_follow_the_utc_calendar() -> None:
    limiter, spec = RateLimiter(), requests(1, window=Duration(1, "M"))
    jan_31 = datetime(2026, 1, 31, 12, tzinfo=UTC).timestamp()
    admit(limiter, [spec], jan_31)
    hit = refuse(limiter, [spec], jan_31)
    march_1 = datetime(2026, 3, 1, tzinfo=UTC).timestamp()
    assert hit.retry_after == march_1 - jan_31  # at Feb's end January no longer counts
    admit(limiter, [spec], jan_31 + hit.retry_after)


def test_prune_forgets_idle_counters() -> None:
    limiter, spec = RateLimiter(), tokens(10)
    permit = admit(limiter, [spec], 0.0, 5)
    assert limiter.prune(200.0) == 0  # an open permit keeps its counter
    limiter.release(permit, 7, 201.0)
    assert limiter.prune(201.0) == 1
    admit(limiter, [spec], 201.0, 10)


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="reset duration"):
        RateLimitSpec("vk:k1", request_max_limit=5)
    with pytest.raises(ValueError, match="positive"):
        RateLimitSpec("vk:k1", concurrency_max=0)
    limiter = RateLimiter()
    with pytest.raises(ValueError):
        limiter.acquire([], -1, 0.0)
    with pytest.raises(ValueError):
        limiter.release(admit(limiter, [], 0.0), -1, 0.0)


SPECS = [
    RateLimitSpec(
        "vk:k1",
        request_max_limit=5,
        request_reset_duration=MINUTE,
        token_max_limit=1000,
        token_reset_duration=MINUTE,
        concurrency_max=4,
    ),
    RateLimitSpec(
        "team:t1", request_max_limit=8, request_reset_duration=Duration(5, "m"), concurrency_max=6
    ),
    RateLimitSpec("pc:k1:anthropic", token_max_limit=3000, token_reset_duration=Duration(1, "h")),
    requests(3, "vk:k2"),
]
token_estimates = st.one_of(st.integers(0, 200), st.integers(0, 2500))
clock_moves = st.one_of(
    st.floats(0, 30, allow_nan=False),
    st.floats(0, 400, allow_nan=False),
    st.sampled_from([60.0, 300.0]),
)


class RateLimitMachine(RuleBasedStateMachine):
    """Random arrivals, releases (actual == estimate) and clock moves against three scopes."""

    @initialize(start=st.floats(0, 1e9, allow_nan=False))
    def begin(self, start: float) -> None:
        self.limiter = RateLimiter()
        self.now = start
        self.held: dict[int, tuple[Permit, list[RateLimitSpec]]] = {}
        self.admitted: dict[tuple[str, str], list[tuple[float, int]]] = defaultdict(list)

    @rule(chosen=st.sets(st.sampled_from(range(len(SPECS))), min_size=1), n=token_estimates)
    def acquire(self, chosen: set[int], n: int) -> None:
        specs = [SPECS[i] for i in sorted(chosen)]
        outcome = self.limiter.acquire(specs, n, self.now)
        if isinstance(outcome, Permit):
            self.held[outcome.id] = (outcome, specs)
            for spec in specs:
                self.admitted[spec.scope, "requests"].append((self.now, 1))
                self.admitted[spec.scope, "tokens"].append((self.now, n))
            self.check_estimates(specs)
            return
        assert outcome.retry_after >= 1
        if outcome.kind == "concurrency":
            return
        later = copy.deepcopy(self.limiter).acquire(specs, n, self.now + outcome.retry_after)
        assert isinstance(later, Permit) or later.kind == "concurrency"
        if outcome.retry_after > 1:
            sooner = copy.deepcopy(self.limiter).acquire(
                specs, n, self.now + outcome.retry_after - 1
            )
            assert isinstance(sooner, RateLimited) and sooner.kind != "concurrency"

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        permit, _ = self.held.pop(data.draw(st.sampled_from(sorted(self.held))))
        self.limiter.release(permit, permit.tokens_estimate, self.now)

    @rule(seconds=clock_moves)
    def advance(self, seconds: float) -> None:
        self.now += seconds

    def check_estimates(self, specs: list[RateLimitSpec]) -> None:
        """The sliding estimate, recomputed from what was admitted, stays within the limit."""
        for spec in specs:
            if spec.request_max_limit is None or spec.request_reset_duration is None:
                continue
            length = spec.request_reset_duration.fixed_length
            assert length is not None
            span = int(length.total_seconds())
            k = int(Fraction(self.now) // span)
            times = [t for t, _ in self.admitted[spec.scope, "requests"]]
            current = sum(1 for t in times if int(Fraction(t) // span) == k)
            previous = sum(1 for t in times if int(Fraction(t) // span) == k - 1)
            estimate = previous * ((k + 1) * span - self.now) / span + current
            assert estimate <= spec.request_max_limit + 1e-9

    @invariant()
    def concurrency_within_limits(self) -> None:
        for spec in SPECS:
            if spec.concurrency_max is None:
                continue  # only limited scopes are counted
            running = sum(1 for _, specs in self.held.values() if spec in specs)
            assert running == self.limiter.in_flight(spec.scope) <= spec.concurrency_max

    @invariant()
    def each_aligned_window_within_its_limit(self) -> None:
        for spec in SPECS:
            for kind, limit, window in (
                ("requests", spec.request_max_limit, spec.request_reset_duration),
                ("tokens", spec.token_max_limit, spec.token_reset_duration),
            ):
                if limit is None or window is None or window.fixed_length is None:
                    continue
                span = int(window.fixed_length.total_seconds())
                per_window: dict[int, list[int]] = defaultdict(list)
                for t, amount in self.admitted[spec.scope, kind]:
                    per_window[int(Fraction(t) // span)].append(amount)
                for amounts in per_window.values():
                    # One estimate above the whole limit may enter an empty window, alone.
                    assert sum(amounts) <= limit or sum(a > 0 for a in amounts) == 1


TestRateLimitMachine = RateLimitMachine.TestCase
TestRateLimitMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
