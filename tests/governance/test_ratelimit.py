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


def test_one_per_minute_means_come_back_when_the_minute_is_over() -> None:
    """The complaint: a 1/min limit said "retry in 85-106 s". Now: 60 s after the last one."""
    limiter, spec = RateLimiter(), requests(1)
    admit(limiter, [spec], 10.0)
    hit = refuse(limiter, [spec], 30.0)
    assert (hit.scope, hit.kind, hit.limit, hit.window) == ("vk:k1", "requests", 1, MINUTE)
    assert hit.retry_after == 40
    assert hit.message == "vk:k1: limit of 1 requests per 1 minute reached; retry in 40 s"
    refuse(limiter, [spec], 69.5)
    admit(limiter, [spec], 70.0)


def test_a_burst_of_the_limit_then_one_every_window_over_limit() -> None:
    limiter, spec = RateLimiter(), requests(3)
    for t in (0.0, 1.0, 2.0):
        admit(limiter, [spec], t)
    hit = refuse(limiter, [spec], 3.0)
    assert hit.retry_after == 17  # the bucket refills one every 20 s: the first at t = 20
    refuse(limiter, [spec], 19.9)
    admit(limiter, [spec], 20.0)
    assert refuse(limiter, [spec], 20.0).retry_after == 20


def test_tokens_are_reserved_then_corrected() -> None:
    limiter, spec = RateLimiter(), tokens(1000)
    permit = admit(limiter, [spec], 0.0, 800)
    assert refuse(limiter, [spec], 1.0, 800).kind == "tokens"
    limiter.release(permit, 100, 2.0)
    admit(limiter, [spec], 3.0, 800)


def test_actual_tokens_above_the_estimate_hold_the_next_request_back() -> None:
    """Output is only known at the end: the correction counts it against what follows."""
    limiter, spec = RateLimiter(), tokens(1000)
    permit = admit(limiter, [spec], 0.0, 100)
    limiter.release(permit, 1600, 1.0)  # 1,500 tokens more than estimated
    hit = refuse(limiter, [spec], 1.0, 100)
    assert hit.retry_after == 41  # 1,600 of a 1,000/min bucket: room for 100 at t = 42
    admit(limiter, [spec], 42.0, 100)


def test_oversized_token_estimate_is_admitted_into_an_idle_counter() -> None:
    limiter, spec = RateLimiter(), tokens(1000)
    admit(limiter, [spec], 10.0, 5000)
    hit = refuse(limiter, [spec], 11.0, 5000)
    assert hit.retry_after == 299  # 5000 counted in full: idle again at t = 310
    refuse(limiter, [spec], 309.5, 5000)
    admit(limiter, [spec], 310.0, 5000)


def test_all_limits_are_checked_at_once_and_the_longest_wait_is_named() -> None:
    limiter = RateLimiter()
    key, hour = requests(1), requests(1, "team:t1", Duration(1, "h"))
    admit(limiter, [key, hour], 0.0)
    hit = refuse(limiter, [key, hour], 1.0)
    assert (hit.scope, hit.window, hit.retry_after) == ("team:t1", Duration(1, "h"), 3599)
    other = requests(5, "vk:k2")
    assert limiter.acquire([key, other], 0, 1.0) == RateLimited("vk:k1", "requests", 1, MINUTE, 59)
    for _ in range(5):
        admit(limiter, [other], 1.0)  # the refusal counted nothing for vk:k2


def test_monthly_windows_follow_the_utc_calendar() -> None:
    limiter, spec = RateLimiter(), requests(1, window=Duration(1, "M"))
    jan_31 = datetime(2026, 1, 31, 12, tzinfo=UTC).timestamp()
    admit(limiter, [spec], jan_31)
    hit = refuse(limiter, [spec], jan_31)
    feb_1 = datetime(2026, 2, 1, tzinfo=UTC).timestamp()
    assert hit.retry_after == feb_1 - jan_31  # a monthly quota resets on the 1st
    admit(limiter, [spec], feb_1)


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
        RateLimitSpec("vk:k1", request_max_limit=0, request_reset_duration=MINUTE)
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
    ),
    RateLimitSpec("team:t1", request_max_limit=8, request_reset_duration=Duration(5, "m")),
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
    """Random arrivals, releases (actual tokens drawn freely) and clock moves."""

    @initialize(start=st.floats(0, 1e9, allow_nan=False))
    def begin(self, start: float) -> None:
        self.limiter = RateLimiter()
        self.now = start
        self.held: dict[int, tuple[Permit, list[RateLimitSpec]]] = {}
        # (scope, kind) -> [(time, amount)], corrected to actual tokens on release
        self.admitted: dict[tuple[str, str], list[list[float]]] = defaultdict(list)
        self.entries: dict[int, list[list[float]]] = {}

    @rule(chosen=st.sets(st.sampled_from(range(len(SPECS))), min_size=1), n=token_estimates)
    def acquire(self, chosen: set[int], n: int) -> None:
        specs = [SPECS[i] for i in sorted(chosen)]
        outcome = self.limiter.acquire(specs, n, self.now)
        if isinstance(outcome, Permit):
            self.held[outcome.id] = (outcome, specs)
            self.entries[outcome.id] = []
            for spec in specs:
                self.admitted[spec.scope, "requests"].append([self.now, 1])
                entry = [self.now, n]
                self.admitted[spec.scope, "tokens"].append(entry)
                self.entries[outcome.id].append(entry)
            return
        assert outcome.retry_after >= 1
        length = outcome.window.fixed_length
        if outcome.kind == "requests" and length is not None:
            assert outcome.retry_after <= length.total_seconds()  # never longer than the window
        later = copy.deepcopy(self.limiter).acquire(specs, n, self.now + outcome.retry_after)
        assert isinstance(later, Permit)
        if outcome.retry_after > 1:
            sooner = copy.deepcopy(self.limiter).acquire(
                specs, n, self.now + outcome.retry_after - 1
            )
            assert isinstance(sooner, RateLimited)

    @precondition(lambda self: self.held)
    @rule(data=st.data(), actual=st.integers(0, 3000))
    def release(self, data: st.DataObject, actual: int) -> None:
        permit_id = data.draw(st.sampled_from(sorted(self.held)))
        permit, _ = self.held.pop(permit_id)
        self.limiter.release(permit, actual, self.now)
        for entry in self.entries.pop(permit_id):
            entry[1] = actual

    @rule(seconds=clock_moves)
    def advance(self, seconds: float) -> None:
        self.now += seconds

    @invariant()
    def admitted_within_the_bucket_bound(self) -> None:
        """Requests admitted in any interval of length L: at most N + N * L / T."""
        for spec in SPECS:
            if spec.request_max_limit is None or spec.request_reset_duration is None:
                continue
            length = spec.request_reset_duration.fixed_length
            assert length is not None
            span, limit = Fraction(length.total_seconds()), spec.request_max_limit
            times = sorted(Fraction(t) for t, _ in self.admitted[spec.scope, "requests"])
            for i, first in enumerate(times):
                for j in range(i, len(times)):
                    assert j - i + 1 <= limit + limit * (times[j] - first) / span + 1


TestRateLimitMachine = RateLimitMachine.TestCase
TestRateLimitMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
