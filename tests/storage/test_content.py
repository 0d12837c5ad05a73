"""Bodies stored by reference: read back byte for byte, swept exactly, never dropped.

The scenarios (``check_*``) take any store; ``test_postgres.py`` runs them on PostgreSQL.
The session bodies are Claude Code's own (``claude_long_session.jsonl.zst``: 48 requests
of one real session of the pinned CLI, recorded by ``bench/record_session.py``) and
conversations that hypothesis grows, forks and shrinks.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import zstandard
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tollway.observability import chunks
from tollway.observability.content import Preparer, scope_of
from tollway.observability.retention import DAY, ContentRetention
from tollway.observability.writer import LogWriter
from tollway.storage import queries
from tollway.storage.base import Store
from tollway.storage.records import ContentRecord, RequestRecord
from tollway.storage.sqlite import SQLiteStore

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "wire"
T0 = 1_760_000_000.0
KEY = "vk_audit"


def long_session() -> list[tuple[str, bytes, bytes]]:
    """(session id, request body, SSE response) of each request, as Claude Code sent them."""
    raw = (FIXTURE / "claude_long_session.jsonl.zst").read_bytes()
    text = zstandard.ZstdDecompressor().decompress(raw, max_output_size=1 << 30)
    out = []
    for line in text.splitlines():
        d = json.loads(line)
        out.append((d["session"], base64.b64decode(d["body_b64"]),
                    base64.b64decode(d["response_b64"])))  # fmt: skip
    return out


def record(rid: str, at: float, session: str | None, key: str = KEY) -> RequestRecord:
    return RequestRecord(id=rid, started_at=at, latency_ms=1.0, surface="anthropic",
                         status=200, vk_id=key, session_id=session)  # fmt: skip


async def count(store: Store, table: str) -> int:
    rows = await store.query(f"SELECT COUNT(*) AS n FROM {table}")
    return int(rows[0]["n"])


async def live_chunks(store: Store) -> set[tuple[str, bytes]]:
    """(scope, digest) of every chunk a kept manifest names."""
    live = set()
    for r in await store.query("SELECT scope, request_body FROM contents"):
        blob = bytes(r["request_body"])
        if blob.startswith(chunks.MAGIC):
            live |= {(r["scope"], d) for d in chunks.manifest_digests(blob)}
    return live


async def stored_chunks(store: Store) -> set[tuple[str, bytes]]:
    rows = await store.query("SELECT scope, digest FROM content_chunks")
    return {(r["scope"], bytes(r["digest"])) for r in rows}


# ------------------------------------------------------------------ the real session


async def check_long_session_reads_back(store: Store, spool: Path) -> None:
    session = long_session()
    writer = LogWriter(store, queue_size=1_000, flush_interval=60, spend_source=list,
                       spool_dir=spool)  # fmt: skip
    for i, (sid, body, response) in enumerate(session):
        writer.submit(record(f"r{i:03d}", T0 + i, sid),
                      ContentRecord(f"r{i:03d}", T0 + i, body, response))  # fmt: skip
        if i % 5 == 4:
            await writer.flush()
    await writer.stop()
    for i, (_sid, body, response) in enumerate(session):
        assert await queries.get_content(store, f"r{i:03d}") == (body, response)
    rows = await store.query("SELECT request_body FROM contents")
    manifests = sum(len(bytes(r["request_body"])) for r in rows)
    data = await store.query("SELECT data FROM content_chunks")
    stored = manifests + sum(len(bytes(r["data"])) for r in data)
    raw = sum(len(b) for _s, b, _r in session)
    # The conversation is stored once: 11.6 MB of request bodies in well under 300 kB.
    assert stored * 40 < raw, (stored, raw)
    assert await stored_chunks(store) == await live_chunks(store)
    row = await queries.get_log(store, "r047")
    assert row is not None and row["content"]["request"] == json.loads(session[47][1])


# ------------------------------------------------------------------ random conversations

_TEXT = st.text(
    alphabet=st.sampled_from(["a", "é", '"', "\\", "\n", "{", "}", ",", "[", "]", "💡", " "]),
    max_size=60,
)
_MESSAGE = st.builds(
    lambda role, text, pad: {"role": role, "content": [
        {"type": "text", "text": text + "x" * pad}]},
    st.sampled_from(["user", "assistant"]), _TEXT, st.integers(0, 5000),
)  # fmt: skip
# Each step: grow by some messages, fork back to an earlier length, or compact (a summary
# replaces all but the last messages); in one of two sessions, or with no session. Or a
# retention purge of the bodies before an earlier step, with its chunk sweep, while the
# writer may still hold bodies that assume the swept chunks are stored.
_STEP = st.tuples(
    st.sampled_from(["grow", "grow", "grow", "fork", "shrink", "purge"]),
    st.lists(_MESSAGE, min_size=1, max_size=4),
    st.integers(0, 30),
    st.sampled_from(["s1", "s1", "s2", None]),
    st.booleans(),
)
_TOOLS = [{"name": f"tool{i}", "description": "d" * (500 + 97 * i),
           "input_schema": {"type": "object", "properties": {"a": {"type": "string"}}}}
          for i in range(8)]  # fmt: skip


def _body(messages: list[dict[str, Any]], marker: bool) -> bytes:
    msgs = json.loads(json.dumps(messages))
    if marker and msgs:  # Claude Code's moving cache marker, on the newest message
        msgs[-1]["content"][-1]["cache_control"] = {"type": "ephemeral"}
    doc = {"model": "claude-opus-4-8", "messages": msgs, "system": [{"type": "text",
           "text": "You are Claude Code." * 50}], "tools": _TOOLS, "stream": True}  # fmt: skip
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


async def check_random_conversation(
    store: Store, spool: Path, steps: list[Any], flush_every: int
) -> None:
    writer = LogWriter(store, queue_size=1_000, flush_interval=60, spend_source=list,
                       spool_dir=spool)  # fmt: skip
    conversations: dict[str | None, list[dict[str, Any]]] = {"s1": [], "s2": [], None: []}
    expected: dict[str, tuple[bytes, bytes]] = {}
    submitted: list[str] = []
    stored = 0  # how many of ``submitted`` a flush has written
    for i, (op, messages, n, session, marker) in enumerate(steps):
        if op == "purge":  # everything stored before step n % (i + 1) is deleted
            cut = n % (i + 1)
            retention = ContentRetention(store, 1, clock=lambda c=cut: T0 + c + DAY)
            await retention.purge()
            event(f"a purge swept chunks: {retention.chunks_purged > 0}")
            for rid in submitted[:stored]:
                if int(rid[1:]) < cut:
                    expected.pop(rid, None)
            # Exactly the chunks kept bodies use are left, and every kept body reads back.
            assert await stored_chunks(store) == await live_chunks(store)
            for rid in submitted[:stored]:
                assert await queries.get_content(store, rid) == expected.get(rid), rid
            continue
        convo = conversations[session]
        if op == "grow":
            convo.extend(messages)
        elif op == "fork":
            del convo[min(n, len(convo)) :]
            convo.extend(messages)
        else:
            convo[:] = [{"role": "user", "content": [{"type": "text", "text": "summary"}]},
                        *convo[-2:], *messages]  # fmt: skip
        body = _body(convo, marker)
        if i % 7 == 6:
            body = body[: len(body) // 2] + b"\xff\xfe not json"  # hostile bytes too
        response = f"data: {i}\n\n".encode()
        rid = f"q{i:04d}"
        expected[rid] = (body, response)
        submitted.append(rid)
        writer.submit(record(rid, T0 + i, session), ContentRecord(rid, T0 + i, body, response))
        if i % flush_every == flush_every - 1:
            await writer.flush()
            stored = len(submitted)
    await writer.stop()
    for rid in submitted:
        assert await queries.get_content(store, rid) == expected.get(rid), rid
    assert await stored_chunks(store) == await live_chunks(store)


# ------------------------------------------------------------------ retention sweeps


async def check_purge_removes_chunks_only_when_unused(store: Store, spool: Path) -> None:
    session = long_session()[:12]
    writer = LogWriter(store, queue_size=1_000, flush_interval=60, spend_source=list,
                       spool_dir=spool)  # fmt: skip
    # One Claude Code session over 12 days, and a second session of the same key that
    # shares no chunk scope with it (same bodies, other session id).
    for i, (sid, body, response) in enumerate(session):
        at = T0 + i * DAY
        writer.submit(record(f"a{i:02d}", at, sid), ContentRecord(f"a{i:02d}", at, body, response))
        writer.submit(record(f"b{i:02d}", at, "other"), ContentRecord(f"b{i:02d}", at, body, b""))
    await writer.flush()
    scope = scope_of(KEY, session[0][0])
    before = await stored_chunks(store)
    used_by_last = {(scope, d) for d in chunks.manifest_digests(
        bytes((await store.query("SELECT request_body FROM contents WHERE request_id = 'a11'"))
              [0]["request_body"]))}  # fmt: skip
    now = T0 + 11 * DAY - 60
    retention = ContentRetention(store, 5, clock=lambda: now)  # keeps days 6..11
    assert await retention.purge() == 12
    kept = [r["request_id"] for r in await store.query(
        "SELECT request_id FROM contents ORDER BY request_id")]  # fmt: skip
    assert kept == [f"a{i:02d}" for i in range(6, 12)] + [f"b{i:02d}" for i in range(6, 12)]
    after = await stored_chunks(store)
    assert after == await live_chunks(store)  # exactly the chunks kept bodies use
    assert used_by_last <= after and after < before
    assert retention.chunks_purged == len(before - after) > 0
    for i in range(6, 12):
        assert await queries.get_content(store, f"a{i:02d}") == session[i][1:]
        assert await queries.get_content(store, f"b{i:02d}") == (session[i][1], b"")
    # The writer still believes the purged chunks are stored: its next body of the session
    # (the first one's bytes again, as after a fork back to the start) must not reference
    # a swept chunk. The sweep moved the generation, so it sends them again.
    sid, body, response = session[0]
    writer.submit(record("a99", now, sid), ContentRecord("a99", now, body, response))
    await writer.stop()
    assert await queries.get_content(store, "a99") == (body, response)
    assert await stored_chunks(store) == await live_chunks(store)
    # Everything purged: no chunk is left behind.
    assert await ContentRetention(store, 1, clock=lambda: now + 30 * DAY).purge() == 13
    assert await count(store, "content_chunks") == 0


async def check_sweep_racing_a_writer(store: Store, spool: Path) -> None:
    """Writes and sweeps interleaved at random points never leave a body unreadable."""
    session = long_session()[:16]
    writer = LogWriter(store, queue_size=1_000, flush_interval=0.001, spend_source=list,
                       spool_dir=spool)  # fmt: skip
    writer.start()
    now = T0 + 100 * DAY
    retention = ContentRetention(store, 1, clock=lambda: now)

    async def sweeper() -> None:
        for _ in range(20):
            await retention.purge()
            await asyncio.sleep(0.003)

    task = asyncio.create_task(sweeper())
    for i, (sid, body, response) in enumerate(session * 2):
        # Every other body is old (purged at once, its chunks swept), the rest are kept.
        at = T0 if i % 2 else now
        writer.submit(record(f"x{i:02d}", at, sid), ContentRecord(f"x{i:02d}", at, body, response))
        await asyncio.sleep(0.002)
    await task
    await writer.stop()
    await retention.purge()
    for i, (_sid, body, response) in enumerate(session * 2):
        got = await queries.get_content(store, f"x{i:02d}")
        assert got == (None if i % 2 else (body, response)), i
    assert await stored_chunks(store) == await live_chunks(store)


# ------------------------------------------------------------------ load: none dropped


async def check_fixed_rate_load_drops_nothing(store: Store, spool: Path) -> None:
    """600 Claude Code bodies submitted at a fixed rate of 300/s into a writer whose
    memory bound holds about 10 of them and whose store stalls on every write: bodies of
    ``required`` keys spill to disk and are all stored, byte for byte; none is dropped."""

    class Stalling:
        def __init__(self, inner: Store) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        async def write_batch(self, batch: Any) -> None:
            await asyncio.sleep(0.05)
            await self.inner.write_batch(batch)

    session = long_session()[:12]
    writer = LogWriter(Stalling(store), queue_size=1_000, flush_interval=0.02,  # type: ignore[arg-type]
                       spend_source=list, content_bytes=1_500_000, spool_dir=spool)  # fmt: skip
    writer.start()
    loop = asyncio.get_running_loop()
    t0, n, rate = loop.time(), 600, 300.0
    for i in range(n):
        due = t0 + i / rate
        if due > loop.time():
            await asyncio.sleep(due - loop.time())
        sid, body, response = session[i % len(session)]
        writer.submit(
            record(f"l{i:05d}", T0 + i, f"{sid}-{i % 7}"),
            ContentRecord(f"l{i:05d}", T0 + i, body, response, required=True),
        )
    assert writer.spilled_contents > 0  # the bound was reached: the mechanism was used
    await writer.stop()
    assert writer.dropped_contents == 0 and writer.dropped_records == 0
    assert await count(store, "contents") == n
    for i in range(0, n, 37):
        _sid, body, response = session[i % len(session)]
        assert await queries.get_content(store, f"l{i:05d}") == (body, response)
    assert not list(spool.glob("*.spool"))


# ------------------------------------------------------------------ SQLite runs


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(f"sqlite:///{tmp_path / 'c.db'}")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def test_long_claude_code_session_reads_back(store: SQLiteStore, tmp_path: Path) -> None:
    await check_long_session_reads_back(store, tmp_path)


async def test_purge_removes_chunks_only_when_unused(store: SQLiteStore, tmp_path: Path) -> None:
    await check_purge_removes_chunks_only_when_unused(store, tmp_path)


async def test_sweep_racing_a_writer(store: SQLiteStore, tmp_path: Path) -> None:
    await check_sweep_racing_a_writer(store, tmp_path)


async def test_fixed_rate_load_drops_nothing(store: SQLiteStore, tmp_path: Path) -> None:
    await check_fixed_rate_load_drops_nothing(store, tmp_path)


def run_on_fresh_sqlite(tmp: Path, scenario: Callable[[Store, Path], Awaitable[None]]) -> None:
    async def go() -> None:
        for old in tmp.glob("p.db*"):
            old.unlink()
        s = SQLiteStore(f"sqlite:///{tmp / 'p.db'}")
        await s.open()
        try:
            await scenario(s, tmp)
        finally:
            await s.close()

    asyncio.run(go())


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(_STEP, min_size=1, max_size=25), flush_every=st.integers(1, 6))
def test_random_conversations_read_back_byte_for_byte(
    tmp_path: Path, steps: list[Any], flush_every: int
) -> None:
    run_on_fresh_sqlite(tmp_path, lambda s, p: check_random_conversation(s, p, steps, flush_every))


@settings(max_examples=300)
@given(body=st.binary(max_size=9000) | st.text(max_size=3000).map(str.encode),
       min_size=st.integers(1, 3000))  # fmt: skip
def test_pieces_join_to_the_body(body: bytes, min_size: int) -> None:
    ends = chunks.cuts(body, min_size)
    assert ends[-1] == len(body) and ends == sorted(set(ends))
    assert b"".join(chunks.split(body, min_size)) == body


_EDIT = st.tuples(
    st.sampled_from(["insert", "delete", "replace", "same"]),
    st.floats(0, 1),
    st.floats(0, 1),
    st.binary(max_size=3000) | st.sampled_from([b"},{", b"}]", b"x" * 2500]),
)


@settings(max_examples=300)
@given(first=st.binary(min_size=0, max_size=20_000), edits=st.lists(_EDIT, max_size=12),
       min_size=st.sampled_from([1, 64, 700, 2048]))  # fmt: skip
def test_each_body_of_a_session_joins_back_exactly(
    first: bytes, edits: list[Any], min_size: int
) -> None:
    """The preparer takes over pieces of the session's last body (same start, same end);
    whatever the edit between two bodies, the manifest names exactly the new body."""
    prep = Preparer(min_size=min_size)
    stored: dict[bytes, bytes] = {}
    body = first + b'{"a":1},{"b":2}]' * 300
    for i, (kind, a, b, data) in enumerate([("same", 0.0, 0.0, b""), *edits]):
        lo, hi = sorted((int(a * len(body)), int(b * len(body))))
        if kind == "insert":
            body = body[:lo] + data + body[lo:]
        elif kind == "delete":
            body = body[:lo] + body[hi:]
        elif kind == "replace":
            body = body[:lo] + data + body[hi:]
        out = prep.prepare(ContentRecord(str(i), 0.0, body, b""), "scope")
        stored.update(out.chunks)
        assert chunks.join(out.request_body, stored) == body
