"""The batched log writer: the request path appends, a background task writes.

Records wait in a bounded in-memory list and are written in one transaction every
``flush_interval`` seconds together with the budgets' settled spend. Past twice the bound a
record is dropped and counted (``tollway_log_records_dropped``). A clean shutdown flushes
everything.

Bodies (request and response) wait raw, bounded in bytes (``content_bytes``) and in count.
Past that bound they are spilled to disk (observability/spool.py) and read back as memory
frees up; a process that dies leaves its spool file, and the next one to start on the
same directory stores what is in it (``adopt_orphans``). A ``best_effort`` body is dropped
only when the spool also holds ``spool_bytes``; spills and drops are counted
(``tollway_log_contents_spilled``, ``tollway_log_contents_dropped``) and logged.

Nothing is dropped for a key whose content is ``required``: past the spool bound its
bodies are still spilled (kept in memory if spilling fails), and the gateway applies
back-pressure instead: a new request of such a key waits (``room``) until the backlog is
under the bound again, and is refused with a 503 and ``retry-after`` if it does not drain
in time (``tollway_log_content_held_back``, ``tollway_log_content_refused``, and the log).

Bodies are prepared for the store on the writer's own content thread, never on the event
loop: session bodies become chunk manifests (observability/content.py), everything else
zstd. When the store fails, the batch is kept and retried with exponential back-off (up to
30 s); a batch that keeps failing is capped at twice the bound, oldest records dropped
first and counted, and its bodies go to the spool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tollway.errors import ChunksSwept
from tollway.observability.content import Preparer, scope_of
from tollway.observability.spool import Item, Spool, SpoolCorrupt
from tollway.storage.base import Store
from tollway.storage.records import Batch, ContentRecord, RequestRecord, SpendRecord, StoredContent

log = logging.getLogger("tollway.writer")
MAX_BACKOFF_S = 30.0
WARN_EVERY_S = 10.0


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
        on_written: Callable[[], None] | None = None,
        content_bytes: int = 32 * 1024 * 1024,
        spool_dir: Path | None = None,
        spool_bytes: int = 1024 * 1024 * 1024,
    ) -> None:
        self.content_bytes = content_bytes
        self.spool_bytes = spool_bytes
        self.store = store
        self.queue_size = queue_size
        self.flush_interval = flush_interval
        self._spend_source = spend_source
        self._on_written = on_written  # after each successful write (the journal's checkpoint)
        self._requests: list[RequestRecord] = []
        self._contents: list[Item] = []
        self._raw_bytes = 0  # raw bodies held in memory: queued, being prepared or written
        self._retry: Batch | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tollway-content")
        self.preparer = Preparer()
        # Without a directory of its own the writer replays nothing: a shared temporary
        # one may hold another gateway's files.
        self.spool_dir = spool_dir
        self.spool = Spool(spool_dir or Path(tempfile.gettempdir()) / "tollway-spool")
        self._orphans: list[Spool] = []  # files left by a process that died, replayed first
        self._marks: list[tuple[Spool, int]] = []  # spool offsets stored by the next write
        self._warned: dict[str, float] = {}  # when each kind of warning was last logged
        self.written = 0
        self.contents_written = 0
        self.dropped_records = 0
        self.dropped_contents = 0
        self.spilled_contents = 0
        self.replayed_contents = 0
        self.held_back = 0  # requests of required keys that waited for the backlog
        self.refused_full = 0  # ... and were refused when it did not drain in time
        self._drained = asyncio.Event()  # set after every write
        self._stuck = 0  # required bodies in memory past its bound (spilling failed)
        self.flush_errors = 0
        self._backoff = 0.0

    # -- the request path

    def submit(self, record: RequestRecord, content: ContentRecord | None) -> None:
        if len(self._requests) >= 2 * self.queue_size:
            self.dropped_records += 1
        else:
            self._requests.append(record)
        if content is None:
            return
        item = (content, scope_of(record.vk_id, record.session_id))
        size = _raw_size(content)
        fits = (
            len(self._contents) < self.queue_size // 10
            and self._raw_bytes + size <= self.content_bytes
        )
        # While bodies wait on disk, new ones follow them there (oldest stored first),
        # unless the spool has no room for this one and memory has.
        if fits and (not self.spool.frames or not self._may_spill(content, size)):
            self._raw_bytes += size
            self._contents.append(item)
        else:
            self._spill(item, size)

    def _may_spill(self, content: ContentRecord, size: int) -> bool:
        return content.required or self.spool.pending_bytes + size <= self.spool_bytes

    def _spill(self, item: Item, size: int) -> None:
        content = item[0]
        if not self._may_spill(content, size):
            self.dropped_contents += 1
            self._warn("drop", "content memory and spool full: dropped a best-effort body")
            return
        try:
            self.spool.put(*item)
        except OSError as exc:
            if content.required:  # never dropped: held in memory, and requests held back
                self._raw_bytes += size
                self._contents.append(item)
                self._stuck += 1
                log.error("could not spill a required body to %s: %s; kept in memory",
                          self.spool.path, exc)  # fmt: skip
                return
            self.dropped_contents += 1
            log.error("could not spill a request body to %s: %s; body lost", self.spool.path, exc)
            return
        self.spilled_contents += 1
        self._warn("spill", f"content memory bound reached: spilling bodies to {self.spool.path}")

    def _warn(self, kind: str, message: str) -> None:
        now = time.monotonic()
        if now - self._warned.get(kind, -WARN_EVERY_S) >= WARN_EVERY_S:
            self._warned[kind] = now
            log.warning("%s (spilled %d, dropped %d, requests held back %d so far)", message,
                        self.spilled_contents, self.dropped_contents, self.held_back)  # fmt: skip

    @property
    def backlogged(self) -> bool:
        """Past capacity: more on disk than the spool bound, or required bodies held in
        memory because spilling them failed."""
        return self.spool.pending_bytes > self.spool_bytes or self._stuck > 0

    async def room(self, timeout: float) -> bool:
        """Back-pressure for keys whose bodies are required: wait (at most ``timeout``)
        until the backlog is under capacity; False if it stays over."""
        if not self.backlogged:
            return True
        self.held_back += 1
        self._warn("hold", "content backlog past capacity: holding back requests of keys whose "
                   "content is required until it drains")  # fmt: skip
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.backlogged:
            left = deadline - loop.time()
            if left <= 0:
                self.refused_full += 1
                return False
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._drained.wait()
        return True

    @property
    def pending(self) -> int:
        return len(self._requests)

    @property
    def pending_contents(self) -> int:
        return len(self._contents) + self.spool.frames + sum(s.frames for s in self._orphans)

    # -- the background loop

    def start(self) -> None:
        self.adopt_orphans()
        self._task = asyncio.create_task(self._loop(), name="tollway-log-writer")

    def adopt_orphans(self) -> int:
        """Take over the spool files of a process that died; returns the bodies in them."""
        if self.spool_dir is None or not self.spool_dir.is_dir():
            return 0
        found = [s for s in Spool.orphans(self.spool_dir) if s.path != self.spool.path]
        self._orphans += found
        bodies = sum(s.frames for s in found)
        if found:
            names = ", ".join(s.path.name for s in found)
            log.warning("found %d bodies spilled by a gateway that stopped before storing "
                        "them (%s); storing them now", bodies, names)  # fmt: skip
        self.replayed_contents += bodies
        return bodies

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

    async def _unspool(self, held: int) -> list[Item]:
        """Spilled bodies, oldest first (a dead process's files, then ours), as many as the
        bounds leave room for. Their frames count as stored once the batch commits."""
        source = next((s for s in (*self._orphans, self.spool) if s.frames), None)
        room = self.content_bytes - self._raw_bytes
        frames = self.queue_size // 10 - held
        if source is None or frames <= 0:
            return []
        one = not held and not self._raw_bytes  # memory is free: one body, however large
        start, end = source.read, source.written
        try:
            items, offset = await asyncio.get_running_loop().run_in_executor(
                self._pool, source.take, start, end, room, frames, one
            )
        except SpoolCorrupt:
            source.set_aside()
            self._drop_finished_orphans()
            return []
        source.taken(offset, len(items))
        self._marks.append((source, offset))
        self._raw_bytes += sum(_raw_size(c) for c, _s in items)
        return items

    def _committed(self) -> None:
        for source, offset in self._marks:
            source.commit(offset)
        self._marks.clear()
        self._drop_finished_orphans()

    def _drop_finished_orphans(self) -> None:
        for orphan in [o for o in self._orphans if o.done]:
            orphan.close()  # every body in it is stored: the file goes
            self._orphans.remove(orphan)
            log.info("stored every body of %s", orphan.path.name)

    async def _prepare(self, items: list[Item]) -> list[StoredContent]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.preparer.prepare_all, items)

    async def flush(self) -> int:
        async with self._lock:
            batch = self._retry or Batch()
            self._retry = None
            batch.requests.extend(self._requests)
            fresh = self._contents
            self._requests, self._contents = [], []
            try:
                fresh = await self._unspool(len(batch.contents) + len(fresh)) + fresh
                if fresh:
                    batch.contents.extend(await self._prepare(fresh))
                    fresh = []
                if self._cap(batch):
                    await self._reprepare(batch)
                batch.chunk_gen = self.preparer.generation
                batch.spend.extend(self._spend_source())
                if not len(batch):
                    return 0
                await self._write(batch)
            except BaseException:  # cancelled too: the batch is kept for the next flush
                self.flush_errors += 1
                self._retry = batch
                self._contents[:0] = fresh  # bodies not prepared yet wait for the next one
                raise
            self._raw_bytes -= sum(_raw_size(c.raw) for c in batch.contents)
            self._committed()
            self._stuck = 0  # they were in this batch
            self._drained.set()
            self.written += len(batch.requests)
            self.contents_written += len(batch.contents)
            if self._on_written is not None:
                self._on_written()
            return len(batch.requests)

    async def _write(self, batch: Batch) -> None:
        try:
            await self.store.write_batch(batch)
        except ChunksSwept as swept:  # a sweep ran: send every chunk again, once
            log.info("chunks were swept (generation %d); sending them again", swept.generation)
            self.preparer.reset(swept.generation)
            await self._reprepare(batch)
            await self.store.write_batch(batch)

    async def _reprepare(self, batch: Batch) -> None:
        """Prepare the batch's bodies again with nothing assumed stored."""
        self.preparer.reset(self.preparer.generation)
        raw = [(c.raw, c.scope) for c in batch.contents]
        batch.contents = await self._prepare(raw)
        batch.chunk_gen = self.preparer.generation

    def _cap(self, batch: Batch) -> bool:
        """Bound a batch that keeps failing; True when bodies left it (to the spool)."""
        excess = len(batch.requests) - 2 * self.queue_size
        if excess > 0:
            del batch.requests[:excess]
            self.dropped_records += excess
        excess = len(batch.contents) - self.queue_size // 10
        if excess <= 0:
            return False
        for stored in batch.contents[-excess:]:
            self._raw_bytes -= _raw_size(stored.raw)
            self._spill((stored.raw, stored.scope), _raw_size(stored.raw))
        del batch.contents[-excess:]
        return True

    async def stop(self) -> None:
        if self._task is not None:
            async with self._lock:  # never cancel a write in flight
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
        while self.spool.frames or any(o.frames for o in self._orphans):
            await self.flush()
        self.spool.close()
        for orphan in self._orphans:
            orphan.close()
        self._pool.shutdown(wait=True)
