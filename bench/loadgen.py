"""An open-loop (fixed-rate) or closed-loop load generator that also times the first byte.

    python -m bench.loadgen --port 8080 --shape claude-code-stream --key tw-... \\
        --rate 500 --duration 10          # open loop: one request every 2 ms
    python -m bench.loadgen ... --concurrency 16 --duration 10   # closed loop

wrk2 is not in Debian, so fixed-rate runs use this: a raw asyncio protocol on uvloop with
httptools' response parser, kept-alive connections, and prebuilt request bytes. In open
loop, request *i* is due at ``t0 + i/rate``; its latency and time-to-first-byte are taken
from that due time, not from when it was sent, so a stalled server is not hidden by a
stalled generator (no coordinated omission). The JSON it prints includes this process's
own CPU per request, so the harness can show the generator is not the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httptools
import uvloop
import zstandard

from bench.payloads import shapes
from bench.stats import summary


class Result:
    __slots__ = ("due", "sent", "first", "end", "status")

    def __init__(self, due: float) -> None:
        self.due = due
        self.sent = 0.0
        self.first = 0.0
        self.end = 0.0
        self.status = 0


class Conn(asyncio.Protocol):
    """One kept-alive connection carrying one request at a time."""

    def __init__(self, gen: Generator) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.current: Result | None = None
        self.keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is duck-typed

    def send(self, result: Result) -> None:
        assert self.transport is not None
        self.current = result
        result.sent = time.perf_counter()
        self.transport.write(self.gen.next_request())

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._fail()

    def on_headers_complete(self) -> None:
        if self.current is not None:
            self.current.status = self.parser.get_status_code()
            self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        if self.current is not None and not self.current.first:
            self.current.first = time.perf_counter()

    def on_message_complete(self) -> None:
        result, self.current = self.current, None
        if result is None:
            return
        result.end = time.perf_counter()
        if not result.first:
            result.first = result.end
        self.gen.finished(self, result)

    def _fail(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        result, self.current = self.current, None
        self.gen.lost(self, result)


class Generator:
    def __init__(
        self, port: int, request: bytes, max_conns: int, turns: list[bytes] | None = None
    ) -> None:
        self.port = port
        self.request = request
        self.turns = turns  # with --session-file: one request per turn, cycled
        self.sent = 0
        self.max_conns = max_conns
        self.idle: list[Conn] = []
        self.opening = 0
        self.open = 0
        self.waiting: collections.deque[Result] = collections.deque()
        self.done: list[Result] = []
        self.failed = 0
        self.outstanding = 0
        self.loop = asyncio.get_running_loop()
        self.drained = asyncio.Event()

    async def connect(self) -> None:
        self.opening += 1
        try:
            _, conn = await self.loop.create_connection(lambda: Conn(self), "127.0.0.1", self.port)
        except OSError:
            self.opening -= 1
            self.failed += 1
            return
        self.opening -= 1
        self.open += 1
        self._ready(conn)

    def next_request(self) -> bytes:
        self.sent += 1
        return self.request if self.turns is None else self.turns[(self.sent - 1) % len(self.turns)]

    def _ready(self, conn: Conn) -> None:
        if self.waiting:
            conn.send(self.waiting.popleft())
        else:
            self.idle.append(conn)

    def submit(self, result: Result) -> None:
        self.outstanding += 1
        self.drained.clear()
        if self.idle:
            self.idle.pop().send(result)
            return
        self.waiting.append(result)
        if self.open + self.opening < self.max_conns:
            self.loop.create_task(self.connect())

    def finished(self, conn: Conn, result: Result) -> None:
        self.done.append(result)
        self._settle()
        if conn.keep_alive and conn.transport is not None:
            self._ready(conn)
        elif conn.transport is not None:
            conn.transport.close()

    def lost(self, conn: Conn, result: Result | None) -> None:
        self.open -= 1
        if conn in self.idle:
            self.idle.remove(conn)
        if result is not None:
            self.failed += 1
            self._settle()
        if self.waiting and self.open + self.opening < self.max_conns:
            self.loop.create_task(self.connect())

    def _settle(self) -> None:
        self.outstanding -= 1
        if self.outstanding == 0:
            self.drained.set()

    def close(self) -> None:
        for conn in self.idle:
            if conn.transport is not None:
                conn.transport.close()


def build_request(path: str, port: int, headers: list[tuple[str, str]], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"host: 127.0.0.1:{port}", f"content-length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def open_loop(gen: Generator, rate: float, duration: float) -> float:
    start = time.perf_counter()
    total = int(rate * duration)
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0.0005:
            await asyncio.sleep(delay)
        gen.submit(Result(due))
    return time.perf_counter() - start


async def closed_loop(gen: Generator, concurrency: int, duration: float) -> float:
    start = time.perf_counter()
    end = start + duration

    def again(conn: Conn, result: Result) -> None:
        gen.done.append(result)
        gen._settle()
        if time.perf_counter() < end and conn.transport is not None:
            gen.outstanding += 1
            conn.send(Result(time.perf_counter()))

    gen.finished = again  # type: ignore[method-assign]
    for _ in range(concurrency):
        gen.submit(Result(time.perf_counter()))
    await asyncio.sleep(duration)
    return duration


def session_turns(
    path: Path,
    shape_headers: list[tuple[str, str]],
    raw_path: str,
    port: int,
    sessions: int,
    total: int,
) -> list[bytes]:
    """Requests for ``sessions`` Claude Code sessions in parallel, each replaying the recorded
    session's bodies turn by turn (a fresh session id once one has run out), interleaved."""
    raw = zstandard.ZstdDecompressor().decompress(path.read_bytes(), max_output_size=1 << 31)
    bodies = [base64.b64decode(json.loads(line)["body_b64"]) for line in raw.splitlines()]
    headers = [(k, v) for k, v in shape_headers if k != "x-claude-code-session-id"]
    out = []
    for i in range(total):
        s, turn = i % sessions, i // sessions
        sid = f"bench-{s}-{turn // len(bodies)}"
        out.append(build_request(raw_path, port, [*headers, ("x-claude-code-session-id", sid)],
                                 bodies[turn % len(bodies)]))  # fmt: skip
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    shape = shapes()[args.shape]
    request = build_request(shape.path, args.port, shape.with_key(args.key), shape.body)
    turns = None
    if args.session_file:
        total = int(args.rate * args.duration) if args.rate else 100_000
        turns = session_turns(args.session_file, shape.with_key(args.key), shape.path, args.port,
                              args.sessions, min(total, 100_000))  # fmt: skip
    gen = Generator(args.port, request, args.max_conns if args.rate else args.concurrency, turns)
    for _ in range(min(args.preconnect, args.max_conns)):
        await gen.connect()
    cpu0, t0 = os.times(), time.perf_counter()
    if args.rate:
        sent_for = await open_loop(gen, args.rate, args.duration)
    else:
        sent_for = await closed_loop(gen, args.concurrency, args.duration)
    if gen.outstanding:
        try:
            await asyncio.wait_for(gen.drained.wait(), args.drain)
        except TimeoutError:
            pass
    wall = time.perf_counter() - t0
    cpu1 = os.times()
    unfinished = gen.outstanding
    gen.close()
    ok = [r for r in gen.done if 200 <= r.status < 300]
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return {
        "mode": "open" if args.rate else "closed",
        "rate": args.rate,
        "concurrency": args.concurrency,
        "duration_s": sent_for,
        "wall_s": wall,
        "requests": len(gen.done),
        "ok": len(ok),
        "non_2xx": len(gen.done) - len(ok),
        "failed": gen.failed,
        "unfinished": unfinished,
        "rps": len(ok) / wall if wall else 0.0,
        "connections": gen.open,
        "latency_ms": summary([(r.end - r.due) * 1000 for r in ok]),
        "ttfb_ms": summary([(r.first - r.due) * 1000 for r in ok]),
        "service_ms": summary([(r.end - r.sent) * 1000 for r in ok]),
        "loadgen_cpu_s": cpu,
        "loadgen_cpu_ms_per_req": cpu * 1000 / max(1, len(gen.done)),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--shape", required=True, choices=sorted(shapes()))
    p.add_argument("--key", default="bench")
    p.add_argument("--rate", type=float, default=0.0, help="requests/s (open loop)")
    p.add_argument("--concurrency", type=int, default=1, help="in flight (closed loop)")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--drain", type=float, default=15.0, help="max wait for stragglers (s)")
    p.add_argument("--max-conns", type=int, default=1024)
    p.add_argument("--preconnect", type=int, default=32)
    p.add_argument("--session-file", type=Path, help="replay a recorded session's bodies")
    p.add_argument("--sessions", type=int, default=20, help="sessions in parallel")
    args = p.parse_args()
    result = uvloop.run(run(args))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
