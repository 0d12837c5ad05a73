"""Content storage on a real Claude Code session: bytes stored and CPU, per strategy.

Reads the session recorded by ``bench.record_session`` (every request body as sent) and
stores it the ways compared in docs/benchmarks.md ("Content storage"):

- ``today``: each body whole, zlib level 1 (what Tollway stored before);
- ``zstd-L``: each body whole, zstd level L;
- ``delta-L``: each body as (previous body of the session, common prefix and suffix
  lengths, the middle zstd-compressed): a prefix reference and the changed part; with
  "whole every Nth", every Nth body of a session is stored whole (zstd-L), which bounds
  the chain of bodies a read must replay;
- ``chunks-M-L``: what the writer stores (``observability/content.py``): pieces of at
  least M bytes, each new one zstd level L, plus the manifests (row overheads excluded).

CPU is this process's time for the encoding alone (no database), per body.

    .venv/bin/python -m bench.content_storage tests/fixtures/wire/claude_long_session.jsonl.zst
"""

from __future__ import annotations

import argparse
import base64
import json
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import zstandard

from tollway.observability import chunks
from tollway.observability.content import Preparer, scope_of
from tollway.storage.records import ContentRecord


def load(path: Path) -> list[tuple[str, bytes, bytes]]:
    raw = path.read_bytes()
    if path.suffix == ".zst":
        raw = zstandard.ZstdDecompressor().decompress(raw, max_output_size=1 << 31)
    out = []
    for line in raw.splitlines():
        d = json.loads(line)
        out.append((d["session"] or "", base64.b64decode(d["body_b64"]),
                    base64.b64decode(d["response_b64"])))  # fmt: skip
    return out


def _common(a: bytes, b: bytes) -> tuple[int, int]:
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:  # longest common prefix by bisection on slices (C memcmp)
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    pre = lo
    lo, hi = 0, min(len(a), len(b)) - pre
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[len(a) - mid :] == b[len(b) - mid :]:
            lo = mid
        else:
            hi = mid - 1
    return pre, lo


def strategy_whole(compress: Callable[[bytes], bytes]) -> Callable[..., int]:
    def run(session: list[tuple[str, bytes, bytes]]) -> int:
        return sum(len(compress(b)) + len(compress(r)) for _s, b, r in session)

    return run


def strategy_delta(level: int, keyframe: int = 0) -> Callable[..., int]:
    """``keyframe``: every so many bodies of a session one is stored whole, to bound the
    chain a read must replay (0: never)."""

    def run(session: list[tuple[str, bytes, bytes]]) -> int:
        c = zstandard.ZstdCompressor(level=level)
        last: dict[str, bytes] = {}
        depth: dict[str, int] = {}
        total = 0
        for s, body, resp in session:
            prev = last.get(s)
            depth[s] = depth.get(s, -1) + 1
            if prev is None or (keyframe and depth[s] % keyframe == 0):
                total += len(c.compress(body))
            else:
                pre, suf = _common(prev, body)
                total += 24 + len(c.compress(body[pre : len(body) - suf]))
            last[s] = body
            total += len(c.compress(resp))
        return total

    return run


def strategy_chunks(min_size: int, level: int) -> Callable[..., int]:
    """The writer's own preparation (observability/content.py), as stored."""

    def run(session: list[tuple[str, bytes, bytes]]) -> int:
        prep = Preparer(level=level, min_size=min_size)
        total = 0
        for i, (s, body, resp) in enumerate(session):
            stored = prep.prepare(ContentRecord(str(i), 0.0, body, resp), scope_of("k", s))
            total += len(stored.request_body) + len(stored.response_body)
            total += sum(len(data) + chunks.DIGEST for _d, data in stored.chunks)
        return total

    return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("session", type=Path)
    args = ap.parse_args()
    session = load(args.session)
    raw = sum(len(b) + len(r) for _s, b, r in session)
    strategies: dict[str, Callable[..., int]] = {
        "today (zlib-1)": strategy_whole(lambda b: zlib.compress(b, 1)),
        "zlib-6": strategy_whole(lambda b: zlib.compress(b, 6)),
    }
    for level in (1, 3, 9):
        z = zstandard.ZstdCompressor(level=level)
        strategies[f"zstd-{level}"] = strategy_whole(z.compress)
    for level in (1, 3):
        strategies[f"delta-{level}"] = strategy_delta(level)
    strategies["delta-3, whole every 16th"] = strategy_delta(3, 16)
    strategies["delta-3, whole every 8th"] = strategy_delta(3, 8)
    for min_size in (256, 1024, 2048, 4096):
        for level in (1, 3):
            strategies[f"chunks-{min_size}-{level}"] = strategy_chunks(min_size, level)
    results = {}
    for name, run in strategies.items():
        t0 = time.process_time()
        size = run(session)
        cpu = (time.process_time() - t0) / len(session) * 1000
        results[name] = (size, cpu)
    today = results["today (zlib-1)"][0]
    print(f"{len(session)} requests, {raw:,} B raw (bodies + responses)")
    print("| strategy | bytes stored | x smaller than today | CPU ms per request |")
    print("|---|---|---|---|")
    for name, (size, cpu) in results.items():
        print(f"| {name} | {size:,} | {today / size:.1f} | {cpu:.2f} |")


if __name__ == "__main__":
    main()
