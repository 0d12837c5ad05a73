"""Governed entities held in memory, refreshed when the store's revision moves.

The request path reads only from here; admin changes made by any process (API, CLI,
another replica) are picked up within ``refresh_interval`` seconds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from tollway.background import Periodic
from tollway.governance.entities import CustomerRecord, KeyRecord, TeamRecord
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
        for doc in await self.store.list_entities("virtual_key"):
            key = KeyRecord.model_validate(doc)
            snap.keys[key.id] = key
            snap.keys_by_hash[key.key_hash] = key
        for doc in await self.store.list_entities("team"):
            team = TeamRecord.model_validate(doc)
            snap.teams[team.id] = team
        for doc in await self.store.list_entities("customer"):
            customer = CustomerRecord.model_validate(doc)
            snap.customers[customer.id] = customer
        self.snapshot = snap
        self._revision = revision
        return True

    def start(self) -> None:
        self._poller.start()

    async def stop(self) -> None:
        await self._poller.stop()
