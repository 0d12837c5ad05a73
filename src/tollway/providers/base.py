"""What every upstream adapter offers: a dialect set and ``send``."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

# Dialects a provider can speak natively (requests pass through byte for byte).
ANTHROPIC = "anthropic"
OPENAI_CHAT = "openai_chat"
OPENAI_RESPONSES = "openai_responses"
GEMINI = "gemini"
# Claude Code's cloud modes, as client dialects: Anthropic bodies in a cloud's envelope.
BEDROCK = "bedrock"
VERTEX = "vertex"


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    dialect: str
    method: str
    path: str  # the surface path, e.g. "/v1/messages"
    query: bytes  # raw query string, kept as sent
    headers: list[tuple[str, str]]  # client headers to forward (auth and hop-by-hop removed)
    body: bytes
    stream: bool
    model: str  # the model name the upstream should see


class UpstreamResponse(Protocol):
    status: int
    headers: list[tuple[bytes, bytes]]

    def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, chunk by chunk, unbuffered."""
        ...

    async def read(self) -> bytes: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class KeyChoice:
    name: str
    secret: str = field(repr=False)
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class AwsKey:
    """SigV4 credentials for one Bedrock key (the secret access key is the key's secret)."""

    access_key_id: str
    session_token: str | None = field(default=None, repr=False)


class Provider(Protocol):
    name: str
    dialects: frozenset[str]
    keys: list[KeyChoice]

    async def send(self, request: UpstreamRequest, key: KeyChoice) -> UpstreamResponse: ...

    async def close(self) -> None: ...


def key_order(keys: Sequence[KeyChoice], rng: random.Random) -> list[KeyChoice]:
    """Keys in a weighted random order: the first is the weighted pick, the rest failovers."""
    remaining = list(keys)
    order: list[KeyChoice] = []
    while remaining:
        if len(remaining) == 1:
            order.append(remaining.pop())
            break
        total = sum(k.weight for k in remaining)
        point = rng.random() * total
        for i, k in enumerate(remaining):
            point -= k.weight
            if point < 0:
                order.append(remaining.pop(i))
                break
        else:
            order.append(remaining.pop())
    return order
