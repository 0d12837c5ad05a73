"""Admission: every level's rate limits and budgets checked and reserved at once.

Pure governance (ledger, rate limiter) does the arithmetic; this module builds the specs
for a key's hierarchy (key, its provider config, team, customer, agent session), reserves
the request's worst-case cost, and settles the real cost when the request ends. All of
it is synchronous, so check-and-reserve is atomic on the event loop.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from tollway.accounting.bounds import (
    MIN_FIT_OUTPUT,
    Bound,
    RequestBody,
    RequestShape,
    fit_output,
    read_shape,
    request_bound,
    token_bound,
    with_output_cap,
)
from tollway.accounting.limits import model_limits
from tollway.accounting.pricing import ModelPrice, PriceBook
from tollway.config import Budget, Config, RateLimit
from tollway.errors import BudgetExceeded, PermissionDenied, RateLimited
from tollway.governance.entities import CustomerRecord, KeyRecord, TeamRecord
from tollway.governance.ledger import (
    BudgetSpec,
    BudgetStatus,
    Ledger,
    Refusal,
    Reservation,
    money,
)
from tollway.governance.ratelimit import Permit, RateLimiter, RateLimitSpec
from tollway.governance.windows import parse_duration
from tollway.storage.records import SpendRecord

if TYPE_CHECKING:
    from tollway.pipeline.registry import Registry, Snapshot
    from tollway.pipeline.route import Target
    from tollway.storage.base import Store
    from tollway.storage.journal import Journal

_SPEND_LOOKBACK_S = 400 * 86400


@dataclass(frozen=True, slots=True)
class Ticket:
    """What admission granted: the reservation and permit to settle, and the body to send
    when admission changed it (an output cap shrunk to fit the budget), else None."""

    reservation: Reservation | None
    permit: Permit | None
    body: bytes | None = None
    bound: Bound | None = None


@dataclass(frozen=True, slots=True)
class Headroom:
    """What one request may reserve now: ``usd`` None when no budget applies."""

    usd: Decimal | None
    limited_by: str | None
    shrink: bool  # every budget lets a request shrink to fit


@dataclass(slots=True)
class _KeyPlan:
    budgets: list[BudgetSpec]
    provider_budgets: dict[str, list[BudgetSpec]]
    limits: list[RateLimitSpec]
    provider_limits: dict[str, list[RateLimitSpec]]
    team: TeamRecord | None
    customer: CustomerRecord | None
    caps: list[tuple[str, int]]  # concurrency limits known from the key alone
    provider_caps: dict[str, list[tuple[str, int]]]


def _refusal_message(
    refusal: Refusal, owner: str, amount: Decimal, smallest: Decimal | None = None
) -> str:
    """The 402 text: what was hit, and whether waiting for the reset can help at all."""
    text = (
        f"budget exceeded: {refusal.describe(owner)}. This request could cost up to ${amount:.4f}"
    )
    smallest = amount if smallest is None else smallest
    if smallest < amount:
        text += f" (${smallest:.4f} with its output cap lowered to 1,024 tokens)"
    if smallest > refusal.limit:
        return (
            text + f", more than the whole budget ({money(refusal.limit)}), so it can never run "
            "under it: lower max_tokens, send less context, or ask your gateway admin to "
            "raise the budget"
        )
    return text + "; ask your gateway admin to raise the budget, or wait for the reset"


def _window_keys(reservation: Reservation) -> list[tuple[str, float]]:
    return [
        (key.budget_id, start.timestamp())
        for key, start in zip(reservation.keys, reservation.window_starts, strict=True)
    ]


def budget_id(scope: str, budget: Budget) -> str:
    return f"{scope}/{budget.reset_duration}"


def _budget_specs(scope: str, budgets: list[Budget], anchor: datetime, tz: str) -> list[BudgetSpec]:
    return [
        BudgetSpec(budget_id(scope, b), scope, Decimal(str(b.max_limit)),
                   parse_duration(b.reset_duration), b.calendar_aligned, anchor, tz,
                   b.shrink_to_fit)
        for b in budgets
    ]  # fmt: skip


def _limit_specs(scope: str, rl: RateLimit | None) -> list[RateLimitSpec]:
    """Request and token limits; concurrency is the slot gate's (pipeline/slots.py)."""
    if rl is None or (rl.request_max_limit is None and rl.token_max_limit is None):
        return []
    return [RateLimitSpec(
        scope,
        request_max_limit=rl.request_max_limit,
        request_reset_duration=parse_duration(rl.request_reset_duration),
        token_max_limit=rl.token_max_limit,
        token_reset_duration=parse_duration(rl.token_reset_duration),
    )]  # fmt: skip


