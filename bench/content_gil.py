"""What the writer's content thread does to the event loop (the GIL), measured directly.

An asyncio loop (uvloop) ticks every 1 ms and records how late each tick runs, while a
worker thread prepares Claude Code bodies as the log writer does, one after another:
``idle`` (no thread), ``zlib-1`` (before: each body whole), ``chunks`` (now:
observability/content.py, the session's 48 bodies per session, a new session after
each pass).
Pinned to one core with ``taskset``, as the gateway is. Lateness is the loop's extra
wait: what a stream's next event or first byte would wait for the GIL.

    taskset -c 0 .venv/bin/python -m bench.content_gil
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import threading
import time
import zlib
from collections.abc import Callable

import uvloop
import zstandard

from bench.payloads import REPO
from bench.stats import summary
from tollway.observability.content import Preparer, scope_of
from tollway.storage.records import ContentRecord

SESSION = REPO / "tests" / "fixtures" / "wire" / "claude_long_session.jsonl.zst"


def bodies() -> list[tuple[bytes, bytes]]:
    raw = zstandard.ZstdDecompressor().decompress(SESSION.read_bytes(), max_output_size=1 << 31)
    out = []
    for line in raw.splitlines():
        d = json.loads(line)
        out.append((base64.b64decode(d["body_b64"]), base64.b64decode(d["response_b64"])))
    return out


def worker(kind: str, stop: threading.Event, done: list[float]) -> None:
    session = bodies()
    prep = Preparer()
    n = 0
    while not stop.is_set():
        body, resp = session[n % len(session)]
        t0 = time.thread_time()
        if kind == "zlib-1":
            zlib.compress(body, 1)
            zlib.compress(resp, 1)
        else:
            scope = scope_of("k", f"s{n // len(session)}")
            prep.prepare(ContentRecord(str(n), 0.0, body, resp), scope)
        done.append(time.thread_time() - t0)
        n += 1
        time.sleep(0.002)  # about what 100 streams/s leave between bodies


async def ticks(seconds: float) -> list[float]:
    loop = asyncio.get_running_loop()
    late: list[float] = []
    end = loop.time() + seconds
    while loop.time() < end:
        due = time.perf_counter() + 0.001
        await asyncio.sleep(0.001)
        late.append((time.perf_counter() - due) * 1000)
    return late


def run(kind: str, seconds: float) -> dict[str, object]:
    stop = threading.Event()
    done: list[float] = []
    thread: threading.Thread | None = None
    if kind != "idle":
        thread = threading.Thread(target=worker, args=(kind, stop, done), daemon=True)
        thread.start()
        time.sleep(0.5)
    late = uvloop.run(ticks(seconds))
    stop.set()
    if thread:
        thread.join()
    cpu: Callable[[], float] = lambda: sum(done) / len(done) * 1000 if done else 0.0  # noqa: E731
    return {"kind": kind, "bodies": len(done), "thread_cpu_ms_per_body": round(cpu(), 3),
            "loop_lateness_ms": summary(late)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kinds", default="idle,zlib-1,chunks")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    for _ in range(args.rounds):
        for kind in args.kinds.split(","):
            print(json.dumps(run(kind, args.seconds)), flush=True)


if __name__ == "__main__":
    main()
