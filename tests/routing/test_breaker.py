"""Circuit breakers: closed -> open -> half-open -> closed or open again (doubled)."""

from __future__ import annotations

from tollway.routing.breaker import Breakers
from tollway.routing.settings import BreakerSettings

C = ("anthropic", "main", "claude-sonnet-4-5")


def _breakers() -> Breakers:
    return Breakers(BreakerSettings(failures=3, cooldown_s=10, max_cooldown_s=25))


def test_opens_after_failures_in_a_row_and_a_success_resets() -> None:
    b = _breakers()
    b.failure(C, 0.0, "status 529")
    b.failure(C, 1.0, "status 529")
    b.success(C)
    b.failure(C, 2.0, "status 529")
    b.failure(C, 3.0, "status 529")
    assert b.state(C, 3.0) == "closed"
    b.failure(C, 4.0, "status 529")
    assert b.state(C, 4.0) == "open" and b.reopens_at(C) == 14.0
    view = b.view(C, 5.0)
    assert (view.state, view.failures, view.reopens_in_s, view.last_error) == (
        "open", 3, 9.0, "status 529")  # fmt: skip


def test_half_open_lets_one_probe_through() -> None:
    b = _breakers()
    for t in (0.0, 1.0, 2.0):
        b.failure(C, t, "timeout")
    assert b.state(C, 11.9) == "open" and b.state(C, 12.0) == "half_open"
    b.begin(C, 12.0)
    assert b.state(C, 12.5) == "open"  # the probe is out: others wait
    b.success(C)
    assert b.state(C, 12.5) == "closed"


def test_a_failed_probe_reopens_with_a_doubled_capped_cooldown() -> None:
    b = _breakers()
    for t in (0.0, 1.0, 2.0):
        b.failure(C, t, "timeout")
    b.begin(C, 12.0)
    b.failure(C, 12.0, "timeout")
    assert b.state(C, 31.9) == "open" and b.reopens_at(C) == 32.0
    b.begin(C, 32.0)
    b.failure(C, 32.0, "timeout")
    assert b.reopens_at(C) == 57.0  # 40 capped at 25


def test_a_429_retry_after_opens_at_once_for_that_long() -> None:
    b = _breakers()
    b.failure(C, 0.0, "status 429", retry_after=7.0)
    assert b.state(C, 6.9) == "open" and b.state(C, 7.0) == "half_open"
    b.failure(("anthropic", "main", "claude-haiku-4-5"), 0.0, "status 429", retry_after=999.0)
    assert b.reopens_at(("anthropic", "main", "claude-haiku-4-5")) == 25.0  # capped


def test_circuits_are_per_provider_key_and_model() -> None:
    b = _breakers()
    for t in (0.0, 1.0, 2.0):
        b.failure(C, t, "status 529")
    assert b.state(("anthropic", "other", C[2]), 3.0) == "closed"
    assert b.state(("anthropic", "main", "claude-haiku-4-5"), 3.0) == "closed"
    assert b.state(("bedrock", "main", C[2]), 3.0) == "closed"