def _caps(scope: str, rl: RateLimit | None) -> list[tuple[str, int]]:
    if rl is None or rl.concurrency_max is None:
        return []
    return [(scope, rl.concurrency_max)]


class Admission:
    """``ticket = admission.admit(...)`` before dispatch; ``settle(ticket, ...)`` after."""

    def __init__(
        self,
        registry: Registry,
        prices: PriceBook,
        config: Config,
        journal: Journal | None = None,
    ) -> None:
        self.registry = registry
        self.journal = journal
        self._held: dict[int, tuple[str | None, str | None, float]] = {}  # vk, model, at
        self.prices = prices
        self.tz = config.gateway.timezone
        self.refuse_unpriced = config.gateway.refuse_unpriced_models
        self.ledger = Ledger()
        self.limiter = RateLimiter()
        self._plans: dict[str, _KeyPlan] = {}
        self._plans_for: Snapshot | None = None
        # Session budgets, least recently used first; bounded so that a gateway running for
        # months does not keep every session it ever saw.
        self._sessions: OrderedDict[tuple[str, str], BudgetSpec] = OrderedDict()
        self.max_sessions = 100_000

    def plan(self, key: KeyRecord) -> _KeyPlan:
        snap = self.registry.snapshot
        if snap is not self._plans_for:
            self._plans, self._plans_for = {}, snap
        found = self._plans.get(key.id)
        if found is None:
            found = self._plans[key.id] = self._build(key, snap)
        return found

    def _build(self, key: KeyRecord, snap: Snapshot) -> _KeyPlan:
        team = snap.teams.get(key.team_id) if key.team_id else None
        customer_id = team.customer_id if team else key.customer_id
        customer = snap.customers.get(customer_id) if customer_id else None
        budgets = _budget_specs(f"vk:{key.id}", key.budgets, key.created_at, self.tz)
        limits = _limit_specs(f"vk:{key.id}", key.rate_limit)
        caps = _caps(f"vk:{key.id}", key.rate_limit)
        for owner, kind in ((team, "team"), (customer, "customer")):
            if owner is not None:
                scope = f"{kind}:{owner.id}"
                budgets += _budget_specs(scope, owner.budgets, owner.created_at, self.tz)
                limits += _limit_specs(scope, owner.rate_limit)
                caps += _caps(scope, owner.rate_limit)
        provider_budgets, provider_limits, provider_caps = {}, {}, {}
        for grant in key.provider_configs:
            scope = f"pc:{key.id}:{grant.provider}"
            provider_budgets[grant.provider] = _budget_specs(scope, grant.budgets, key.created_at,
                                                             self.tz)  # fmt: skip
            provider_limits[grant.provider] = _limit_specs(scope, grant.rate_limit)
            provider_caps[grant.provider] = _caps(scope, grant.rate_limit)
        for spec in budgets + [s for specs in provider_budgets.values() for s in specs]:
            self.ledger.register(spec)
        return _KeyPlan(budgets, provider_budgets, limits, provider_limits, team, customer,
                        caps, provider_caps)  # fmt: skip

    def key_caps(self, key: KeyRecord) -> list[tuple[str, int]]:
        """Concurrency limits of the key, its team and customer: known before the body."""
        return self.plan(key).caps

    def provider_caps(self, key: KeyRecord, provider: str) -> list[tuple[str, int]]:
        caps = self.plan(key).provider_caps
        return caps.get(provider, caps.get("*", []))

    def describe(self, scope: str) -> str:
        """A scope as a developer reads it: ``virtual key 'alice'``, ``team 'platform'``."""
        kind, _, ident = scope.partition(":")
        snap = self.registry.snapshot
        if kind == "vk":
            return f"virtual key {_name(snap.keys.get(ident), ident)!r}"
        if kind == "team":
            return f"team {_name(snap.teams.get(ident), ident)!r}"
        if kind == "customer":
            return f"customer {_name(snap.customers.get(ident), ident)!r}"
        if kind == "pc":
            key_id, _, provider = ident.partition(":")
            return f"provider {provider!r} of virtual key {_name(snap.keys.get(key_id), key_id)!r}"
        if kind == "session":
            key_id, _, session = ident.partition(":")
            return f"session {session} of virtual key {_name(snap.keys.get(key_id), key_id)!r}"
        return scope

    def owners(self, key: KeyRecord) -> tuple[TeamRecord | None, CustomerRecord | None]:
        plan = self.plan(key)
        return plan.team, plan.customer

    def _call_budgets(
        self, key: KeyRecord, plan: _KeyPlan, provider: str, session: str | None,
        billable: bool, now: datetime,
    ) -> list[BudgetSpec]:  # fmt: skip
        """The budgets a call to ``provider`` is checked against: none when it is free,
        the session's too when it names one."""
        if not billable:
            return []
        specs = plan.budgets + plan.provider_budgets.get(
            provider, plan.provider_budgets.get("*", [])
        )
        if session:
            session_spec = self._session_spec(key, session, now)
            if session_spec is not None:
                specs = [*specs, session_spec]
        return specs

    def _session_spec(self, key: KeyRecord, session: str, now: datetime) -> BudgetSpec | None:
        if key.session_budget is None:
            return None
        spec = self._sessions.get((key.id, session))
        if spec is not None:
            self._sessions.move_to_end((key.id, session))
        limit = Decimal(str(key.session_budget.max_limit))
        if spec is None or spec.max_limit != limit:
            # A session budget never resets: spend restored at start keeps its window.
            anchor = spec.anchor if spec else (self.ledger.pending_start(
                f"session:{key.id}:{session}") or now)  # fmt: skip
            spec = BudgetSpec(f"session:{key.id}:{session}", f"session:{key.id}:{session}",
                              limit, None, False, anchor, "UTC",
                              key.session_budget.shrink_to_fit)  # fmt: skip
            self._sessions[(key.id, session)] = spec
            while len(self._sessions) > self.max_sessions:
                _, old = self._sessions.popitem(last=False)
                self.ledger.forget(old.budget_id)
        return spec

    def price(self, target: Target) -> ModelPrice:
        """The request's price, or the configured fallback; refused when there is neither:
        nothing is free under a budget."""
        price = self.prices.resolve(target.model, target.provider.name)
        if price is None:
            why = "unpriced models are refused" if self.refuse_unpriced else (
                "a budget applies and no gateway.fallback_price is set")  # fmt: skip
            raise PermissionDenied(
                f"model {target.requested!r} has no price in this gateway and {why}; add it "
                "under `pricing:` in the config or with PUT /api/pricing/{model}"
            )
        return price

    def worst_case(self, target: Target, body: bytes, dialect: str) -> Bound:
        """The request's bound (`accounting.bounds`); refused when the model has no price."""
        price = self.price(target)
        return request_bound(read_shape(body, dialect), price, model_limits(target.model))

    def admit(
        self,
        key: KeyRecord,
        target: Target,
        body: bytes,
        dialect: str,
        session: str | None,
        billable: bool = True,
        doc: RequestBody | None = None,
    ) -> Ticket:
        """Rate limits always; budgets only for billable calls (count_tokens is free).
        ``doc`` is ``body`` decoded already (``decode_body``), to spare a second parse."""
        plan = self.plan(key)
        provider = target.provider.name
        limits = plan.limits + plan.provider_limits.get(provider, plan.provider_limits.get("*", []))
        now = datetime.now(UTC)
        specs = self._call_budgets(key, plan, provider, session, billable, now)
        counts_tokens = any(spec.token_max_limit for spec in limits)
        shape = read_shape(body, dialect, doc) if specs or counts_tokens else None
        price = self.price(target) if specs or self.refuse_unpriced else None
        bound = None
        if shape is not None and price is not None and specs:
            bound = request_bound(shape, price, model_limits(target.model))
        permit = None
        if limits:
            tokens = 0
            if shape is not None and counts_tokens:
                prompt, out, _uses = token_bound(shape, model_limits(target.model))
                tokens = prompt + out  # corrected to the real count when the request settles
            outcome = self.limiter.acquire(limits, tokens, time.time())
            if not isinstance(outcome, Permit):
                window = outcome.window.describe() if outcome.window else "window"
                raise RateLimited(
                    f"rate limit of {self.describe(outcome.scope)}: {outcome.limit} "
                    f"{outcome.kind} per {window} reached; retry in {outcome.retry_after} s",
                    retry_after=outcome.retry_after,
                )
            permit = outcome
        if not specs:
            return Ticket(None, permit)
        try:
            ticket = self._reserve(specs, target, body, dialect, shape, price, bound, permit, now)
        except BudgetExceeded:
            if permit is not None:
                self.limiter.release(permit, 0, time.time())
            raise
        if self.journal is not None and ticket.reservation is not None:
            self._journal_open(ticket.reservation, key.id, target.model)
        return ticket

    def rebook(
        self,
        ticket: Ticket,
        key: KeyRecord,
        target: Target,
        body: bytes,
        dialect: str,
        session: str | None,
        billable: bool = True,
    ) -> Ticket:
        """Move a ticket to another target before its next attempt (pipeline/dispatch.py):
        the held reservation is freed (the attempt that had it failed before its first
        byte, so nothing was billed) and the new target's worst case is reserved against
        its own budgets, so the model that answers is always covered. The rate-limit
        permit is kept: it is still one request. BudgetExceeded when it does not fit (the
        old reservation stays freed; settling the old ticket again is a no-op)."""
        if ticket.reservation is not None:
            self.settle(Ticket(ticket.reservation, None), Decimal(0), 0)
        plan = self.plan(key)
        provider = target.provider.name
        now = datetime.now(UTC)
        specs = self._call_budgets(key, plan, provider, session, billable, now)
        if not specs:
            return Ticket(None, ticket.permit)
        shape = read_shape(body, dialect)
        price = self.price(target)
        bound = request_bound(shape, price, model_limits(target.model))
        new = self._reserve(specs, target, body, dialect, shape, price, bound, ticket.permit, now)
        if self.journal is not None and new.reservation is not None:
            self._journal_open(new.reservation, key.id, target.model)
        return new

    def _journal_open(self, reservation: Reservation, vk_id: str, model: str) -> None:
        """Journaled before the request leaves: the reservation outlives a crash."""
        assert self.journal is not None
        at = time.time()
        self._held[reservation.id] = (vk_id, model, at)
        self.journal.reserved(reservation.id, reservation.amount, _window_keys(reservation),
                              vk_id, model, at)  # fmt: skip

    def _reserve(
        self,
        specs: list[BudgetSpec],
        target: Target,
        body: bytes,
        dialect: str,
        shape: RequestShape | None,
        price: ModelPrice | None,
        bound: Bound | None,
        permit: Permit | None,
        now: datetime,
    ) -> Ticket:
        amount = bound.cost if bound is not None else Decimal(0)
        result = self.ledger.reserve(specs, amount, now)
        if isinstance(result, Reservation):
            return Ticket(result, permit, None, bound)
        sent = None
        if shape is not None and price is not None:
            fitted = self._fit(specs, shape, price, target, now)
            if fitted is not None:
                cap, bound = fitted
                result = self.ledger.reserve(specs, bound.cost, now)
                if isinstance(result, Reservation):
                    sent = with_output_cap(body, dialect, cap)
                    return Ticket(result, permit, sent, bound)
        smallest = amount
        if shape is not None and price is not None and all(s.shrink_to_fit for s in specs):
            least = MIN_FIT_OUTPUT + 1 if shape.thinking_budget else MIN_FIT_OUTPUT
            if shape.output_cap is None or shape.output_cap > least:
                shrunk = replace(shape, output_cap=least)
                smallest = request_bound(shrunk, price, model_limits(target.model)).cost
        owner = self.describe(result.key.scope)
        raise BudgetExceeded(_refusal_message(result, owner, amount, smallest))

    def _fit(
        self,
        specs: list[BudgetSpec],
        shape: RequestShape,
        price: ModelPrice,
        target: Target,
        now: datetime,
    ) -> tuple[int, Bound] | None:
        """A smaller output cap that fits every budget, when all short budgets allow it."""
        rooms = self.ledger.room(specs, now)
        if not all(spec.shrink_to_fit for spec, _ in rooms):
            return None
        limits = model_limits(target.model)
        cap = fit_output(shape, price, limits, min(room for _, room in rooms))
        if cap is None:
            return None
        return cap, request_bound(replace(shape, output_cap=cap), price, limits)

    def settle(self, ticket: Ticket, cost: Decimal, tokens: int) -> None:
        if ticket.reservation is not None:
            charged = self.ledger.settle(ticket.reservation, cost, datetime.now(UTC))
            held = self._held.pop(ticket.reservation.id, None)
            if self.journal is not None and held is not None:
                self.journal.settled(ticket.reservation.id,
                                     [(b, w.timestamp(), v) for b, w, v in charged])  # fmt: skip
        if ticket.permit is not None:
            self.limiter.release(ticket.permit, tokens, time.time())

    def reset(self, budget_id: str, now: datetime) -> None:
        """Zero a budget's spend in its current window (journaled like a settlement)."""
        start = self.ledger.reset(budget_id, now)
        if self.journal is not None:
            self.journal.settled(None, [(budget_id, start.timestamp(), Decimal(0))])

    def dirty_spend(self) -> list[SpendRecord]:
        """Spend to persist; rotates the journal when it has grown (see storage/journal)."""
        if self.journal is not None and self.journal.wants_rotation():
            held = self._held
            self.journal.rotate(
                self.journal.entry(r.id, r.amount, _window_keys(r), *held[r.id])
                for r in self.ledger.open()
                if r.id in held
            )
        return [
            SpendRecord(bid, scope, start.timestamp(), spent)
            for bid, scope, start, spent in self.ledger.drain_dirty()
        ]

    async def load(self, store: Store) -> None:
        """Restore settled spend and this window's top-ups from the store."""
        credits: dict[tuple[str, float], Decimal] = {}
        for event in await store.budget_events(None):
            if event.action == "top_up":
                k = (event.budget_id, event.window_start)
                credits[k] = credits.get(k, Decimal(0)) + event.amount
        for rec in await store.load_spend(time.time() - _SPEND_LOOKBACK_S):
            start = datetime.fromtimestamp(rec.window_start, UTC)
            credit = credits.pop((rec.budget_id, rec.window_start), Decimal(0))
            self.ledger.load(rec.budget_id, start, rec.spent, credit)
        for (bid, ws), credit in credits.items():
            self.ledger.load(bid, datetime.fromtimestamp(ws, UTC), Decimal(0), credit)

    def headroom(self, key: KeyRecord, provider: str | None = None) -> Headroom:
        """The most one request of this key can reserve now, and the budget that says so."""
        plan = self.plan(key)
        specs = list(plan.budgets)
        if provider is not None:
            specs += plan.provider_budgets.get(provider, plan.provider_budgets.get("*", []))
        rooms = self.ledger.room(specs, datetime.now(UTC))
        if not rooms:
            return Headroom(None, None, True)
        spec, room = min(rooms, key=lambda item: item[1])
        window = f" {spec.duration}" if spec.duration is not None else ""
        shrink = all(s.shrink_to_fit for s, _ in rooms)
        return Headroom(room, f"{self.describe(spec.scope)} budget{window}", shrink)

    def largest_output(
        self, key: KeyRecord, model: str, body_bytes: int, provider: str | None = None
    ) -> tuple[int, Decimal | None] | None:
        """For a request of ``body_bytes`` to ``model``: the largest output cap it can be
        admitted with now (shrunk to fit), and its worst case; None if it cannot run."""
        room = self.headroom(key, provider)
        if room.usd is None:  # no budget applies
            return model_limits(model).max_output, None
        price = self.prices.resolve(model, provider)
        if price is None:
            return None
        limits = model_limits(model)
        shape = RequestShape(body_bytes, None, 1, False, 0, Decimal(0), 0, "1h", Decimal(1))
        full = request_bound(shape, price, limits)
        if full.cost <= room.usd:
            return full.output_tokens, full.cost
        if not room.shrink:
            return None
        cap = fit_output(shape, price, limits, room.usd)
        if cap is None:
            return None
        return cap, request_bound(replace(shape, output_cap=cap), price, limits).cost

    def statuses(self, key: KeyRecord) -> list[BudgetStatus]:
        plan = self.plan(key)
        now = datetime.now(UTC)
        specs = plan.budgets + [s for v in plan.provider_budgets.values() for s in v]
        return [self.ledger.status(s.budget_id, now) for s in specs]


def _name(record: KeyRecord | TeamRecord | CustomerRecord | None, fallback: str) -> str:
    return record.name if record is not None else fallback
