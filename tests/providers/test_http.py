"""HTTPProvider against a hostile loopback upstream: deadlines, size and decoding bounds."""

from __future__ import annotations

import asyncio
import gzip
import socket
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Iterator

import pytest

from tollway.errors import UpstreamError, UpstreamTimeout
from tollway.providers.base import ANTHROPIC, KeyChoice, UpstreamRequest
from tollway.providers.http import HTTPProvider, UpstreamLimits
from upstream_mock import SSE, MockUpstream, Reply, anthropic_events, anthropic_message, gzip_bomb

KEY = KeyChoice("main", "sk-ant-test")
SSE_HEADERS = [("Content-Type", "text/event-stream")]


def _request(stream: bool = False) -> UpstreamRequest:
    body = b'{"model":"claude-haiku-4-5","max_tokens":8,"messages":[]}'
    return UpstreamRequest(
        dialect=ANTHROPIC, method="POST", path="/v1/messages", query=b"",
        headers=[("accept-encoding", "gzip, deflate")], body=body, stream=stream,
        model="claude-haiku-4-5",
    )  # fmt: skip


@pytest.fixture
def mock() -> Iterator[MockUpstream]:
    with MockUpstream() as m:
        yield m


@pytest.fixture
async def provider(
    mock: MockUpstream, request: pytest.FixtureRequest
) -> AsyncIterator[HTTPProvider]:
    limits = getattr(request, "param", UpstreamLimits(max_response_bytes=1 << 20))
    p = HTTPProvider("anthropic", kind="anthropic", base_url=mock.base_url, keys=[KEY],
                     limits=limits)  # fmt: skip
    try:
        yield p
    finally:
        await p.close()


async def _collect(p: HTTPProvider, stream: bool = True) -> bytes:
    resp = await p.send(_request(stream), KEY)
    try:
        return b"".join([c async for c in resp.chunks()])
    finally:
        resp.close()


async def test_a_gzip_bomb_is_cut_at_the_limit_with_bounded_memory(
    mock: MockUpstream, provider: HTTPProvider
) -> None:
    bomb = gzip_bomb(64)  # 64 MiB of zeros in one gzip member of about 64 KB
    assert len(bomb) < 1 << 17
    mock.enqueue(Reply(body=bomb, headers=[("Content-Encoding", "gzip")]))
    resp = await provider.send(_request(), KEY)
    tracemalloc.start()
    try:
        with pytest.raises(UpstreamError, match="larger than the gateway accepts") as info:
            await resp.read()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        resp.close()
    assert type(info.value) is UpstreamError and info.value.status == 502
    assert peak < 8 << 20, peak  # the 1 MiB limit plus pieces, not 64 MiB


async def test_a_streamed_gzip_bomb_comes_in_small_pieces_then_fails(
    mock: MockUpstream, provider: HTTPProvider
) -> None:
    mock.enqueue(Reply(chunks=[gzip_bomb(64, b"a")], headers=[("Content-Encoding", "gzip"),
                                                              *SSE_HEADERS]))  # fmt: skip
    resp = await provider.send(_request(True), KEY)
    sizes: list[int] = []
    with pytest.raises(UpstreamError, match="larger than the gateway accepts"):
        async for chunk in resp.chunks():
            sizes.append(len(chunk))
    resp.close()
    assert sizes and max(sizes) <= 256 * 1024
    assert sum(sizes) <= 1 << 20


@pytest.mark.parametrize(
    "encoding, encode",
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),  # zlib-wrapped, as RFC 9110 says
        ("deflate", lambda b: zlib.compress(b)[2:-4]),  # raw deflate, as some servers send
        ("identity", lambda b: b),
    ],
)
async def test_compressed_answers_are_decoded_exactly(
    mock: MockUpstream, provider: HTTPProvider, encoding: str, encode: object
) -> None:
    plain = b"".join(SSE(e.data, e.event).encode() for e in anthropic_events("hello " * 500))
    packed = encode(plain)  # type: ignore[operator]
    third = len(packed) // 3
    pieces = [packed[:third], packed[third : 2 * third], packed[2 * third :]]
    mock.enqueue(Reply(chunks=pieces, headers=[("Content-Encoding", encoding), *SSE_HEADERS]))
    resp = await provider.send(_request(True), KEY)
    assert (b"content-encoding", encoding.encode()) not in resp.headers
    assert b"".join([c async for c in resp.chunks()]) == plain
    resp.close()


async def test_a_two_member_gzip_body_is_decoded_whole(
    mock: MockUpstream, provider: HTTPProvider
) -> None:
    mock.enqueue(Reply(body=gzip.compress(b'{"a":') + gzip.compress(b"1}"),
                       headers=[("Content-Encoding", "gzip")]))  # fmt: skip
    resp = await provider.send(_request(), KEY)
    assert await resp.read() == b'{"a":1}'
    resp.close()


