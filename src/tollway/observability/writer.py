"""The batched log writer: the request path appends, a background task writes.

Records wait in a bounded in-memory list and are written in one transaction every
``flush_interval`` seconds together with the budgets' settled spend. When the list is
full, content (request and response bodies) is dropped first and request records are
kept up to twice the bound; past that a record is dropped and counted
(``tollway_log_records_dropped``). Bodies waiting to be compressed are also bounded in
bytes (``content_bytes``, 32 MiB by default): under overload the gateway keeps its
memory and its records, and drops bodies, counted in ``tollway_log_contents_dropped``.
A clean shutdown flushes everything.

Bodies arrive raw and are compressed here, on a worker thread (zlib releases the GIL), so
the event loop never spends time on them. When the store fails, the batch is kept and
retried with exponential back-off (up to 30 s); a batch that keeps failing is capped at
twice the bound, oldest records dropped first and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Callable

from tollway.storage.base import Store
from tollway.storage.records import Batch, ContentRecord, RequestRecord, SpendRecord

log = logging.getLogger("tollway.writer")
MAX_BACKOFF_S = 30.0


def compress(contents: list[ContentRecord]) -> list[ContentRecord]:
    """zlib level 1: most of the size win for a fraction of the CPU of the default."""
    return [
        ContentRecord(c.request_id, c.created_at, zlib.compress(c.request_body, 1),
                      zlib.compress(c.response_body, 1))
        for c in contents
    ]  # fmt: skip


def _raw_size(content: ContentRecord) -> int:
    return len(content.request_body) + len(content.response_body)


class LogWriter:
    """``writer.submit(record, content)`` never blocks; ``await writer.stop()`` flushes."""

    def __init__(
        self,
        store: Store,
        *,
        queue_size: int,
        flush_interval: float,
        spend_source: Callable[[], list[SpendRecord]],
        content_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        self.content_bytes = content_bytes
        self._raw_bytes = 0  # raw bodies queued or being compressed
        self.store = store
        self.queue_size = queue_size
        self.flush_interval = flush_interval
        self._spend_source = spend_source
        self._requests: list[RequestRecord] = []
        self._contents: list[ContentRecord] = []
        self._retry: Batch | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.written = 0
        self.dropped_records = 0
        self.dropped_contents = 0
        self.flush_errors = 0
        self._backoff = 0.0

    def submit(self, record: RequestRecord, content: ContentRecord | None) -> None:
        if len(self._requests) >= 2 * self.queue_size:
            self.dropped_records += 1
            return
        self._requests.append(record)
        if content is not None:
            size = _raw_size(content)
            if (
                len(self._contents) >= self.queue_size // 10
                or len(self._requests) > self.queue_size
                or self._raw_bytes + size > self.content_bytes
            ):
                self.dropped_contents += 1
            else:
                self._raw_bytes += size
                self._contents.append(content)

    @property
    def pending(self) -> int:
        return len(self._requests)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="tollway-log-writer")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval + self._backoff)
            try:
                await self.flush()
            except Exception:  # a background loop's outermost layer: keep the gateway up
                self._backoff = min(MAX_BACKOFF_S, max(1.0, 2 * self._backoff))
                log.exception("writing request records failed; retrying in %.0f s", self._backoff)
            else:
                self._backoff = 0.0

    async def flush(self) -> int:
        async with self._lock:
            batch = self._retry or Batch()
            self._retry = None
            batch.requests.extend(self._requests)
            fresh = self._contents
            self._requests, self._contents = [], []
            if fresh:
                try:
                    batch.contents.extend(await asyncio.to_thread(compress, fresh))
                finally:
                    self._raw_bytes -= sum(_raw_size(c) for c in fresh)
            self._cap(batch)
            batch.spend.extend(self._spend_source())
            if not len(batch):
                return 0
            try:
                await self.store.write_batch(batch)
            except BaseException:  # cancelled too: the batch is kept for the next flush
                self.flush_errors += 1
                self._retry = batch
                raise
            self.written += len(batch.requests)
            return len(batch.requests)

    def _cap(self, batch: Batch) -> None:
        excess = len(batch.requests) - 2 * self.queue_size
        if excess > 0:
            del batch.requests[:excess]
            self.dropped_records += excess
        excess = len(batch.contents) - self.queue_size // 10
        if excess > 0:
            del batch.contents[:excess]
            self.dropped_contents += excess

    async def stop(self) -> None:
        if self._task is not None:
            async with self._lock:  # never cancel a write in flight
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
