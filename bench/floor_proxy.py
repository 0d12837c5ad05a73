"""The floor under any gateway: a TCP proxy that forwards bytes and does nothing else.

    python -m bench.floor_proxy --port 9200 --upstream-port 9100

Each client connection gets its own upstream connection; bytes go both ways as they come,
with no HTTP parsing, no JSON, no logging, on uvloop, with raw asyncio protocols (the
cheapest a Python process can move bytes). What it spends per stream is what a Python
gateway spends before doing any work of its own: reading the request and writing it on,
reading each event and writing it on. ``bench.content_load --targets floor,...`` runs it
beside the gateways, so a CPU or TTFB target can be read against it. ``GET /health`` is
forwarded like everything else (the mock answers it).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import cast

import uvloop


class _Side(asyncio.Protocol):
    """One end of a pair: what it receives is written to its peer's transport."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Side | None = None
        self.pending: list[bytes] = []  # bytes that came before the peer connected

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.write(data)
        else:
            self.pending.append(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()


class _Client(_Side):
    def __init__(self, loop: asyncio.AbstractEventLoop, port: int) -> None:
        super().__init__()
        self.loop = loop
        self.port = port

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.loop.create_task(self._connect())

    async def _connect(self) -> None:
        try:
            _t, upstream = await self.loop.create_connection(_Side, "127.0.0.1", self.port)
        except OSError:
            if self.transport is not None:
                self.transport.close()
            return
        upstream.peer, self.peer = self, upstream
        assert upstream.transport is not None
        for data in self.pending:
            upstream.transport.write(data)
        self.pending.clear()


async def serve(port: int, upstream_port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Client(loop, upstream_port), "127.0.0.1", port)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream-port", type=int, required=True)
    args = parser.parse_args()
    uvloop.run(serve(args.port, args.upstream_port))


if __name__ == "__main__":
    main()
