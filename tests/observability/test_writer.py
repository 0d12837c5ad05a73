"""The batched log writer on a real SQLite file: no record lost, the full-queue policy counted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import zstandard

from tollway.observability.writer import LogWriter
from tollway.storage import queries
from tollway.storage.records import Batch, ContentRecord, RequestRecord
from tollway.storage.sqlite import SQLiteStore


class CountingStore(SQLiteStore):
    """A real SQLite store that counts batches, and can fail or stall on demand."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.batches = 0
        self.fail_next = 0
        self.stall_s = 0.0

    async def write_batch(self, batch: Batch) -> None:
        if self.stall_s:
            await asyncio.sleep(self.stall_s)  # as a network round trip would
        if self.fail_next:
            self.fail_next -= 1
            raise OSError("disk unplugged")
        self.batches += 1
        await super().write_batch(batch)

    async def count(self, table: str) -> int:
        rows = await self.query(f"SELECT COUNT(*) AS n FROM {table}")
        return int(rows[0]["n"])


def record(i: int) -> RequestRecord:
    return RequestRecord(id=f"req_{i:06d}", started_at=1e9 + i / 1000, latency_ms=12.5,
                         surface="anthropic", status=200, input_tokens=i)  # fmt: skip


def content(i: int) -> ContentRecord:
    return ContentRecord(f"req_{i:06d}", 1e9 + i / 1000, b'{"q": 1}', b"")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[CountingStore]:
    s = CountingStore(f"sqlite:///{tmp_path / 'w.db'}")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def test_ten_thousand_records_none_dropped(store: CountingStore) -> None:
    writer = LogWriter(store, queue_size=10_000, flush_interval=0.005, spend_source=list)
    writer.start()
    for i in range(10_000):
        writer.submit(record(i), content(i) if i % 10 == 0 else None)
        if i % 100 == 99:  # bursts, with the writer flushing between them
            await asyncio.sleep(0.001)
    await writer.stop()
    assert await store.count("requests") == 10_000 == writer.written
    assert writer.dropped_records == 0 and writer.flush_errors == 0 and writer.pending == 0
    assert await store.count("contents") == 1_000 and writer.dropped_contents == 0
    assert store.batches > 1  # written in several batches, not at shutdown only
    rows = await store.query("SELECT SUM(input_tokens) AS n FROM requests")
    assert rows[0]["n"] == sum(range(10_000))


async def test_full_queue_spills_bodies_then_counts_dropped_records(
    store: CountingStore, tmp_path: Path
) -> None:
    writer = LogWriter(store, queue_size=100, flush_interval=60, spend_source=list,
                       spool_dir=tmp_path)  # fmt: skip
    for i in range(250):  # the writer is not running: nothing drains the queue
        writer.submit(record(i), content(i))
    # Bodies are held up to a tenth of the bound, then spilled; records up to twice it.
    assert writer.pending == 200 and writer.pending_contents == 250
    assert writer.dropped_records == 50
    assert writer.spilled_contents == 240 and writer.dropped_contents == 0
    await writer.stop()
    assert await store.count("requests") == 200 == writer.written
    assert await store.count("contents") == 250
    assert not list(tmp_path.glob("*.spool"))  # emptied and removed
    writer.submit(record(1000), None)  # room again after a flush
    assert writer.dropped_records == 50 and writer.pending == 1


async def test_best_effort_bodies_are_dropped_past_the_spool_bound(
    store: CountingStore, tmp_path: Path
) -> None:
    writer = LogWriter(store, queue_size=100, flush_interval=60, spend_source=list,
                       spool_dir=tmp_path, spool_bytes=0)  # fmt: skip
    for i in range(30):
        required = i % 3 == 0
        writer.submit(record(i), ContentRecord(f"req_{i:06d}", 1e9, b"q", b"r", required))
    # 10 held in memory (i < 10), then of i = 10..29 the required ones (12, 15, ... 27) spill.
    assert writer.spilled_contents == 6 and writer.dropped_contents == 14
    await writer.stop()
    rows = await store.query("SELECT request_id FROM contents ORDER BY request_id")
    expected = [f"req_{i:06d}" for i in range(30) if i < 10 or i % 3 == 0]
    assert [r["request_id"] for r in rows] == expected


async def test_a_failed_write_is_retried_with_nothing_lost(store: CountingStore) -> None:
    writer = LogWriter(store, queue_size=1_000, flush_interval=60, spend_source=list)
    for i in range(10):
        writer.submit(record(i), content(i))
    store.fail_next = 1
    with pytest.raises(OSError):
        await writer.flush()
    assert writer.flush_errors == 1 and await store.count("requests") == 0
    for i in range(10, 15):
        writer.submit(record(i), None)
    assert await writer.flush() == 15
    assert await store.count("requests") == 15 and await store.count("contents") == 10


