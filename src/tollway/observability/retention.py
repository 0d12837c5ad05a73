"""Content retention: request and response bodies older than ``retention_days`` are deleted.

Request records stay; only content is purged: the ``contents`` table by its indexed
``created_at``, an hour of content per transaction so that a large backlog never holds the
database's write lock for long; then the chunks of the sessions touched, each deleted only
when no kept body of its session uses it (``sweep``). ``retention_days: 0`` keeps content
forever.

A sweep first moves the sweep generation on (``begin_sweep``), then reads the kept bodies'
manifests. A writer whose chunk references assume the old generation fails its guard and
sends its chunks again, stamped with the new generation, which the sweep never deletes; a
write already past its guard commits before the generation moves (PostgreSQL: the guard
reads with ``FOR SHARE``; SQLite: one writer at a time). So a sweep never deletes a chunk
that a body stored before, during or after it still uses.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from tollway.background import Periodic
from tollway.errors import ContentUnreadable
from tollway.observability import chunks
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
        self.chunks_purged = 0
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
        scopes: set[str] = set()
        while True:
            # Each round deletes at least the oldest row: a gap in time costs one query.
            rows = await self.store.query(
                "SELECT MIN(created_at) AS oldest FROM contents WHERE created_at < ?", (cutoff,)
            )
            oldest = rows[0]["oldest"] if rows else None
            if oldest is None:
                break
            before = min(float(oldest) + STEP, cutoff)
            touched = await self.store.query(
                "SELECT DISTINCT scope FROM contents WHERE created_at < ? AND scope IS NOT NULL",
                (before,),
            )
            scopes.update(r["scope"] for r in touched)
            deleted += await self.store.purge_content(before)
            await asyncio.sleep(0)
        self.purged += deleted
        swept = await sweep(self.store, sorted(scopes)) if scopes else 0
        self.chunks_purged += swept
        if deleted:
            log.info("deleted the content of %d requests older than %d days, and %d chunks "
                     "no kept body uses", deleted, self.retention_days, swept)  # fmt: skip
        return deleted


async def sweep(store: Store, scopes: list[str]) -> int:
    """Delete the chunks of ``scopes`` that no kept body uses; returns how many."""
    generation = await store.begin_sweep()
    deleted = 0
    for scope in scopes:
        live: set[bytes] = set()
        kept = await store.query("SELECT request_body FROM contents WHERE scope = ?", (scope,))
        try:
            for row in kept:
                blob = bytes(row["request_body"])
                if blob.startswith(chunks.MAGIC):
                    live.update(chunks.manifest_digests(blob))
        except ContentUnreadable as exc:  # never delete what a damaged manifest may use
            log.error("session scope %s has an unreadable manifest (%s); not swept", scope, exc)
            continue
        stored = await store.query("SELECT digest FROM content_chunks WHERE scope = ?", (scope,))
        dead = [d for d in (bytes(r["digest"]) for r in stored) if d not in live]
        if dead:
            deleted += await store.delete_chunks(scope, dead, generation)
        await asyncio.sleep(0)
    return deleted
