"""A governed tool call: rate limit, price reserved against budgets, upstream, record.

Check-and-reserve is synchronous (no await between the rate check, the budget check and
the reservation), as for model requests, so concurrent calls cannot overspend. The
price is charged when the upstream answered (also with ``isError``), released when the
call never reached a tool.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import mcp_types as types

from tollway.errors import BudgetExceeded, RateLimited
from tollway.governance.entities import KeyRecord
from tollway.governance.ledger import Refusal, Reservation
from tollway.governance.ratelimit import Permit, RateLimiter, RateLimitSpec
from tollway.governance.windows import parse_duration
from tollway.mcp.settings import ToolRateLimit
from tollway.pipeline.admit import Admission


@dataclass(frozen=True, slots=True)
class Hold:
    permit: Permit | None
    reservation: Reservation | None
    price: Decimal


class CallGovernor:
    """``hold = governor.admit(key, price)`` ... ``governor.settle(hold, charged)``."""

    def __init__(self, admission: Admission, rate_limit: ToolRateLimit | None) -> None:
        self.admission = admission
        self.limiter = RateLimiter()
        self.rate_limit = rate_limit

    def _specs(self, key: KeyRecord) -> list[RateLimitSpec]:
        if self.rate_limit is None:
            return []
        rl = self.rate_limit
        return [RateLimitSpec(f"mcp:vk:{key.id}", request_max_limit=rl.calls,
                              request_reset_duration=parse_duration(rl.per))]  # fmt: skip

    def admit(self, key: KeyRecord, price: Decimal) -> Hold:
        permit = None
        specs = self._specs(key)
        if specs:
            outcome = self.limiter.acquire(specs, 0, time.time())
            if not isinstance(outcome, Permit):
                raise RateLimited(
                    f"MCP tool call rate limit of the virtual key {outcome.message}",
                    retry_after=outcome.retry_after,
                )
            permit = outcome
        reservation = None
        budgets = self.admission.plan(key).budgets if price > 0 else []
        if budgets:
            result = self.admission.ledger.reserve(budgets, price, datetime.now(UTC))
            if isinstance(result, Refusal):
                if permit is not None:
                    self.limiter.release(permit, 0, time.time())
                raise BudgetExceeded(
                    f"budget exceeded: {result.message}. This tool call costs ${price}; ask "
                    "your gateway admin to raise the budget, or wait for the reset"
                )
            reservation = result
        return Hold(permit, reservation, price)

    def settle(self, hold: Hold, charged: bool) -> Decimal:
        """Release the hold; returns what was charged."""
        if hold.permit is not None:
            self.limiter.release(hold.permit, 0, time.time())
        cost = hold.price if charged else Decimal(0)
        if hold.reservation is not None:
            self.admission.ledger.settle(hold.reservation, cost, datetime.now(UTC))
        return cost


def result_text(result: types.CallToolResult) -> str:
    return result.model_dump_json(by_alias=True, exclude_none=True)


def arguments_text(arguments: dict[str, Any] | None) -> str:
    return json.dumps(arguments or {}, separators=(",", ":"), ensure_ascii=False)
