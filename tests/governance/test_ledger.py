from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from tollway.governance.ledger import (
    BudgetKey,
    BudgetSpec,
    BudgetStatus,
    Ledger,
    Refusal,
    Reservation,
)
from tollway.governance.windows import Duration

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
CENT = Decimal("0.01")
DAY = Duration(1, "d")
MONTH_AGO = NOW - timedelta(days=30)


def d(text: str) -> Decimal:
    return Decimal(text)


def spec(
    budget_id: str = "b1",
    scope: str = "team:t1",
    limit: str = "5.00",
    duration: Duration | None = DAY,
    calendar_aligned: bool = True,
    anchor: datetime = MONTH_AGO,
    tz: str = "UTC",
) -> BudgetSpec:
    return BudgetSpec(budget_id, scope, d(limit), duration, calendar_aligned, anchor, tz)


def reserve(ledger: Ledger, specs: list[BudgetSpec], amount: str, now: datetime) -> Reservation:
    outcome = ledger.reserve(specs, d(amount), now)
    assert isinstance(outcome, Reservation), outcome
    return outcome


def status(ledger: Ledger, budget_id: str, now: datetime = NOW) -> BudgetStatus:
    return ledger.status(budget_id, now)


def test_reserve_settle_and_the_refusal_message() -> None:
    ledger, team = Ledger(), spec()
    ledger.settle(reserve(ledger, [team], "4.50", NOW), d("4.20"), NOW)
    refusal = ledger.reserve([team], d("1.00"), NOW)
    assert isinstance(refusal, Refusal)
    assert refusal.key == BudgetKey("team:t1", "b1")
    assert (refusal.spent, refusal.reserved, refusal.limit) == (d("4.20"), d("0"), d("5.00"))
    assert refusal.resets_at == datetime(2026, 11, 24, tzinfo=UTC)
    assert refusal.message == "team budget 1d: spent $4.20 of $5.00, resets 2026-11-24T00:00Z"
    assert isinstance(ledger.reserve([team], d("0.80"), NOW), Reservation)


def test_refusal_mentions_in_flight_and_session_budgets() -> None:
    ledger = Ledger()
    session = spec("s1", "session:k1:abc", "0.50", duration=None)
    reserve(ledger, [session], "0.4", NOW)
    refusal = ledger.reserve([session], d("0.2"), NOW)
    assert isinstance(refusal, Refusal)
    assert refusal.message == (
        "session budget: spent $0.00 of $0.50 ($0.40 more in flight), does not reset"
    )


def test_reserve_is_all_or_nothing() -> None:
    ledger = Ledger()
    key, team = spec("k", "vk:k1", "10"), spec("t", "team:t1", "1")
    refusal = ledger.reserve([key, team], d("2"), NOW)
    assert isinstance(refusal, Refusal) and refusal.key.budget_id == "t"
    assert status(ledger, "k").reserved == 0
    reservation = reserve(ledger, [key, team, key], "1", NOW)  # duplicates count once
    assert reservation.keys == (BudgetKey("vk:k1", "k"), BudgetKey("team:t1", "t"))
    assert reservation.window_starts == (datetime(2026, 11, 23, tzinfo=UTC),) * 2
    assert status(ledger, "k").reserved == 1


def test_window_roll_resets_spend_but_keeps_in_flight() -> None:
    ledger, team = Ledger(), spec()
    ledger.settle(reserve(ledger, [team], "3", NOW), d("3"), NOW)
    running = reserve(ledger, [team], "2", NOW)
    tomorrow = NOW + timedelta(days=1)
    rolled = status(ledger, "b1", tomorrow)
    assert (rolled.spent, rolled.reserved) == (d("0"), d("2"))
    ledger.settle(running, d("1.5"), tomorrow)  # charged to the window it finished in
    after = status(ledger, "b1", tomorrow)
    assert (after.spent, after.reserved, after.remaining) == (d("1.5"), d("0"), d("3.5"))


