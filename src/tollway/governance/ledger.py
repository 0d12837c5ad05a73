"""Hard-cap budgets: reserve a request's worst-case cost before it runs, settle after.

`Ledger.reserve` reserves in every budget that applies to a request, or in none; it is
synchronous, so no two requests can pass the same check.

Invariant: ``spent + reserved <= max_limit + top-ups`` in each budget's current window while
requests settle at most what they reserved. ``reserved`` (in flight) carries over when a window
rolls, and the actual cost is charged to the window the request settles in. The one way past
the cap: an amount reserved under a top-up or a higher limit that has since gone stays in flight
until it settles. No I/O: the caller persists `Ledger.drain_dirty` and restores with `load`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tollway.governance.windows import Duration, window_bounds

_ZERO: Final = Decimal(0)
_CENT: Final = Decimal("0.01")
_SCOPE_NAMES: Final = {"vk": "virtual key", "pc": "provider"}  # others: the prefix itself


@dataclass(frozen=True, slots=True)
class BudgetKey:
    """Which budget: ``BudgetKey("team:t_1", "b_9")``."""

    scope: str
    budget_id: str


@dataclass(frozen=True, slots=True)
class BudgetSpec:
    """One budget's rules. `duration` None means it never resets (session budgets); its
    single window starts at `anchor`. `tz` names the zone for calendar windows."""

    budget_id: str
    scope: str
    max_limit: Decimal
    duration: Duration | None
    calendar_aligned: bool
    anchor: datetime
    tz: str = "UTC"
    shrink_to_fit: bool = True  # a request may be shrunk to fit what is left of it

    def __post_init__(self) -> None:
        _require_money(self.max_limit, "max_limit")
        if self.anchor.tzinfo is None or self.anchor.utcoffset() is None:
            raise ValueError(f"budget {self.budget_id}: anchor must be an aware datetime")
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"budget {self.budget_id}: unknown time zone {self.tz!r}") from exc

    @property
    def key(self) -> BudgetKey:
        return BudgetKey(self.scope, self.budget_id)

    def window(self, now: datetime) -> tuple[datetime, datetime | None]:
        """The current ``[start, end)`` in UTC; end None for a budget that never resets."""
        if self.duration is None:
            return self.anchor.astimezone(UTC), None
        return window_bounds(
            self.duration,
            now,
            calendar_aligned=self.calendar_aligned,
            tz=ZoneInfo(self.tz),
            anchor=self.anchor,
        )


@dataclass(frozen=True, slots=True)
class Reservation:
    """Money held for one request in every budget in `keys`; settle or release it once."""

    id: int
    amount: Decimal
    keys: tuple[BudgetKey, ...]
    window_starts: tuple[datetime, ...]  # one per key, the window it was reserved in


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a reservation was refused: the first budget that would overflow."""

    key: BudgetKey
    duration: Duration | None
    requested: Decimal
    spent: Decimal
    reserved: Decimal
    limit: Decimal  # max_limit plus this window's top-ups
    resets_at: datetime | None

    @property
    def message(self) -> str:
        """E.g. ``team budget 1d: spent $4.20 of $5.00, resets 2026-11-24T00:00Z``."""
        prefix = self.key.scope.partition(":")[0]
        return self.describe(_SCOPE_NAMES.get(prefix, prefix))

    def describe(self, owner: str) -> str:
        """The message with the budget's owner named, e.g. ``team 'platform'``."""
        label = f"{owner} budget"
        if self.duration is not None:
            label += f" {self.duration}"
        text = f"{label}: spent {money(self.spent)} of {money(self.limit)}"
        if self.reserved:
            text += f" ({money(self.reserved)} more in flight)"
        if self.resets_at is None:
            return text + ", does not reset"
        return text + f", resets {_timestamp(self.resets_at)}"


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """One budget's current window, for the status API."""

    budget_id: str
    scope: str
    limit: Decimal
    credit: Decimal  # top-ups in this window
    spent: Decimal
    reserved: Decimal
    remaining: Decimal  # limit + credit - spent - reserved, never negative
    window_start: datetime
    window_end: datetime | None


