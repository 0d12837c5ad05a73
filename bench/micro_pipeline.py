"""The request path's own CPU, in-process: the ASGI app driven directly, no sockets.

    .venv/bin/python -m bench.micro_pipeline [--requests 2000] [--rounds 5] \
        [--content off|best_effort|required] [--session]

Builds the app on a temporary SQLite store and the simulated provider (zero latency, no
network), then sends the recorded Claude Code request (77 KB, streamed) and the small
OpenAI body through ``app(scope, receive, send)``. Prints JSON: this process's CPU
microseconds per request (user+system, best of the rounds). To compare two checkouts,
run this same file against each: ``PYTHONPATH=<checkout>/src python -m bench.micro_pipeline``.
The simulated provider's own work is included, so differences, not totals, are the point.

``--content`` sets the key's content mode (default ``off``); the writer flushes every 25
requests (its batch at 100 requests/s) and at the end of each round, so its content
thread (the preparation of every body) and its SQLite writes are in the figure.
``--session`` sends the bodies of the recorded long Claude Code session
(tests/fixtures/wire/claude_long_session.jsonl.zst, 77-400 KB) turn by turn, a new
session id for each pass, instead of the one recorded request.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import tempfile
import time
from dataclasses import replace
from typing import Any

import zstandard

from bench.payloads import REPO, Shape, claude_code, openai_small
from tollway.admin.ops import EntityOps, KeyInput
from tollway.app import build_app
from tollway.config import parse_config
from tollway.services import Services
from tollway.storage import open_store

CONFIG = "providers: {simulated: {}}\n"
SESSION = REPO / "tests" / "fixtures" / "wire" / "claude_long_session.jsonl.zst"


def session_shapes(base: Shape) -> list[Shape]:
    raw = zstandard.ZstdDecompressor().decompress(SESSION.read_bytes(), max_output_size=1 << 31)
    bodies = [base64.b64decode(json.loads(line)["body_b64"]) for line in raw.splitlines()]
    return [replace(base, body=b) for b in bodies]


async def _one(app: Any, shape: Shape, key: str, session: str | None = None) -> int:
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": shape.body, "more_body": False}
        await asyncio.sleep(3600)  # never disconnects; cancelled when the request ends
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    path, _, query = shape.path.partition("?")
    headers = [(k.encode(), v.encode()) for k, v in shape.with_key(key)
               if session is None or k != "x-claude-code-session-id"]  # fmt: skip
    if session is not None:
        headers.append((b"x-claude-code-session-id", session.encode()))
    headers += [(b"host", b"bench"), (b"content-length", str(len(shape.body)).encode())]
    scope = {"type": "http", "method": "POST", "path": path, "query_string": query.encode(),
             "headers": headers, "server": ("127.0.0.1", 8080)}  # fmt: skip
    await app(scope, receive, send)
    return status


async def _best(
    services: Services, app: Any, shapes: list[Shape], key: str, n: int, rounds: int
) -> float:
    best = float("inf")
    sent = 0
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(n):
            shape = shapes[sent % len(shapes)]
            session = f"bench-{sent // len(shapes)}" if len(shapes) > 1 else None
            sent += 1
            status = await _one(app, shape, key, session)
            if status != 200:
                raise RuntimeError(f"{shape.name}: status {status}")
            if sent % 25 == 0:  # what the writer batches every 250 ms at 100 requests/s
                await services.writer.flush()
        while services.writer.pending or services.writer.pending_contents:
            await services.writer.flush()  # the writer's work for this round, counted
        best = min(best, (time.process_time() - start) / n * 1e6)
    return best


async def main(n: int, rounds: int, content: str, session: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        services = Services(parse_config(CONFIG), open_store(f"sqlite:///{tmp}/b.db"))
        services.admin_token = "bench"
        await services.start()
        try:
            app = build_app(services)
            keys = EntityOps(services.store)
            _rec, key = await keys.create("virtual_key", KeyInput(name="b", content=content))
            await services.registry.refresh()
            assert key is not None
            out: dict[str, Any] = {"content": content, "session": session}
            cc = claude_code()
            for shapes in (session_shapes(cc) if session else [cc], [openai_small()]):
                name = shapes[0].name + ("-session" if len(shapes) > 1 else "")
                await _best(services, app, shapes, key, max(50, n // 10), 1)  # warm up
                best = await _best(services, app, shapes, key, n, rounds)
                out[f"{name}_cpu_us"] = round(best, 1)
            return out
        finally:
            await services.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="request path CPU per request, in-process")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--content", choices=["off", "best_effort", "required"], default="off")
    parser.add_argument("--session", action="store_true")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.requests, args.rounds, args.content, args.session))))
