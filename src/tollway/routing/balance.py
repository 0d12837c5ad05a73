"""Load balancing state: weighted orders, session affinity and per-provider retry tokens.

All pure and clock-injected; the dispatcher owns one of each per gateway.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from tollway.routing.settings import AffinitySettings, RetrySettings

T = TypeVar("T")


def weighted_order(items: Sequence[T], weight: Callable[[T], float], rng: random.Random) -> list[T]:
    """The first item is a weighted random pick; the rest follow by weight, heaviest first
    (ties in the given order), as the fallback chain."""
    if len(items) <= 1:
        return list(items)
    total = sum(weight(i) for i in items)
    point = rng.random() * total
    first = len(items) - 1
    for index, item in enumerate(items):
        point -= weight(item)
        if point < 0:
            first = index
            break
    rest = [item for index, item in enumerate(items) if index != first]
    rest.sort(key=lambda i: -weight(i))  # sort is stable: ties keep their order
    return [items[first], *rest]


@dataclass(frozen=True, slots=True)
class Pin:
    provider: str
    key: str
    model: str
    at: float


class Affinity:
    """Session -> the provider, key and model that last served it (least recent evicted)."""

    def __init__(self, settings: AffinitySettings) -> None:
        self.settings = settings
        self._pins: OrderedDict[tuple[str, str], Pin] = OrderedDict()

    def get(self, scope: str, session: str | None, now: float) -> Pin | None:
        if not self.settings.enabled or not session:
            return None
        pin = self._pins.get((scope, session))
        if pin is None:
            return None
        if now - pin.at > self.settings.ttl_s:
            del self._pins[(scope, session)]
            return None
        return pin

    def set(self, scope: str, session: str | None, pin: Pin) -> None:
        if not self.settings.enabled or not session:
            return
        self._pins[(scope, session)] = pin
        self._pins.move_to_end((scope, session))
        while len(self._pins) > self.settings.max_sessions:
            self._pins.popitem(last=False)

    def __len__(self) -> int:
        return len(self._pins)


class RetryBudget:
    """Retry tokens per provider: a retry (any attempt after a request's first) spends one
    token of the provider it goes to; each first attempt earns ``ratio``; time earns
    ``per_second``; at most ``burst`` are held. Under a storm, gateway retries stay a
    fraction of the traffic instead of multiplying the client's own retries."""

    def __init__(self, settings: RetrySettings) -> None:
        self.settings = settings
        self._tokens: dict[str, tuple[float, float]] = {}  # provider -> (tokens, at)

    def _now(self, provider: str, now: float) -> float:
        s = self.settings
        tokens, at = self._tokens.get(provider, (s.burst, now))
        return min(s.burst, tokens + max(0.0, now - at) * s.per_second)

    def tokens(self, provider: str, now: float) -> float:
        return self._now(provider, now)

    def earn(self, provider: str, now: float) -> None:
        tokens = min(self.settings.burst, self._now(provider, now) + self.settings.ratio)
        self._tokens[provider] = (tokens, now)

    def spend(self, provider: str, now: float) -> bool:
        tokens = self._now(provider, now)
        if tokens < 1.0:
            self._tokens[provider] = (tokens, now)
            return False
        self._tokens[provider] = (tokens - 1.0, now)
        return True