@pytest.mark.parametrize(
    "body, encoding, match",
    [
        (b"not gzip at all", "gzip", "corrupt gzip"),
        (gzip.compress(b"x" * 1000, mtime=0)[:-12], "gzip", "before its end"),
        (b"{}", "br", "cannot decode"),
    ],
)
async def test_bad_encodings_are_upstream_errors(
    mock: MockUpstream, provider: HTTPProvider, body: bytes, encoding: str, match: str
) -> None:
    mock.enqueue(Reply(body=body, headers=[("Content-Encoding", encoding)]))
    with pytest.raises(UpstreamError, match=match):
        resp = await provider.send(_request(), KEY)
        try:
            await resp.read()
        finally:
            resp.close()


async def test_a_huge_plain_body_is_cut_at_the_limit(
    mock: MockUpstream, provider: HTTPProvider
) -> None:
    mock.enqueue(Reply(body=b"x" * (3 << 20)))
    resp = await provider.send(_request(), KEY)
    with pytest.raises(UpstreamError, match="larger than the gateway accepts"):
        await resp.read()
    resp.close()


@pytest.mark.parametrize("provider", [UpstreamLimits(first_byte_s=0.5)], indirect=True)
async def test_no_response_head_is_a_first_byte_timeout(
    mock: MockUpstream, provider: HTTPProvider
) -> None:
    mock.enqueue(Reply(json=anthropic_message(), delay=30))  # without the deadline: a 200
    with pytest.raises(UpstreamTimeout, match="first_byte_timeout_s") as info:
        await provider.send(_request(), KEY)
    assert info.value.status == 504


@pytest.mark.parametrize("provider", [UpstreamLimits(idle_s=0.5)], indirect=True)
async def test_a_silent_stream_is_an_idle_timeout(
    mock: MockUpstream, provider: HTTPProvider
) -> None:
    mock.enqueue(Reply(events=anthropic_events()[:3], hold_open=10))
    resp = await provider.send(_request(True), KEY)
    got = b""
    with pytest.raises(UpstreamTimeout, match="sent nothing for 0.5 s"):
        async for chunk in resp.chunks():
            got += chunk
    resp.close()
    assert b"message_start" in got


@pytest.mark.parametrize("provider", [UpstreamLimits(idle_s=5, total_s=1.5)], indirect=True)
async def test_a_dripping_stream_hits_the_total_deadline(
    mock: MockUpstream, provider: HTTPProvider
) -> None:
    drip = [SSE({"type": "ping"}, "ping")] * 100  # one every 0.2 s: never idle, never done
    mock.enqueue(Reply(events=drip, event_delay=0.2))
    resp = await provider.send(_request(True), KEY)
    count = 0
    with pytest.raises(UpstreamTimeout, match="did not finish within 1.5 s"):
        async for _ in resp.chunks():
            count += 1
    resp.close()
    assert 1 <= count < 100  # cut long before the drip's end (20 s)


@pytest.mark.parametrize("provider", [UpstreamLimits(total_s=1)], indirect=True)
async def test_a_slow_non_streamed_body_hits_the_total_deadline(
    mock: MockUpstream, provider: HTTPProvider
) -> None:
    mock.enqueue(Reply(chunks=[b'{"type":', b'"message"'] + [b" "] * 50, event_delay=0.1))
    resp = await provider.send(_request(), KEY)
    with pytest.raises(UpstreamTimeout, match="total_timeout_s"):
        await resp.read()
    resp.close()


async def test_a_cut_stream_is_an_upstream_error_not_a_timeout(
    mock: MockUpstream, provider: HTTPProvider
) -> None:
    mock.enqueue(Reply(events=anthropic_events(), cut_after=3))
    resp = await provider.send(_request(True), KEY)
    with pytest.raises(UpstreamError, match="stream broke") as info:
        async for _ in resp.chunks():
            pass
    resp.close()
    assert type(info.value) is UpstreamError


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (UpstreamLimits(connect_s=0.5), "cannot connect to provider anthropic at "
         r"http://127.0.0.1:\d+ within 0.5 s \(connect_timeout_s\)"),
        # the first-byte deadline runs out first, while the connect still hangs
        (UpstreamLimits(connect_s=5, first_byte_s=0.3), "provider anthropic did not answer "
         r"within 0.3 s \(first_byte_timeout_s\)"),
    ],
)  # fmt: skip
async def test_an_unanswered_connect_is_a_connect_timeout(
    limits: UpstreamLimits, message: str
) -> None:
    # A listener whose accept queue is full: the kernel drops further SYNs, so connect hangs.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        fillers.append(s)
    await asyncio.sleep(0.2)
    p = HTTPProvider("anthropic", kind="anthropic", base_url=f"http://127.0.0.1:{port}",
                     keys=[KEY], limits=limits)  # fmt: skip
    try:
        with pytest.raises(UpstreamTimeout, match=message):
            await p.send(_request(), KEY)
    finally:
        await p.close()
        for s in fillers:
            s.close()
        listener.close()
