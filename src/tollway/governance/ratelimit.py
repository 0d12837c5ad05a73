"""Request and token limits, in memory; time is passed in as float seconds.

A limit of N per window T of fixed length (``m h d w``) is a bucket of N that refills
continuously at N/T: a burst of N, then one more every T/N. It is kept as one number per
counter, the theoretical arrival time (GCRA, the algorithm behind Redis-cell and many API
gateways)::

    admit `a` at t  if  max(tat, t) + a * T/N - t <= T,  then  tat = max(tat, t) + a * T/N

so ``retry_after`` is exact and never longer than the window: a request refused under
"1 per minute" is told to come back when that minute has passed since the last one, not
in the 85-106 s a sliding-window estimate gave. What it guarantees:

- the amount admitted in any interval of length L is at most ``N + N * L / T``
  (so under 2N in any window of length T; N per T sustained);
- a request is admitted at ``now + retry_after`` if nothing else arrives, and not a
  second earlier.

Calendar windows (``M Q Y``) count in the UTC calendar period and reset at its end, as a
monthly quota is expected to; their ``retry_after`` is the time to the reset.

Tokens are counted when a request is admitted (an estimate) and corrected to the actual
count when it ends (`RateLimiter.release`). An amount above the whole limit is admitted
into an idle counter (it would otherwise never fit) and then counts in full. Concurrency
is not here: it queues (pipeline/slots.py).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from tollway.governance.windows import Duration, window_bounds

Kind = Literal["requests", "tokens"]
_MICROSECOND: Final = timedelta(microseconds=1)
_EPSILON: Final = 1e-9  # float slack on the admission test; far below a second


@dataclass(frozen=True, slots=True)
class RateLimitSpec:
    """One scope's limits; None disables that kind. ``RateLimitSpec("vk:k_1", 60, 1m)``."""

    scope: str
    request_max_limit: int | None = None
    request_reset_duration: Duration | None = None
    token_max_limit: int | None = None
    token_reset_duration: Duration | None = None

    def __post_init__(self) -> None:
        pairs = (
            ("request", self.request_max_limit, self.request_reset_duration),
            ("token", self.token_max_limit, self.token_reset_duration),
        )
        for kind, limit, duration in pairs:
            if limit is not None and (type(limit) is not int or limit < 1):
                raise ValueError(f"{self.scope}: {kind} limit must be a positive integer")
            if limit is not None and duration is None:
                raise ValueError(f"{self.scope}: {kind} limit needs a reset duration")


@dataclass(frozen=True, slots=True)
class Permit:
    """An admitted request; hand it back to `RateLimiter.release` exactly once."""

    id: int
    tokens_estimate: int
    acquired_at: float


@dataclass(frozen=True, slots=True)
class RateLimited:
    """Refused: which limit was hit and when to retry (whole seconds, at least 1)."""

    scope: str
    kind: Kind
    limit: int
    window: Duration
    retry_after: int

    @property
    def message(self) -> str:
        return (
            f"{self.scope}: limit of {self.limit} {self.kind} per {self.window.describe()} "
            f"reached; retry in {self.retry_after} s"
        )


_Key = tuple[str, Kind, Duration]


@dataclass(slots=True)
class _Counter:
    """GCRA state (`tat`) for a fixed window; for a calendar one, the period and its count."""

    tat: float = 0.0
    period_start: float = 0.0
    period_end: float = 0.0
    count: int = 0


@dataclass(frozen=True, slots=True)
class _Check:
    key: _Key
    limit: int
    amount: int


