"""Request, token and concurrency limits, in memory; time is passed in as float seconds.

Requests and tokens use the sliding-window counter (the approximation Cloudflare describes):
time is cut into fixed windows of the limit's duration, aligned to multiples of it from time
zero, and the usage at ``t`` is estimated as::

    previous_window_count * (fraction of the current window still to come) + current_count

A request is admitted when ``estimate + amount <= limit``. What that guarantees, exactly:

- each aligned window counts at most ``limit`` (requests; tokens as estimated at admission and
  corrected to the actual count by `RateLimiter.release`);
- at each admission the weighted estimate, including the new amount, is at most ``limit``;
- so any interval one window long holds fewer than ``2 * limit``; bursts at a window edge are
  damped, unlike with plain fixed windows.

A token estimate above the whole limit is admitted when the estimate is exactly zero (nothing
counted in this or the previous window), so it is not refused forever; it then counts in full.
``M Q Y`` windows are calendar months in UTC and need `now` to be Unix epoch seconds;
``m h d w`` windows work with any clock (monotonic is fine). Concurrency is checked after the
request and token limits, so a refusal names a time limit when one is hit.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from tollway.governance.windows import Duration, window_bounds

Kind = Literal["requests", "tokens", "concurrency"]
_MICROSECOND: Final = timedelta(microseconds=1)
_MAX_NUDGES: Final = 100  # float rounding moves retry_after by a second or two at most


@dataclass(frozen=True, slots=True)
class RateLimitSpec:
    """One scope's limits; None disables that kind. ``RateLimitSpec("vk:k_1", 60, 1m)``."""

    scope: str
    request_max_limit: int | None = None
    request_reset_duration: Duration | None = None
    token_max_limit: int | None = None
    token_reset_duration: Duration | None = None
    concurrency_max: int | None = None

    def __post_init__(self) -> None:
        pairs = (
            ("request", self.request_max_limit, self.request_reset_duration),
            ("token", self.token_max_limit, self.token_reset_duration),
            ("concurrency", self.concurrency_max, True),
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
    """Refused: which limit was hit and when to retry (whole seconds, at least 1).

    For concurrency the wait depends on other requests finishing, so `retry_after` is 1.
    """

    scope: str
    kind: Kind
    limit: int
    window: Duration | None
    retry_after: int

    @property
    def message(self) -> str:
        if self.window is None:
            return f"{self.scope}: at most {self.limit} requests at once; retry shortly"
        return (
            f"{self.scope}: limit of {self.limit} {self.kind} per {self.window.describe()} "
            f"reached; retry in {self.retry_after} s"
        )


_Key = tuple[str, Kind, Duration]
_Hold = tuple[_Key, float, float, int]  # counter, window start and end, tokens counted


@dataclass(frozen=True, slots=True)
class _View:
    """A counter as it stands at some time: its window and the two counts."""

    start: float
    end: float
    previous: int
    current: int

    def estimate(self, t: float) -> float:
        if not self.previous:
            return float(self.current)
        still_to_come = min(1.0, (self.end - t) / (self.end - self.start))
        return self.previous * still_to_come + self.current


@dataclass(frozen=True, slots=True)
class _Check:
    key: _Key
    limit: int
    amount: int

    def fits(self, view: _View, t: float) -> bool:
        return view.estimate(t) + min(self.amount, self.limit) <= self.limit


class RateLimiter:
    """In-memory limits for one gateway process.

    Usage: ``outcome = limiter.acquire(specs, tokens_estimate, now)``; if it is a `Permit`,
    call ``limiter.release(outcome, actual_tokens, now)`` when the request ends.
    """

    def __init__(self) -> None:
        self._counters: dict[_Key, _View] = {}
        self._running: dict[str, int] = {}
        self._holds: dict[int, tuple[tuple[_Hold, ...], tuple[str, ...]]] = {}
        self._ids = itertools.count(1)

    def acquire(
        self, specs: Sequence[RateLimitSpec], tokens_estimate: int, now: float
    ) -> Permit | RateLimited:
        """Admit against every spec and kind at once, or refuse and count nothing."""
        if tokens_estimate < 0:
            raise ValueError("tokens_estimate must not be negative")
        checks, concurrency = self._plan(specs, tokens_estimate)
        failed = [c for c in checks if not c.fits(self._view(c.key, now), now)]
        if failed:
            return self._refusal(checks, failed, now)
        for scope, limit in concurrency.items():
            if self._running.get(scope, 0) >= limit:
                return RateLimited(scope, "concurrency", limit, None, 1)
        holds = []
        for check in checks:
            view = self._view(check.key, now)
            self._counters[check.key] = _View(
                view.start, view.end, view.previous, view.current + check.amount
            )
            if check.key[1] == "tokens":
                holds.append((check.key, view.start, view.end, check.amount))
        for scope in concurrency:
            self._running[scope] = self._running.get(scope, 0) + 1
        permit = Permit(next(self._ids), tokens_estimate, now)
        self._holds[permit.id] = (tuple(holds), tuple(concurrency))
        return permit

    def release(self, permit: Permit, actual_tokens: int, now: float) -> None:
        """Correct token counts to `actual_tokens` and free the concurrency slots.

        The correction lands in the window the estimate was counted in if that is still the
        current or previous one; older windows no longer matter. Releasing twice is a no-op.
        """
        if actual_tokens < 0:
            raise ValueError("actual_tokens must not be negative")
        held = self._holds.pop(permit.id, None)
        if held is None:
            return
        tokens, scopes = held
        for key, start, end, estimate in tokens:
            if key not in self._counters:
                continue  # pruned: its windows are long gone
            view = self._view(key, now)
            delta = actual_tokens - estimate
            if start == view.start:
                view = _View(view.start, view.end, view.previous, max(0, view.current + delta))
            elif end == view.start:
                view = _View(view.start, view.end, max(0, view.previous + delta), view.current)
            self._counters[key] = view
        for scope in scopes:
            left = self._running.get(scope, 0) - 1
            if left > 0:
                self._running[scope] = left
            else:
                self._running.pop(scope, None)

    def in_flight(self, scope: str) -> int:
        return self._running.get(scope, 0)

    def prune(self, now: float) -> int:
        """Forget idle counters (estimate zero, no open permit); returns how many went."""
        held = {hold[0] for tokens, _ in self._holds.values() for hold in tokens}
        idle = [
            k for k in self._counters if k not in held and self._view(k, now).estimate(now) == 0
        ]
        for key in idle:
            del self._counters[key]
        return len(idle)

    def _plan(
        self, specs: Sequence[RateLimitSpec], tokens: int
    ) -> tuple[list[_Check], dict[str, int]]:
        """One check per distinct counter (the tightest limit wins) and concurrency caps."""
        checks: dict[_Key, _Check] = {}
        concurrency: dict[str, int] = {}
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
            if spec.concurrency_max is not None:
                cap = concurrency.get(spec.scope, spec.concurrency_max)
                concurrency[spec.scope] = min(cap, spec.concurrency_max)
        return list(checks.values()), concurrency

    def _view(self, key: _Key, t: float) -> _View:
        """The counter rolled forward to `t`, without storing it."""
        view = self._counters.get(key)
        if view is not None and t < view.end:
            return view
        start, end = _bounds(key[2], t)
        if view is None or start != view.end:
            return _View(start, end, 0, 0)
        return _View(start, end, view.current, 0)

    def _refusal(self, checks: list[_Check], failed: list[_Check], now: float) -> RateLimited:
        waits = [self._wait(check, now) for check in failed]
        worst = max(range(len(failed)), key=lambda i: waits[i])
        retry = max(1, math.ceil(waits[worst]))
        # The float estimate decides admission; make retry_after agree with it exactly.
        for _ in range(_MAX_NUDGES):
            if self._all_fit(checks, now + retry):
                break
            retry += 1
        while retry > 1 and self._all_fit(checks, now + retry - 1):
            retry -= 1
        scope, kind, duration = failed[worst].key
        return RateLimited(scope, kind, failed[worst].limit, duration, retry)

    def _all_fit(self, checks: list[_Check], t: float) -> bool:
        return all(c.fits(self._view(c.key, t), t) for c in checks)

    def _wait(self, check: _Check, now: float) -> float:
        """Seconds until `check` fits if nothing else arrives, from the estimate's formula."""
        view = self._view(check.key, now)
        room = check.limit - min(check.amount, check.limit)
        if view.current <= room:  # fits in this window once `previous` has decayed enough
            if not view.previous:
                return 0.0
            span = view.end - view.start
            return view.end - span * (room - view.current) / view.previous - now
        # Only after this window ends, once `current` (the next `previous`) has decayed.
        start, end = view.end, _bounds(check.key[2], view.end)[1]
        return end - (end - start) * room / view.current - now


def _bounds(duration: Duration, t: float) -> tuple[float, float]:
    """The aligned window ``[start, end)`` containing `t`, in seconds."""
    length = duration.fixed_length
    if length is not None:
        span = length.total_seconds()
        k = math.floor(t / span)
        if k * span > t:  # float division rounded up across a boundary
            k -= 1
        elif (k + 1) * span <= t:
            k += 1
        return k * span, (k + 1) * span
    instant = datetime.fromtimestamp(t, UTC)
    start, end = window_bounds(duration, instant, calendar_aligned=True, tz=UTC, anchor=instant)
    if t < start.timestamp():  # fromtimestamp rounded to the microsecond, across a boundary
        start, end = window_bounds(
            duration, start - _MICROSECOND, calendar_aligned=True, tz=UTC, anchor=instant
        )
    return start.timestamp(), end.timestamp()
