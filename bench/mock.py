"""A fast mock upstream: raw asyncio protocol on uvloop, httptools parser, canned replies.

    python -m bench.mock --port 9100 [--latency-ms 0] [--events 60] [--tokens 400]
                         [--event-gap-ms 2]

Answers ``POST .../chat/completions`` (OpenAI) and ``POST .../messages`` (Anthropic) with
a prebuilt JSON body, or, when the request body says ``"stream":true``, with an SSE stream
of ``--events`` events carrying ``--tokens`` output tokens, one event every
``--event-gap-ms`` (the first with the headers). One timer wakes every gap for all open
streams, so the cost per event is one ``transport.write``. ``GET /health`` answers 200.
No framework and no per-request allocation beyond the parser: the harness reports this
process's CPU per request beside the gateway's, to show it is not the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal

import httptools
import uvloop

from bench.payloads import anthropic_events, anthropic_message, openai_completion, openai_events

_MODEL = re.compile(rb'"model"\s*:\s*"([^"]{1,100})"')


def _response(body: bytes, content_type: bytes = b"application/json") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: "
        + content_type
        + b"\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\nrequest-id: req_bench\r\n\r\n"
        + body
    )


_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\nrequest-id: req_bench\r\n\r\n"
)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class Replies:
    """Prebuilt responses per (path kind, model, stream), built on first use."""

    def __init__(self, events: int, tokens: int) -> None:
        self.events = events
        self.tokens = tokens
        self._plain: dict[tuple[bool, bytes], bytes] = {}
        self._streams: dict[tuple[bool, bytes], list[bytes]] = {}

    def plain(self, anthropic: bool, model: bytes) -> bytes:
        found = self._plain.get((anthropic, model))
        if found is None:
            name = model.decode()
            body = anthropic_message(name) if anthropic else openai_completion(name)
            found = self._plain[(anthropic, model)] = _response(body)
        return found

    def stream(self, anthropic: bool, model: bytes) -> list[bytes]:
        found = self._streams.get((anthropic, model))
        if found is None:
            make = anthropic_events if anthropic else openai_events
            chunks = [_chunk(e) for e in make(model.decode(), self.events, self.tokens)]
            chunks[-1] += b"0\r\n\r\n"
            chunks[0] = _STREAM_HEAD + chunks[0]
            found = self._streams[(anthropic, model)] = chunks
        return found


class _Open:
    __slots__ = ("transport", "chunks", "next")

    def __init__(self, transport: asyncio.Transport, chunks: list[bytes]) -> None:
        self.transport = transport
        self.chunks = chunks
        self.next = 1


class Streams:
    """Open streams, advanced together by one timer every ``gap`` seconds."""

    def __init__(self, loop: asyncio.AbstractEventLoop, gap: float) -> None:
        self.loop = loop
        self.gap = gap
        self.active: list[_Open] = []
        self._armed = False
        self._next = 0.0

    def add(self, transport: asyncio.Transport, chunks: list[bytes]) -> None:
        transport.write(chunks[0])
        if self.gap <= 0:
            transport.write(b"".join(chunks[1:]))
            return
        self.active.append(_Open(transport, chunks))
        if not self._armed:
            self._armed = True
            self._next = self.loop.time() + self.gap
            self.loop.call_at(self._next, self._tick)

    def _tick(self) -> None:
        keep = []
        for entry in self.active:
            if entry.transport.is_closing():
                continue
            entry.transport.write(entry.chunks[entry.next])
            entry.next += 1
            if entry.next < len(entry.chunks):
                keep.append(entry)
        self.active = keep
        self._armed = bool(keep)
        if keep:  # absolute times, so the pace does not drift with the work per tick
            self._next = max(self._next + self.gap, self.loop.time())
            self.loop.call_at(self._next, self._tick)


class MockProtocol(asyncio.Protocol):
    __slots__ = ("server", "transport", "parser", "url", "body")

    def __init__(self, server: MockServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is duck-typed

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        url, body = self.url, b"".join(self.body)
        self.url, self.body = b"", []
        self.server.answer(self, url, body)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


class MockServer:
    def __init__(self, replies: Replies, streams: Streams, latency: float) -> None:
        self.replies = replies
        self.streams = streams
        self.latency = latency
        self.requests = 0

    def answer(self, proto: MockProtocol, url: bytes, body: bytes) -> None:
        transport = proto.transport
        if transport is None:
            return
        self.requests += 1
        path = url.partition(b"?")[0]
        if path.endswith(b"/health"):
            transport.write(_response(b'{"status":"ok"}'))
            return
        anthropic = path.endswith(b"/messages")
        if not anthropic and not path.endswith(b"/chat/completions"):
            transport.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
            return
        found = _MODEL.search(body[:4096]) or _MODEL.search(body)
        model = found.group(1) if found else b"unknown"
        if b'"stream":true' in body or b'"stream": true' in body:
            chunks = self.replies.stream(anthropic, model)
            if self.latency:
                self.streams.loop.call_later(self.latency, self.streams.add, transport, chunks)
            else:
                self.streams.add(transport, chunks)
            return
        reply = self.replies.plain(anthropic, model)
        if self.latency:
            self.streams.loop.call_later(self.latency, transport.write, reply)
        else:
            transport.write(reply)


async def serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    server = MockServer(
        Replies(args.events, args.tokens),
        Streams(loop, args.event_gap_ms / 1000),
        args.latency_ms / 1000,
    )
    srv = await loop.create_server(
        lambda: MockProtocol(server), "127.0.0.1", args.port, backlog=4096, reuse_address=True
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"mock upstream on 127.0.0.1:{args.port}", flush=True)
    async with srv:
        await stop.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--events", type=int, default=60)
    p.add_argument("--tokens", type=int, default=400)
    p.add_argument("--event-gap-ms", type=float, default=2.0)
    uvloop.run(serve(p.parse_args()))


if __name__ == "__main__":
    main()