@dataclass(slots=True, eq=False)
class _Account:
    """Mutable state of one budget; only the Ledger touches it."""

    spec: BudgetSpec
    pending: tuple[datetime, Decimal, Decimal] | None = None  # from `Ledger.load`
    start: datetime | None = None
    end: datetime | None = None
    stale: bool = False  # the window rules changed: recompute on the next touch
    spent: Decimal = _ZERO
    credit: Decimal = _ZERO
    reserved: Decimal = _ZERO
    inflight: dict[int, Decimal] = field(default_factory=dict)
    dirty: bool = False

    def touch(self, now: datetime) -> datetime:
        """Roll to the window containing `now` (never backwards); return its start."""
        if self.stale or self.start is None or (self.end is not None and now >= self.end):
            start, end = self.spec.window(now)
            if start != self.start:
                self.spent = self.credit = _ZERO
            self.start, self.end, self.stale = start, end, False
        if self.pending is not None:
            when, spent, credit = self.pending
            self.pending = None
            if when == self.start:
                self.spent, self.credit = max(self.spent, spent), max(self.credit, credit)
        return self.start

    def limit(self) -> Decimal:
        return self.spec.max_limit + self.credit

    def status(self) -> BudgetStatus:
        assert self.start is not None
        remaining = max(_ZERO, self.limit() - self.spent - self.reserved)
        spec = self.spec
        return BudgetStatus(
            spec.budget_id,
            spec.scope,
            spec.max_limit,
            self.credit,
            self.spent,
            self.reserved,
            remaining,
            self.start,
            self.end,
        )

    def refusal(self, amount: Decimal) -> Refusal:
        spec = self.spec
        return Refusal(
            spec.key, spec.duration, amount, self.spent, self.reserved, self.limit(), self.end
        )


