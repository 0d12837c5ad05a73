"""The disk spool: frames read back in order, a dead process's file replayed, torn tails
ignored, a live writer's file left alone."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tollway.observability.spool import Spool
from tollway.observability.writer import LogWriter
from tollway.storage import queries
from tollway.storage.records import ContentRecord, RequestRecord
from tollway.storage.sqlite import SQLiteStore


def body(i: int) -> ContentRecord:
    request = b'{"messages":[' + b'{"role":"user","content":"%d"},' % i * (40 + i) + b"{}]}"
    return ContentRecord(f"req_{i:04d}", 1e9 + i, request, b"data: %d\n\n" % i, i % 2 == 0)


def record(i: int) -> RequestRecord:
    return RequestRecord(id=f"req_{i:04d}", started_at=1e9 + i, latency_ms=1.0,
                         surface="anthropic", status=200, vk_id="vk", session_id="s")  # fmt: skip


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(f"sqlite:///{tmp_path / 's.db'}")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def test_frames_come_back_in_order_and_within_bounds(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    sizes = [spool.put(body(i), f"scope{i}") for i in range(5)]
    assert spool.frames == 5 and spool.written == sum(sizes)
    items, offset = spool.take(0, spool.written, max_bytes=sizes[0] + sizes[1], max_frames=9)
    assert [(c, s) for c, s in items] == [(body(0), "scope0"), (body(1), "scope1")]
    assert offset == sizes[0] + sizes[1]
    # Nothing fits in 1 byte, unless at least one is asked for.
    assert spool.take(offset, spool.written, 1, 9) == ([], offset)
    items, end = spool.take(offset, spool.written, 1, 9, one=True)
    assert [c for c, _s in items] == [body(2)] and end == offset + sizes[2]
    spool.taken(end, 3)
    spool.commit(end)
    assert spool.frames == 2 and spool.pending_bytes == sizes[3] + sizes[4]
    spool.close()
    assert spool.path.exists()  # two frames not stored yet: kept for the next start


def test_a_live_writers_file_is_not_an_orphan(tmp_path: Path) -> None:
    live = Spool(tmp_path)
    live.put(body(1), None)
    assert Spool.orphans(tmp_path) == []  # its flock is held
    live.close()
    (orphan,) = Spool.orphans(tmp_path)  # unlocked now, with a frame not stored
    assert orphan.path == live.path and orphan.frames == 1 and orphan.adopted
    orphan.close()


def test_a_frame_cut_by_a_crash_is_left_out(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    first = spool.put(body(1), None)
    spool.put(body(2), None)
    spool.close()
    os.truncate(spool.path, first + 10)  # the second frame's write never finished
    (orphan,) = Spool.orphans(tmp_path)
    assert orphan.frames == 1 and orphan.written == first
    items, _end = orphan.take(0, orphan.written, 1 << 20, 9)
    assert [c for c, _s in items] == [body(1)]
    orphan.close()


async def test_a_dead_writers_bodies_are_stored_at_the_next_start(
    store: SQLiteStore, tmp_path: Path
) -> None:
    spool_dir = tmp_path / "spool"
    dead = LogWriter(store, queue_size=100, flush_interval=60, spend_source=list,
                     content_bytes=1, spool_dir=spool_dir)  # fmt: skip
    for i in range(12):
        dead.submit(record(i), body(i))  # past the memory bound: all on disk
    await dead.flush()  # records and one body stored
    assert await queries.get_content(store, "req_0000") == (body(0).request_body,
                                                             body(0).response_body)  # fmt: skip

    async def broken(batch: object) -> None:
        raise OSError("disk unplugged")

    store.write_batch = broken  # type: ignore[method-assign]
    with pytest.raises(OSError):
        await dead.flush()  # the next body is handed out, its write fails: not committed
    del store.write_batch
    assert dead.spool._fd is not None and dead.spool.frames == 10
    assert await queries.get_content(store, "req_0001") is None
    os.close(dead.spool._fd)  # no close(): the file stays as a crash leaves it
    dead._pool.shutdown()

    writer = LogWriter(store, queue_size=100, flush_interval=60, spend_source=list,
                       spool_dir=spool_dir)  # fmt: skip
    # Every frame, the one stored already too (the file is emptied only once all are),
    # and the one whose batch never committed.
    assert writer.adopt_orphans() == 12
    assert writer.pending_contents == 12
    await writer.stop()
    for i in range(12):
        b = body(i)
        assert await queries.get_content(store, b.request_id) == (b.request_body,
                                                                  b.response_body)  # fmt: skip
    assert writer.replayed_contents == 12
    assert list(spool_dir.iterdir()) == []  # stored, so removed


async def test_a_frame_that_does_not_decode_is_set_aside(
    store: SQLiteStore, tmp_path: Path
) -> None:
    spool = Spool(tmp_path / "spool")
    spool.put(body(1), None)
    spool.close()
    with open(spool.path, "r+b") as f:
        f.seek(6)
        f.write(b"\xc1\xc1\xc1")  # 0xc1 is never valid msgpack
    writer = LogWriter(store, queue_size=100, flush_interval=60, spend_source=list,
                       spool_dir=tmp_path / "spool")  # fmt: skip
    assert writer.adopt_orphans() == 1
    await writer.stop()  # does not loop on it
    assert writer.pending_contents == 0
    assert [p.name for p in (tmp_path / "spool").iterdir()] == [spool.path.name + ".corrupt"]
