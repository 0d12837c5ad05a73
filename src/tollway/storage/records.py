"""Records the gateway writes: one per request, one per upstream attempt, and content."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    request_id: str
    index: int
    started_at: float
    provider: str
    key_name: str
    model: str
    status: int
    latency_ms: float
    error_type: str | None = None
    reason: str | None = None  # why it was tried, and what followed (pipeline/dispatch.py)


@dataclass(frozen=True, slots=True)
class RequestRecord:
    id: str
    started_at: float
    latency_ms: float
    surface: str
    status: int
    ttft_ms: float | None = None
    vk_id: str | None = None
    vk_name: str | None = None
    team_id: str | None = None
    team_name: str | None = None
    customer_id: str | None = None
    customer_name: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    client: str = "sdk"
    provider: str | None = None
    requested_model: str | None = None
    served_model: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    stream: bool = False
    partial: bool = False
    retries: int = 0
    fallback_index: int = 0
    cache_hit: bool = False
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0
    cost_input: Decimal = ZERO
    cost_output: Decimal = ZERO
    cost_cache_read: Decimal = ZERO
    cost_cache_write_5m: Decimal = ZERO
    cost_cache_write_1h: Decimal = ZERO
    cost_reasoning: Decimal = ZERO
    cost_server_tools: Decimal = ZERO  # per-use fees: web searches and the like
    cost_total: Decimal = ZERO
    cost_unknown: bool = False  # no price, or a 200 whose usage could not be read
    attempts: tuple[AttemptRecord, ...] = field(default=())
    endpoint: str | None = None  # the path the client called, e.g. /v1/messages
    cost_estimated: bool = False  # priced at gateway.fallback_price
    simulated: bool = False  # answered by the simulated provider (no upstream call)
    web_searches: int = 0  # server-side web searches the provider billed
    price_version: str | None = None  # the price used (PriceSource.version)
    service_tier: str | None = None  # the tier billed when not standard (priority, flex, fast)
    routing_rule: str | None = None  # the routing rule that fired (routing/rules.py)
    # "client>upstream" when translated, with "dropped: a, b" for fields the upstream lost
    translation: str | None = None


@dataclass(frozen=True, slots=True)
class ContentRecord:
    """Bodies as they passed, raw; ``required``: never dropped (spilled to disk instead)."""

    request_id: str
    created_at: float
    request_body: bytes
    response_body: bytes
    required: bool = False


@dataclass(frozen=True, slots=True)
class StoredContent:
    """Bodies as stored: the request as a chunk manifest (``scope`` set) or zstd, the
    response zstd; ``chunks`` are the scope's new chunks (digest, zstd data); ``raw`` is
    kept until the write commits, to prepare it again if chunks were swept meanwhile."""

    request_id: str
    created_at: float
    scope: str | None
    request_body: bytes
    response_body: bytes
    chunks: tuple[tuple[bytes, bytes], ...]
    raw: ContentRecord


@dataclass(frozen=True, slots=True)
class SpendRecord:
    """Settled spend of one budget in one window (the whole value, not a delta)."""

    budget_id: str
    scope: str
    window_start: float
    spent: Decimal


@dataclass(frozen=True, slots=True)
class BudgetEvent:
    budget_id: str
    action: str  # "reset" | "top_up"
    amount: Decimal
    actor: str
    at: float
    window_start: float


@dataclass(slots=True)
class Batch:
    """What the background writer flushes in one transaction."""

    requests: list[RequestRecord] = field(default_factory=list)
    contents: list[StoredContent] = field(default_factory=list)
    spend: list[SpendRecord] = field(default_factory=list)
    chunk_gen: int = 0  # the sweep generation the contents' chunk references assume

    def __len__(self) -> int:
        return len(self.requests) + len(self.contents) + len(self.spend)