def test_settle_is_idempotent_and_may_exceed_the_reservation() -> None:
    ledger, team = Ledger(), spec()
    reservation = reserve(ledger, [team], "1", NOW)
    ledger.settle(reservation, d("6"), NOW)
    ledger.settle(reservation, d("6"), NOW)
    ledger.release(reservation, NOW)
    now = status(ledger, "b1")
    assert (now.spent, now.reserved, now.remaining) == (d("6"), d("0"), d("0"))
    assert ledger.open_reservations == 0


def test_release_charges_nothing() -> None:
    ledger, team = Ledger(), spec()
    ledger.release(reserve(ledger, [team], "5", NOW), NOW)
    assert status(ledger, "b1").remaining == 5
    assert ledger.drain_dirty() == []


def test_drain_dirty_reports_changed_spend_once() -> None:
    ledger, team = Ledger(), spec()
    ledger.settle(reserve(ledger, [team], "1", NOW), d("0.25"), NOW)
    start = datetime(2026, 11, 23, tzinfo=UTC)
    assert ledger.drain_dirty() == [("b1", "team:t1", start, d("0.25"))]
    assert ledger.drain_dirty() == []
    ledger.reset("b1", NOW)
    assert ledger.drain_dirty() == [("b1", "team:t1", start, d("0"))]


def test_load_restores_only_the_current_window() -> None:
    ledger, team = Ledger(), spec()
    start = datetime(2026, 11, 23, tzinfo=UTC)
    ledger.load("b1", start, d("4.90"), credit=d("1"))
    ledger.register(team)
    assert (status(ledger, "b1").spent, status(ledger, "b1").credit) == (d("4.90"), d("1"))
    stale = Ledger()
    stale.load("b1", start - timedelta(days=1), d("4.90"))
    stale.register(team)
    assert status(stale, "b1").spent == 0
    stale.load("b1", start, d("0.10"))
    assert status(stale, "b1").spent == d("0.10")
    stale.load("b1", start, d("0.05"))  # never lowers what is already counted
    assert status(stale, "b1").spent == d("0.10")


def test_top_up_raises_the_limit_until_the_window_ends() -> None:
    ledger, team = Ledger(), spec(limit="1")
    ledger.register(team)
    ledger.top_up("b1", d("2"), NOW)
    assert status(ledger, "b1").remaining == 3
    ledger.settle(reserve(ledger, [team], "3", NOW), d("3"), NOW)
    tomorrow = NOW + timedelta(days=1)
    rolled = status(ledger, "b1", tomorrow)
    assert (rolled.credit, rolled.remaining) == (d("0"), d("1"))


def test_reset_and_unknown_budgets() -> None:
    ledger, team = Ledger(), spec()
    ledger.settle(reserve(ledger, [team], "5", NOW), d("5"), NOW)
    ledger.reset("b1", NOW)
    assert status(ledger, "b1").remaining == 5
    with pytest.raises(KeyError):
        ledger.top_up("nope", d("1"), NOW)
    ledger.forget("b1")
    assert ledger.snapshot(NOW) == []


def test_changing_the_window_rules_recomputes_the_window() -> None:
    ledger, team = Ledger(), spec()
    ledger.settle(reserve(ledger, [team], "1", NOW), d("1"), NOW)
    ledger.register(spec(limit="9"))  # same window: spend kept
    assert status(ledger, "b1").spent == 1
    ledger.register(spec(duration=Duration(1, "M")))
    assert status(ledger, "b1").window_start == datetime(2026, 11, 1, tzinfo=UTC)
    assert status(ledger, "b1").spent == 0


def test_money_must_be_decimal() -> None:
    ledger, team = Ledger(), spec()
    with pytest.raises(TypeError):
        ledger.reserve([team], 1.0, NOW)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ledger.reserve([team], d("-1"), NOW)
    with pytest.raises(ValueError):
        spec(tz="Mars/Olympus")
    with pytest.raises(ValueError):
        spec(anchor=datetime(2026, 1, 1))


START = datetime(2026, 3, 28, 20, tzinfo=UTC)  # Berlin's DST change is in reach
SPECS = [
    BudgetSpec("day", "vk:k1", d("5.00"), Duration(1, "d"), True, START, "Europe/Berlin"),
    BudgetSpec("hour", "team:t1", d("2.00"), Duration(1, "h"), False, START + timedelta(minutes=7)),
    BudgetSpec("month", "customer:c1", d("20"), Duration(1, "M"), False, START, "Europe/Berlin"),
    BudgetSpec("session", "session:k1:s1", d("3.00"), None, False, START),
]
subsets = st.sets(st.sampled_from(range(len(SPECS))), min_size=1)


