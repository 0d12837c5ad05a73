"""Start-up recovery from the reservation journal (``storage/journal.py``).

Runs before the ledger loads spend from the store: the spend the journal knew at the crash
and the orphans' worst-case charges are written to the store first, so the ledger's usual
``load`` picks them up, and the journal restarts empty.

    report = await recover(store, journal, registry.snapshot)
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from tollway.storage.journal import Journal, Orphan, WindowKey
from tollway.storage.records import Batch, RequestRecord, SpendRecord

if TYPE_CHECKING:
    from tollway.pipeline.registry import Snapshot
    from tollway.storage.base import Store

log = logging.getLogger("tollway")
_LOOKBACK_S = 400 * 86400
ORPHAN_ERROR = "gateway_restarted"
_ORPHAN_MESSAGE = (
    "the gateway stopped while this request was in flight; its real cost is unknown, so it "
    "stays charged at its reservation (the worst case)"
)


@dataclass(frozen=True, slots=True)
class Recovery:
    windows: int  # budget windows whose spend the journal restored or raised
    orphans: int  # reservations charged at their worst case
    charged: Decimal


async def recover(store: Store, journal: Journal, snapshot: Snapshot | None) -> Recovery:
    replay = journal.replay()
    stored = {
        (r.budget_id, r.window_start): r.spent
        for r in await store.load_spend(time.time() - _LOOKBACK_S)
    }
    spent: dict[WindowKey, Decimal] = {}
    for key, value in replay.spent.items():
        if value > stored.get(key, Decimal(0)):
            spent[key] = value
    charges = []
    for orphan in replay.orphans:
        values = []
        for key in orphan.keys:
            total = spent.get(key, stored.get(key, Decimal(0))) + orphan.amount
            spent[key] = total
            values.append((key[0], key[1], total))
        charges.append((orphan, values))
    journal.settle_orphans(charges)  # before the store: a second crash charges them once
    batch = Batch(
        requests=[_record(o, snapshot) for o in replay.orphans],
        spend=[SpendRecord(b, _scope(b), w, v) for (b, w), v in spent.items()],
    )
    if len(batch):
        await store.write_batch(batch)
    journal.restart()
    charged = sum((o.amount for o in replay.orphans), Decimal(0))
    if replay.orphans:
        log.warning("%d requests were in flight when the gateway stopped: charged $%s at their "
                    "worst case", len(replay.orphans), charged)  # fmt: skip
    return Recovery(len(spent), len(replay.orphans), charged)


def _scope(budget_id: str) -> str:
    """``vk:k_1/1d`` -> ``vk:k_1``; a session budget's id is its scope."""
    if budget_id.startswith("session:"):
        return budget_id
    return budget_id.rsplit("/", 1)[0]


def _record(orphan: Orphan, snapshot: Snapshot | None) -> RequestRecord:
    key = snapshot.keys.get(orphan.vk_id) if snapshot is not None and orphan.vk_id else None
    return RequestRecord(
        id=f"orphan_{orphan.id}",
        started_at=orphan.at,
        latency_ms=0.0,
        surface="unknown",
        status=499,
        vk_id=orphan.vk_id,
        vk_name=key.name if key is not None else None,
        team_id=key.team_id if key is not None else None,
        requested_model=orphan.model,
        served_model=orphan.model,
        error_type=ORPHAN_ERROR,
        error_message=_ORPHAN_MESSAGE,
        partial=True,
        cost_total=orphan.amount,
        cost_unknown=True,
    )