async def test_stop_during_a_write_in_flight_loses_nothing(store: CountingStore) -> None:
    store.stall_s = 0.05
    writer = LogWriter(store, queue_size=1_000, flush_interval=0.001, spend_source=list)
    writer.start()
    for i in range(100):
        writer.submit(record(i), None)
    await asyncio.sleep(0.02)  # the first flush has taken the records and is writing
    await writer.stop()
    assert await store.count("requests") == 100 == writer.written


async def test_bodies_are_stored_compressed(store: CountingStore) -> None:
    writer = LogWriter(store, queue_size=1_000, flush_interval=60, spend_source=list)
    body = b'{"messages": "' + b"hello " * 1000 + b'"}'
    writer.submit(record(1), ContentRecord("req_000001", 1e9, body, b"ok"))
    await writer.flush()
    rows = await store.query("SELECT request_body, response_body, scope FROM contents")
    stored = bytes(rows[0]["request_body"])
    assert rows[0]["scope"] is None  # no session: one zstd frame
    assert len(stored) < len(body) // 10
    assert zstandard.ZstdDecompressor().decompress(stored) == body
    assert await queries.get_content(store, "req_000001") == (body, b"ok")


async def test_a_failing_store_is_retried_with_backoff_and_bounded(
    store: CountingStore,
) -> None:
    writer = LogWriter(store, queue_size=100, flush_interval=0.01, spend_source=list)
    store.fail_next = 3
    writer.start()
    for i in range(500):
        writer.submit(record(i), None)
        if i % 50 == 49:
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.05)
    assert writer.flush_errors >= 1 and store.batches == 0
    assert writer._backoff >= 1.0  # waits before hammering a failing store again
    store.fail_next = 0  # the store works again: everything kept is written
    await writer.stop()
    kept = await store.count("requests")
    assert kept + writer.dropped_records == 500 and kept <= 200  # capped at twice the bound


async def test_queued_bodies_are_bounded_in_bytes(store: CountingStore, tmp_path: Path) -> None:
    writer = LogWriter(store, queue_size=10_000, flush_interval=60, spend_source=list,
                       content_bytes=100_000, spool_dir=tmp_path)  # fmt: skip
    body = b"b" * 30_000
    for i in range(5):
        writer.submit(record(i), ContentRecord(f"req_{i:06d}", 1e9, body, b""))
    assert writer.spilled_contents == 2 and writer.pending == 5  # 3 held, 2 on disk
    assert writer.dropped_contents == 0
    await writer.flush()  # the spilled ones first, as memory allows
    assert await store.count("contents") == 3 and await store.count("requests") == 5
    await writer.flush()
    assert await store.count("contents") == 5 and writer.pending_contents == 0
    writer.submit(record(9), ContentRecord("req_000009", 1e9, body, b""))
    assert writer.spilled_contents == 2  # room again once the bodies were stored


async def test_required_bodies_past_capacity_hold_requests_back(
    store: CountingStore, tmp_path: Path
) -> None:
    """A fixed rate of 400 bodies/s of a required key into a writer that stores far fewer
    (every write stalls 20 ms, memory holds 4 bodies, the spool 100 kB): requests wait for
    room, as the gateway's handler makes them, and no body is dropped."""
    store.stall_s = 0.02
    writer = LogWriter(store, queue_size=100, flush_interval=0.005, spend_source=list,
                       content_bytes=90_000, spool_dir=tmp_path, spool_bytes=100_000)  # fmt: skip
    writer.start()
    loop = asyncio.get_running_loop()
    body = b'{"messages":"' + b"x" * 20_000 + b'"}'
    t0, n, rate, waited = loop.time(), 160, 400.0, 0.0
    for i in range(n):
        due = t0 + i / rate
        if due > loop.time():
            await asyncio.sleep(due - loop.time())
        before = loop.time()
        assert await writer.room(5.0)  # back-pressure, then the request goes on
        waited += loop.time() - before
        writer.submit(record(i), ContentRecord(f"req_{i:06d}", 1e9, body, b"r", required=True))
        assert writer.spool.pending_bytes <= 100_000 + len(body) + 100  # at most one over
    assert writer.held_back > 0 and waited > 0.1  # capacity was reached and it held
    await writer.stop()
    assert writer.dropped_contents == 0 and writer.refused_full == 0
    assert await store.count("contents") == n == await store.count("requests")


async def test_a_backlog_that_does_not_drain_refuses(store: CountingStore, tmp_path: Path) -> None:
    writer = LogWriter(store, queue_size=100, flush_interval=60, spend_source=list,
                       content_bytes=10, spool_dir=tmp_path, spool_bytes=10)  # fmt: skip
    writer.submit(record(1), ContentRecord("req_000001", 1e9, b"q" * 100, b"", required=True))
    assert writer.backlogged and await writer.room(0.05) is False
    assert writer.held_back == 1 and writer.refused_full == 1
    flushed = asyncio.create_task(writer.flush())  # drains while the next one waits
    assert await writer.room(5.0) and flushed.done()
    assert writer.held_back == 2 and writer.refused_full == 1 and not writer.backlogged
    await writer.stop()
