"""Concurrency limits that queue: a request waits its turn for a bounded time, then 429s.

An agent fires several calls at once (Claude Code's sub-agents, ``/context``'s 14
``count_tokens``); refusing the ones past the limit at once makes each of them retry for
minutes. Here they wait, first come first served, for up to ``gateway.concurrency_wait_s``.

``hold = await gate.take(caps, wait_s)`` returns a `SlotHold` (give it back with
``gate.release(hold)`` exactly once) or None when the wait ran out. `caps` pairs a scope
with its limit; all of a request's scopes are taken at once or none is.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

Caps = tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class SlotHold:
    id: int
    scopes: tuple[str, ...]


@dataclass(slots=True, eq=False)
class _Waiter:
    caps: Caps
    future: asyncio.Future[SlotHold]
    scopes: frozenset[str] = field(default_factory=frozenset)


class SlotGate:
    """Running counts per scope and one FIFO of waiting requests."""

    def __init__(self) -> None:
        self._running: dict[str, int] = {}
        self._waiters: deque[_Waiter] = deque()
        self._ids = itertools.count(1)
        self._open: set[int] = set()

    def in_flight(self, scope: str) -> int:
        return self._running.get(scope, 0)

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def _fits(self, caps: Caps) -> bool:
        return all(self._running.get(scope, 0) < cap for scope, cap in caps)

    def _grant(self, caps: Caps) -> SlotHold:
        for scope, _ in caps:
            self._running[scope] = self._running.get(scope, 0) + 1
        hold = SlotHold(next(self._ids), tuple(scope for scope, _ in caps))
        self._open.add(hold.id)
        return hold

    def try_take(self, caps: Sequence[tuple[str, int]]) -> SlotHold | None:
        """Take now if every scope has room and nobody queued before us for one of them."""
        frozen = tuple(caps)
        scopes = {scope for scope, _ in frozen}
        if any(w.scopes & scopes for w in self._waiters):
            return None
        return self._grant(frozen) if self._fits(frozen) else None

    async def take(self, caps: Sequence[tuple[str, int]], wait_s: float) -> SlotHold | None:
        hold = self.try_take(caps)
        if hold is not None or wait_s <= 0:
            return hold
        frozen = tuple(caps)
        waiter = _Waiter(frozen, asyncio.get_running_loop().create_future(),
                         frozenset(s for s, _ in frozen))  # fmt: skip
        self._waiters.append(waiter)
        try:
            await asyncio.wait((waiter.future,), timeout=wait_s)
        except asyncio.CancelledError:
            self._abandon(waiter)
            raise
        if waiter.future.done():
            return waiter.future.result()
        self._abandon(waiter)
        return None

    def _abandon(self, waiter: _Waiter) -> None:
        """The waiter gave up (timeout, client gone); a grant that raced in goes back."""
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)
        if waiter.future.done():
            self.release(waiter.future.result())
        else:
            waiter.future.cancel()

    def release(self, hold: SlotHold) -> None:
        if hold.id not in self._open:
            return
        self._open.discard(hold.id)
        for scope in hold.scopes:
            left = self._running.get(scope, 0) - 1
            if left > 0:
                self._running[scope] = left
            else:
                self._running.pop(scope, None)
        self._wake()

    def _wake(self) -> None:
        blocked: set[str] = set()
        for waiter in list(self._waiters):
            if waiter.future.done():
                continue
            if waiter.scopes & blocked or not self._fits(waiter.caps):
                blocked |= waiter.scopes  # later waiters for these scopes keep their place
                continue
            waiter.future.set_result(self._grant(waiter.caps))
            self._waiters.remove(waiter)