class Ledger:
    """In-memory budget state for one gateway process.

    Usage: ``outcome = ledger.reserve(specs, worst_case, now)``; if it is a `Reservation`,
    call ``ledger.settle(outcome, actual, now)`` when the request ends (or ``release``).
    """

    def __init__(self) -> None:
        self._accounts: dict[str, _Account] = {}
        self._pending: dict[str, tuple[datetime, Decimal, Decimal]] = {}
        self._open: dict[int, Reservation] = {}
        self._ids = itertools.count(1)

    def register(self, spec: BudgetSpec) -> None:
        """Add or update a budget. Spend is kept unless its window changes."""
        account = self._accounts.get(spec.budget_id)
        if account is None:
            self._accounts[spec.budget_id] = _Account(spec, self._pending.pop(spec.budget_id, None))
            return
        old = account.spec
        if old != spec:
            if replace(spec, scope=old.scope, max_limit=old.max_limit) != old:
                account.stale = True  # the window rules changed
            account.spec = spec

    def forget(self, budget_id: str) -> None:
        """Drop a deleted budget; its open reservations settle without it."""
        self._accounts.pop(budget_id, None)
        self._pending.pop(budget_id, None)

    def reserve(
        self, specs: Sequence[BudgetSpec], amount: Decimal, now: datetime
    ) -> Reservation | Refusal:
        """Reserve `amount` in every budget of `specs` at once, or refuse and reserve nothing."""
        _require_money(amount, "amount")
        accounts: list[_Account] = []
        starts: list[datetime] = []
        for spec in specs:
            if any(a.spec.budget_id == spec.budget_id for a in accounts):
                continue
            self.register(spec)
            account = self._accounts[spec.budget_id]
            starts.append(account.touch(now))
            accounts.append(account)
        for account in accounts:
            if account.spent + account.reserved + amount > account.limit():
                return account.refusal(amount)
        keys = tuple(a.spec.key for a in accounts)
        reservation = Reservation(next(self._ids), amount, keys, tuple(starts))
        for account in accounts:
            account.inflight[reservation.id] = amount
            account.reserved += amount
        self._open[reservation.id] = reservation
        return reservation

    def room(self, specs: Sequence[BudgetSpec], now: datetime) -> list[tuple[BudgetSpec, Decimal]]:
        """What each budget of `specs` could still reserve now (never negative)."""
        out = []
        for spec in specs:
            self.register(spec)
            account = self._accounts[spec.budget_id]
            account.touch(now)
            out.append(
                (account.spec, max(_ZERO, account.limit() - account.spent - account.reserved))
            )
        return out

    def settle(
        self, reservation: Reservation, actual: Decimal, now: datetime
    ) -> list[tuple[str, datetime, Decimal]]:
        """Free the reservation and charge `actual` to the window containing `now`.

        `actual` may exceed what was reserved; it is recorded as is. Settling twice is a no-op.
        Returns ``(budget_id, window_start, spent)`` of each budget charged, for a journal.
        """
        _require_money(actual, "actual")
        if self._open.pop(reservation.id, None) is None:
            return []
        charged = []
        for key in reservation.keys:
            account = self._accounts.get(key.budget_id)
            if account is None:
                continue
            held = account.inflight.pop(reservation.id, None)
            if held is not None:
                account.reserved -= held
            start = account.touch(now)
            if actual:
                account.spent += actual
                account.dirty = True
                charged.append((key.budget_id, start, account.spent))
        return charged

    def release(self, reservation: Reservation, now: datetime) -> None:
        """Free the reservation without charging anything (the request cost nothing)."""
        self.settle(reservation, _ZERO, now)

    def open(self) -> list[Reservation]:
        """The reservations not settled yet."""
        return list(self._open.values())

    def pending_start(self, budget_id: str) -> datetime | None:
        """The window start of spend restored by `load` and not applied yet."""
        account = self._accounts.get(budget_id)
        pending = account.pending if account is not None else self._pending.get(budget_id)
        return pending[0] if pending is not None else None

    def load(
        self, budget_id: str, window_start: datetime, spent: Decimal, credit: Decimal = _ZERO
    ) -> None:
        """Restore persisted spend (and top-ups) for one window, typically at start-up.

        Applied when the budget is next touched, and only if `window_start` is then its
        current window; it never lowers spend already counted in memory.
        """
        _require_money(spent, "spent")
        _require_money(credit, "credit")
        restored = (window_start, spent, credit)
        account = self._accounts.get(budget_id)
        if account is None:
            self._pending[budget_id] = restored
        else:
            account.pending = restored

    def status(self, budget_id: str, now: datetime) -> BudgetStatus:
        account = self._account(budget_id)
        account.touch(now)
        return account.status()

    def snapshot(self, now: datetime) -> list[BudgetStatus]:
        """Every known budget at `now`, sorted by budget id."""
        return [self.status(budget_id, now) for budget_id in sorted(self._accounts)]

    def drain_dirty(self) -> list[tuple[str, str, datetime, Decimal]]:
        """``(budget_id, scope, window_start, spent)`` of budgets whose spend changed since the
        last call: the whole value to upsert, not a delta."""
        changed = []
        for account in self._accounts.values():
            if account.dirty and account.start is not None:
                spec = account.spec
                changed.append((spec.budget_id, spec.scope, account.start, account.spent))
            account.dirty = False
        return changed

    def reset(self, budget_id: str, now: datetime) -> datetime:
        """Zero the spend of the current window (in-flight reservations stay); returns its
        start."""
        account = self._account(budget_id)
        start = account.touch(now)
        account.spent = _ZERO
        account.dirty = True
        return start

    def top_up(self, budget_id: str, amount: Decimal, now: datetime) -> None:
        """Raise the limit by `amount` until the current window ends."""
        _require_money(amount, "amount")
        account = self._account(budget_id)
        account.touch(now)
        account.credit += amount

    @property
    def open_reservations(self) -> int:
        return len(self._open)

    def _account(self, budget_id: str) -> _Account:
        account = self._accounts.get(budget_id)
        if account is None:
            raise KeyError(f"unknown budget {budget_id!r}: register it first")
        return account


def _require_money(value: Decimal, name: str) -> None:
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, not {type(value).__name__}")
    if not value.is_finite() or value < 0:
        raise ValueError(f"{name} must be a finite, non-negative amount, not {value}")


def money(value: Decimal) -> str:
    """``$4.20``; amounts under a dollar that need more places keep them (``$0.000001``)."""
    cents = value.quantize(_CENT)
    if cents == value or abs(value) >= 1 or value == 0:
        return f"${cents}"
    return f"${value.normalize():f}"


def _timestamp(value: datetime) -> str:
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ" if utc.second else "%Y-%m-%dT%H:%MZ")
