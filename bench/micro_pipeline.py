"""The request path's own CPU, in-process: the ASGI app driven directly, no sockets.

    .venv/bin/python -m bench.micro_pipeline [--requests 2000] [--rounds 5]

Builds the app on a temporary SQLite store and the simulated provider (zero latency, no
network), then sends the recorded Claude Code request (77 KB, streamed) and the small
OpenAI body through ``app(scope, receive, send)``. Prints JSON: this process's CPU
microseconds per request (user+system, best of the rounds). To compare two checkouts,
run this same file against each: ``PYTHONPATH=<checkout>/src python -m bench.micro_pipeline``.
The simulated provider's own work is included, so differences, not totals, are the point.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from typing import Any

from bench.payloads import Shape, claude_code, openai_small
from tollway.admin.ops import EntityOps, KeyInput
from tollway.app import build_app
from tollway.config import parse_config
from tollway.services import Services
from tollway.storage import open_store

CONFIG = "providers: {simulated: {}}\nlogging: {content: false}\n"


async def _one(app: Any, shape: Shape, key: str) -> int:
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
    headers = [(k.encode(), v.encode()) for k, v in shape.with_key(key)]
    headers += [(b"host", b"bench"), (b"content-length", str(len(shape.body)).encode())]
    scope = {"type": "http", "method": "POST", "path": path, "query_string": query.encode(),
             "headers": headers, "server": ("127.0.0.1", 8080)}  # fmt: skip
    await app(scope, receive, send)
    return status


async def _best(app: Any, shape: Shape, key: str, n: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(n):
            status = await _one(app, shape, key)
            if status != 200:
                raise RuntimeError(f"{shape.name}: status {status}")
        best = min(best, (time.process_time() - start) / n * 1e6)
    return best


async def main(n: int, rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        services = Services(parse_config(CONFIG), open_store(f"sqlite:///{tmp}/b.db"))
        services.admin_token = "bench"
        await services.start()
        try:
            app = build_app(services)
            _rec, key = await EntityOps(services.store).create("virtual_key", KeyInput(name="b"))
            await services.registry.refresh()
            assert key is not None
            out = {}
            for shape in (claude_code(), openai_small()):
                await _best(app, shape, key, max(50, n // 10), 1)  # warm up
                out[f"{shape.name}_cpu_us"] = round(await _best(app, shape, key, n, rounds), 1)
            return out
        finally:
            await services.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="request path CPU per request, in-process")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.requests, args.rounds))))