class RateLimiter:
    """In-memory limits for one gateway process.

    Usage: ``outcome = limiter.acquire(specs, tokens_estimate, now)``; if it is a `Permit`,
    call ``limiter.release(outcome, actual_tokens, now)`` when the request ends.
    """

    def __init__(self) -> None:
        self._counters: dict[_Key, _Counter] = {}
        self._holds: dict[int, tuple[tuple[tuple[_Key, int, float], ...], int]] = {}
        self._ids = itertools.count(1)

    def acquire(
        self, specs: Sequence[RateLimitSpec], tokens_estimate: int, now: float
    ) -> Permit | RateLimited:
        """Admit against every spec and kind at once, or refuse and count nothing."""
        if tokens_estimate < 0:
            raise ValueError("tokens_estimate must not be negative")
        checks = _plan(specs, tokens_estimate)
        waits = [self._wait(c, now) for c in checks]
        if any(w > _EPSILON for w in waits):
            worst = max(range(len(checks)), key=lambda i: waits[i])
            scope, kind, duration = checks[worst].key
            retry = max(1, math.ceil(waits[worst] - _EPSILON))
            return RateLimited(scope, kind, checks[worst].limit, duration, retry)
        holds = []
        for check in checks:
            start = self._take(check, now)
            if check.key[1] == "tokens":
                holds.append((check.key, check.limit, start))
        permit = Permit(next(self._ids), tokens_estimate, now)
        self._holds[permit.id] = (tuple(holds), tokens_estimate)
        return permit

    def release(self, permit: Permit, actual_tokens: int, now: float) -> None:
        """Correct token counts from the estimate to `actual_tokens`; twice is a no-op.

        A calendar counter is corrected only while its period is the one the estimate
        was counted in."""
        if actual_tokens < 0:
            raise ValueError("actual_tokens must not be negative")
        held = self._holds.pop(permit.id, None)
        if held is None:
            return
        tokens, estimate = held
        delta = actual_tokens - estimate
        if delta == 0:
            return
        for key, limit, period_start in tokens:
            counter = self._counters.get(key)
            if counter is None:
                continue  # pruned: idle for longer than its window
            length = key[2].fixed_length
            if length is not None:
                counter.tat = max(counter.tat + delta * length.total_seconds() / limit, 0.0)
            elif counter.period_start == period_start:
                counter.count = max(0, counter.count + delta)

    def prune(self, now: float) -> int:
        """Forget counters that no longer hold anything back; returns how many went."""
        held = {hold[0] for tokens, _ in self._holds.values() for hold in tokens}
        idle = [
            k
            for k, c in self._counters.items()
            if k not in held and (c.tat <= now if k[2].fixed_length else c.period_end <= now)
        ]
        for key in idle:
            del self._counters[key]
        return len(idle)

    def _wait(self, check: _Check, now: float) -> float:
        """Seconds until `check` fits if nothing else arrives (0 when it fits now)."""
        counter = self._counters.get(check.key)
        length = check.key[2].fixed_length
        if length is not None:
            span = length.total_seconds()
            tat = max(counter.tat if counter else 0.0, now)
            if tat <= now:  # idle: anything fits, an oversized amount counts in full
                return 0.0
            after = tat + min(check.amount, check.limit) * span / check.limit
            return max(0.0, after - now - span)
        start, end = _calendar(check.key[2], now)
        used = counter.count if counter and counter.period_start == start else 0
        if used == 0 or used + check.amount <= check.limit:
            return 0.0
        return end - now

    def _take(self, check: _Check, now: float) -> float:
        counter = self._counters.setdefault(check.key, _Counter())
        length = check.key[2].fixed_length
        if length is not None:
            per_unit = length.total_seconds() / check.limit
            counter.tat = max(counter.tat, now) + check.amount * per_unit
            return 0.0
        start, end = _calendar(check.key[2], now)
        if counter.period_start != start:
            counter.period_start, counter.period_end, counter.count = start, end, 0
        counter.count += check.amount
        return start


def _plan(specs: Sequence[RateLimitSpec], tokens: int) -> list[_Check]:
    """One check per distinct counter; the tightest limit wins."""
    checks: dict[_Key, _Check] = {}
    for spec in specs:
        kinds: tuple[tuple[Kind, int | None, Duration | None, int], ...] = (
            ("requests", spec.request_max_limit, spec.request_reset_duration, 1),
            ("tokens", spec.token_max_limit, spec.token_reset_duration, tokens),
        )
        for kind, limit, duration, amount in kinds:
            if limit is None or duration is None:
                continue
            key: _Key = (spec.scope, kind, duration)
            if key not in checks or limit < checks[key].limit:
                checks[key] = _Check(key, limit, amount)
    return list(checks.values())


def _calendar(duration: Duration, t: float) -> tuple[float, float]:
    """The UTC calendar period ``[start, end)`` containing `t`, in seconds."""
    instant = datetime.fromtimestamp(t, UTC)
    start, end = window_bounds(duration, instant, calendar_aligned=True, tz=UTC, anchor=instant)
    if t < start.timestamp():  # fromtimestamp rounded to the microsecond, across a boundary
        start, end = window_bounds(
            duration, start - _MICROSECOND, calendar_aligned=True, tz=UTC, anchor=instant
        )
    return start.timestamp(), end.timestamp()
