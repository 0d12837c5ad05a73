"""Content retention: request and response bodies older than ``retention_days`` are deleted.

Request records stay; only the ``contents`` table is purged, by its indexed ``created_at``,
an hour of content per transaction so that a large backlog never holds the database's
write lock for long. ``retention_days: 0`` keeps content forever.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from tollway.background import Periodic
from tollway.storage.base import Store

log = logging.getLogger("tollway.retention")
DAY = 86_400.0
STEP = 3_600.0


class ContentRetention:
    """``retention = ContentRetention(store, 30); retention.start(); ...; await stop()``."""

    def __init__(
        self,
        store: Store,
        retention_days: int,
        *,
        interval_s: float = 3_600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.retention_days = retention_days
        self.interval_s = interval_s
        self.clock = clock
        self.purged = 0
        self._periodic = Periodic(
            "tollway-content-retention", interval_s, self.purge,
            "purging old request content", run_first=True, log=log,
        )  # fmt: skip

    def start(self) -> None:
        if self.retention_days > 0:
            self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def purge(self) -> int:
        """Delete content created before now - retention_days; returns how many."""
        if self.retention_days <= 0:
            return 0
        cutoff = self.clock() - self.retention_days * DAY
        deleted = 0
        while True:
            # Each round deletes at least the oldest row: a gap in time costs one query.
            rows = await self.store.query(
                "SELECT MIN(created_at) AS oldest FROM contents WHERE created_at < ?", (cutoff,)
            )
            oldest = rows[0]["oldest"] if rows else None
            if oldest is None:
                break
            deleted += await self.store.purge_content(min(float(oldest) + STEP, cutoff))
            await asyncio.sleep(0)
        self.purged += deleted
        if deleted:
            log.info("deleted the content of %d requests older than %d days",
                     deleted, self.retention_days)  # fmt: skip
        return deleted