class LedgerMachine(RuleBasedStateMachine):
    """Any interleaving of reserve, settle (actual <= reserved), release, top-ups and time."""

    @initialize()
    def start(self) -> None:
        self.ledger = Ledger()
        self.now = START
        self.open: dict[int, Reservation] = {}
        self.window: dict[str, datetime] = {}
        self.carried: dict[str, Decimal] = {}  # in flight when the current window began
        for budget in SPECS:
            self.ledger.register(budget)
        self.observe()

    def observe(self) -> dict[str, BudgetStatus]:
        statuses = {s.budget_id: s for s in self.ledger.snapshot(self.now)}
        for budget_id, current in statuses.items():
            if self.window.get(budget_id) != current.window_start:
                self.window[budget_id] = current.window_start
                self.carried[budget_id] = current.reserved
        return statuses

    @rule(chosen=subsets, cents=st.integers(0, 300))
    def reserve(self, chosen: set[int], cents: int) -> None:
        amount = Decimal(cents) / 100
        before = self.observe()
        outcome = self.ledger.reserve([SPECS[i] for i in sorted(chosen)], amount, self.now)
        if isinstance(outcome, Refusal):
            assert self.observe() == before
            hit = before[outcome.key.budget_id]
            assert hit.spent + hit.reserved + amount > hit.limit + hit.credit
        else:
            self.open[outcome.id] = outcome
            for i in chosen:
                room = before[SPECS[i].budget_id]
                assert room.spent + room.reserved + amount <= room.limit + room.credit

    @precondition(lambda self: not self.open)
    @rule(chosen=subsets, percent=st.integers(0, 100))
    def reserve_what_fits(self, chosen: set[int], percent: int) -> None:
        statuses = self.observe()
        room = min(statuses[SPECS[i].budget_id].remaining for i in chosen)
        amount = (room * percent / 100).quantize(CENT, rounding=ROUND_DOWN)
        outcome = self.ledger.reserve([SPECS[i] for i in chosen], amount, self.now)
        chosen_statuses = [statuses[SPECS[i].budget_id] for i in chosen]
        if any(s.spent + s.reserved > s.limit + s.credit for s in chosen_statuses):
            # Over-committed: money reserved under a top-up of a window that has since
            # rolled is still in flight. Nothing more fits until it settles.
            assert isinstance(outcome, Refusal)
            return
        assert isinstance(outcome, Reservation)
        self.open[outcome.id] = outcome

    @precondition(lambda self: self.open)
    @rule(data=st.data(), percent=st.integers(0, 100), release=st.booleans())
    def settle(self, data: st.DataObject, percent: int, release: bool) -> None:
        reservation = self.open.pop(data.draw(st.sampled_from(sorted(self.open))))
        if release:
            self.ledger.release(reservation, self.now)
        else:
            actual = (reservation.amount * percent / 100).quantize(CENT, rounding=ROUND_DOWN)
            self.ledger.settle(reservation, actual, self.now)
        after = self.observe()
        self.ledger.settle(reservation, reservation.amount, self.now)  # a second settle: no-op
        assert self.observe() == after

    @rule(i=st.integers(0, len(SPECS) - 1), cents=st.integers(0, 500))
    def top_up(self, i: int, cents: int) -> None:
        self.ledger.top_up(SPECS[i].budget_id, Decimal(cents) / 100, self.now)

    @rule(minutes=st.sampled_from([0, 1, 13, 59, 60, 600, 1440, 20000]))
    def advance(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)
        self.observe()

    @invariant()
    def never_past_the_cap(self) -> None:
        for budget_id, current in self.observe().items():
            assert current.reserved >= 0 and current.remaining >= 0
            cap = max(current.limit + current.credit, self.carried[budget_id])
            assert current.spent + current.reserved <= cap
            if not self.open:
                assert current.reserved == 0


TestLedgerMachine = LedgerMachine.TestCase
TestLedgerMachine.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
