"""Governed entities held in memory, refreshed when the store's revision moves.

The request path reads only from here; admin changes made by any process (API, CLI,
another replica) are picked up within ``refresh_interval`` seconds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from tollway.background import Periodic
from tollway.governance.entities import CustomerRecord, E, KeyRecord, TeamRecord, salvage
from tollway.storage.base import Store

log = logging.getLogger("tollway.registry")


@dataclass(slots=True)
class Snapshot:
    keys_by_hash: dict[str, KeyRecord] = field(default_factory=dict)
    keys: dict[str, KeyRecord] = field(default_factory=dict)
    teams: dict[str, TeamRecord] = field(default_factory=dict)
    customers: dict[str, CustomerRecord] = field(default_factory=dict)


class Registry:
    """``registry.snapshot.keys_by_hash[hash]``; call ``refresh()`` after a local change."""

    def __init__(self, store: Store, refresh_interval: float = 1.0) -> None:
        self.store = store
        self.refresh_interval = refresh_interval
        self.snapshot = Snapshot()
        self._revision = -1
        self._poller = Periodic(
            "tollway-registry", refresh_interval, self.refresh,
            "refreshing governed entities from the store", log=log,
        )  # fmt: skip

    async def refresh(self, force: bool = False) -> bool:
        revision = await self.store.revision()
        if revision == self._revision and not force:
            return False
        snap = Snapshot()
        for key in await self._load("virtual_key", KeyRecord):
            snap.keys[key.id] = key
            snap.keys_by_hash[key.key_hash] = key
        for team in await self._load("team", TeamRecord):
            snap.teams[team.id] = team
        for customer in await self._load("customer", CustomerRecord):
            snap.customers[customer.id] = customer
        self.snapshot = snap
        self._revision = revision
        return True

    async def _load(self, kind: str, model: type[E]) -> list[E]:
        records = []
        for doc in await self.store.list_entities(kind):
            record, problems = salvage(model, doc)
            if problems:
                what = "left out" if record is None else "read with these set aside"
                log.warning("stored %s %r %s: %s", kind, doc.get("id"), what, "; ".join(problems))
            if record is not None:
                records.append(record)
        return records

    def start(self) -> None:
        self._poller.start()

    async def stop(self) -> None:
        await self._poller.stop()
