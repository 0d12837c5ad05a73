"""Upstream HTTP client: tollway's vs aiohttp vs httpx vs raw, CPU per request against the mock.

    bench/.venv-tools/bin/python -m bench.micro_client --port MOCK [--quick]

Each client sends the same requests with ``concurrency`` in flight over kept-alive
connections: the small OpenAI body (JSON answer) and the 77 KB Claude Code body (60-event
SSE answer, read chunk by chunk as the gateway relays it). Prints JSON with this
process's CPU milliseconds per request (user+system): what the client costs the gateway.
``raw`` is the floor under any client: the request's bytes built once and written on a
kept-alive connection, the answer read by httptools' parser through a bare asyncio
protocol (no headers object, no timeouts, no pool), so aiohttp's figure minus raw's is
what aiohttp itself costs per request. ``tollway`` is the gateway's own client
(``HTTPProvider`` on ``providers/h1.py``), deadlines and decoder included, as dispatch uses it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import httptools
import httpx
import uvloop

from bench.payloads import claude_code, openai_small
from tollway.providers.base import ANTHROPIC, OPENAI_CHAT, KeyChoice, UpstreamRequest
from tollway.providers.http import HTTPProvider

Send = Callable[[], Awaitable[int]]


async def _drive(send: Send, total: int, concurrency: int) -> dict[str, float]:
    left = total

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            status = await send()
            if status != 200:
                raise RuntimeError(f"status {status}")

    await send()  # warm the connection pool
    c0, t0 = os.times(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, c1 = time.perf_counter() - t0, os.times()
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    return {"cpu_ms_per_req": round(cpu * 1000 / total, 4), "rps": round(total / wall, 1)}


async def _aiohttp(base: str, total: int, concurrency: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=True) as session:
        for shape in (openai_small(), claude_code()):
            url, headers, body = base + shape.path, dict(shape.with_key("sk")), shape.body

            async def send(url: str = url, headers: Any = headers, body: bytes = body) -> int:
                async with session.post(url, data=body, headers=headers) as resp:
                    async for _ in resp.content.iter_any():
                        pass
                    return resp.status

            n = total // 10 if shape.stream else total
            out[shape.name] = await _drive(send, n, concurrency)
    return out


async def _httpx(base: str, total: int, concurrency: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        for shape in (openai_small(), claude_code()):
            url, headers, body = base + shape.path, dict(shape.with_key("sk")), shape.body

            async def send(url: str = url, headers: Any = headers, body: bytes = body) -> int:
                req = client.build_request("POST", url, content=body, headers=headers)
                resp = await client.send(req, stream=True)
                async for _ in resp.aiter_raw():
                    pass
                await resp.aclose()
                return resp.status_code

            n = total // 10 if shape.stream else total
            out[shape.name] = await _drive(send, n, concurrency)
    return out


async def _tollway(base: str, total: int, concurrency: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    key = KeyChoice("bench", "sk")
    for shape in (openai_small(), claude_code()):
        kind = "anthropic" if shape.stream else "openai"
        provider = HTTPProvider("mock", kind=kind, base_url=base if shape.stream else base + "/v1",
                                keys=[key])  # fmt: skip
        path, _, query = shape.path.partition("?")
        request = UpstreamRequest(
            dialect=ANTHROPIC if shape.stream else OPENAI_CHAT, method="POST", path=path,
            query=query.encode(), headers=[*shape.headers, ("accept-encoding", "gzip")],
            body=shape.body, stream=shape.stream, model="m",
        )  # fmt: skip

        async def send(provider: HTTPProvider = provider, request: Any = request) -> int:
            resp = await provider.send(request, key)
            try:
                async for _ in resp.chunks():
                    pass
                return resp.status
            finally:
                resp.close()

        n = total // 10 if shape.stream else total
        out[shape.name] = await _drive(send, n, concurrency)
        await provider.close()
    return out


class _RawConnection(asyncio.Protocol):
    """One kept-alive connection: ``await conn.send(request)`` until the answer ends."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.done: asyncio.Future[int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result(self.parser.get_status_code())

    async def send(self, request: bytes) -> int:
        assert self.transport is not None
        self.done = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.done


async def _raw(port: int, total: int, concurrency: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    out: dict[str, Any] = {}
    for shape in (openai_small(), claude_code()):
        head = "".join(f"{k}: {v}\r\n" for k, v in shape.with_key("sk"))
        request = (f"POST {shape.path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n{head}"
                   f"content-length: {len(shape.body)}\r\n\r\n").encode() + shape.body  # fmt: skip
        free = [(await loop.create_connection(_RawConnection, "127.0.0.1", port))[1]
                for _ in range(concurrency + 1)]  # fmt: skip

        async def send(request: bytes = request, free: list[_RawConnection] = free) -> int:
            conn = free.pop()
            try:
                return await conn.send(request)
            finally:
                free.append(conn)

        n = total // 10 if shape.stream else total
        out[shape.name] = await _drive(send, n, concurrency)
        for conn in free:
            assert conn.transport is not None
            conn.transport.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    base = f"http://127.0.0.1:{args.port}"
    total = 1000 if args.quick else 5000
    result = {
        "requests_small": total,
        "requests_stream": total // 10,
        "concurrency": args.concurrency,
        "tollway": uvloop.run(_tollway(base, total, args.concurrency)),
        "aiohttp": uvloop.run(_aiohttp(base, total, args.concurrency)),
        "httpx": uvloop.run(_httpx(base, total, args.concurrency)),
        "raw": uvloop.run(_raw(args.port, total, args.concurrency)),
        "versions": {
            "aiohttp": aiohttp.__version__,
            "httpx": httpx.__version__,
            "httptools": httptools.__version__,
        },
    }
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    sys.exit(main())
