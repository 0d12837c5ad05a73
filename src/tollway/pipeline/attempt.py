"""One upstream attempt of a request, as the log keeps it (a leaf: no imports of the path)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Attempt:
    provider: str
    key: str  # the provider key's name, never its value
    model: str  # as the upstream was asked
    status: int  # 0: no response (timeout, connection error, cut before the first byte)
    started: float  # wall clock
    latency_ms: float
    error: str | None = None  # the error's kind when it failed
    reason: str | None = None  # why it was tried, and what followed it
