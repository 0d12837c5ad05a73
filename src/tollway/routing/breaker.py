"""Circuit breakers per (provider, key, model): pure, with the clock passed in.

    closed --(failures in a row)--> open --(cooldown over)--> half-open
    half-open --(the probe succeeds)--> closed;  --(it fails)--> open, cooldown doubled

A 429 with ``retry-after`` opens the circuit at once for that long (capped): the key is
known to be unusable until then. While open, the dispatcher leaves the candidate out as
long as any healthy one is left, within a request and across its retries; only when every
circuit is open are they tried (the soonest to reopen first), so the gateway never answers
for an upstream it has not asked.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

from tollway.routing.settings import BreakerSettings

State = Literal["closed", "open", "half_open"]
Circuit = tuple[str, str, str]  # provider, key name, model
MAX_CIRCUITS = 100_000


@dataclass(slots=True)
class _Entry:
    failures: int = 0
    opened_until: float = 0.0
    cooldown: float = 0.0
    probing: bool = False
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class CircuitView:
    state: State
    failures: int
    reopens_in_s: float  # 0 unless open
    last_error: str | None


class Breakers:
    """``breakers.state(c, now)``; ``success(c)`` / ``failure(c, now, why)`` after a try."""

    def __init__(self, settings: BreakerSettings) -> None:
        self.settings = settings
        self._entries: OrderedDict[Circuit, _Entry] = OrderedDict()

    def state(self, circuit: Circuit, now: float) -> State:
        entry = self._entries.get(circuit)
        if entry is None or entry.opened_until == 0.0:
            return "closed"
        if now < entry.opened_until:
            return "open"
        return "open" if entry.probing else "half_open"

    def view(self, circuit: Circuit, now: float) -> CircuitView:
        entry = self._entries.get(circuit) or _Entry()
        state = self.state(circuit, now)
        left = max(0.0, entry.opened_until - now) if state == "open" else 0.0
        return CircuitView(state, entry.failures, left, entry.last_error)

    def open_count(self, now: float) -> int:
        """Circuits open now (a half-open one waiting for its probe is not counted)."""
        return sum(1 for c in self._entries if self.state(c, now) == "open")

    def reopens_at(self, circuit: Circuit) -> float:
        entry = self._entries.get(circuit)
        return entry.opened_until if entry is not None else 0.0

    def begin(self, circuit: Circuit, now: float) -> None:
        """An attempt starts; a half-open circuit lets this one probe through."""
        entry = self._entries.get(circuit)
        if entry is not None and entry.opened_until and now >= entry.opened_until:
            entry.probing = True

    def success(self, circuit: Circuit) -> None:
        self._entries.pop(circuit, None)

    def failure(
        self, circuit: Circuit, now: float, why: str, retry_after: float | None = None
    ) -> None:
        entry = self._entries.get(circuit)
        if entry is None:
            entry = self._entries[circuit] = _Entry()
            while len(self._entries) > MAX_CIRCUITS:
                self._entries.popitem(last=False)
        self._entries.move_to_end(circuit)
        entry.failures += 1
        entry.last_error = why
        s = self.settings
        if entry.probing or (entry.opened_until and now >= entry.opened_until):
            entry.cooldown = min(max(entry.cooldown, s.cooldown_s) * 2, s.max_cooldown_s)
        elif entry.failures >= s.failures and not entry.opened_until:
            entry.cooldown = s.cooldown_s
        elif retry_after is None:
            return
        if retry_after is not None:
            entry.cooldown = max(entry.cooldown, min(retry_after, s.max_cooldown_s))
        entry.probing = False
        entry.opened_until = max(entry.opened_until, now + entry.cooldown)
