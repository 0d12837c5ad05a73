"""The upstream HTTP/1.1 client against scripted loopback servers, on asyncio and uvloop.

Each server is a bare asyncio server that reads one request head and body at a time and
writes exactly the bytes a test gives it, so every framing an upstream may legally use
(length, chunked, ended by close, 1xx first, cut anywhere) is checked as it is on the wire.
"""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from tollway.errors import UpstreamError, UpstreamTimeout
from tollway.providers import h1
from tollway.providers.base import ANTHROPIC, KeyChoice, UpstreamRequest
from tollway.providers.http import HTTPProvider, UpstreamLimits

KEY = KeyChoice("main", "sk-ant-test")
LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


def run(loop: str, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        runner.run(asyncio.wait_for(main(), 20))


@dataclass
class Seen:
    head: bytes
    body: bytes


@dataclass
class Script:
    """What the server writes for each request, in pieces (a pause between them)."""

    answers: list[list[bytes]] = field(default_factory=list)
    close_after: set[int] = field(default_factory=set)  # close after the nth answer
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0


async def serve(script: Script, ssl_context: ssl.SSLContext | None = None) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        script.connections += 1
        try:
            while script.answers:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                script.seen.append(Seen(head, body))
                n = len(script.seen)
                for piece in script.answers.pop(0):
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(0.001)
                if n in script.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ssl_context)


def port(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


def request(body: bytes = b'{"x":1}', method: str = "POST") -> UpstreamRequest:
    return UpstreamRequest(
        dialect=ANTHROPIC, method=method, path="/v1/messages", query=b"",
        headers=[("anthropic-version", "2023-06-01"), ("x-note", "caf\xe9")],
        body=body, stream=True, model="claude-haiku-4-5",
    )  # fmt: skip


def ok(body: bytes, *extra: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" + b"".join(extra)
    return head + b"content-length: %d\r\n\r\n" % len(body) + body


async def exchange(p: HTTPProvider, req: UpstreamRequest | None = None) -> tuple[int, bytes]:
    resp = await p.send(req or request(), KEY)
    try:
        return resp.status, await resp.read()
    finally:
        resp.close()


def provider(server: asyncio.Server, **kw: Any) -> HTTPProvider:
    return HTTPProvider("anthropic", kind="anthropic", base_url=f"http://127.0.0.1:{port(server)}",
                        keys=[KEY], **kw)  # fmt: skip


async def with_server(
    script: Script, test: Callable[[HTTPProvider], Awaitable[None]], **kw: Any
) -> None:
    server = await serve(script)
    p = provider(server, **kw)
    try:
        await test(p)
    finally:
        await p.close()
        server.close()


@pytest.fixture(params=sorted(LOOPS))
def loop(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_the_request_goes_out_as_written_and_the_connection_is_kept(loop: str) -> None:
    script = Script(answers=[[ok(b"one")], [ok(b"two")]])

    async def test(p: HTTPProvider) -> None:
        assert await exchange(p) == (200, b"one")
        assert await exchange(p, request(b"")) == (200, b"two")
        assert script.connections == 1
        first = script.seen[0].head.decode("latin-1")
        assert first.startswith("POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1:")
        assert "\r\nx-api-key: sk-ant-test\r\n" in first
        assert "\r\nx-note: caf\xe9\r\n" in first  # latin-1 in, the same bytes out
        assert "\r\ncontent-length: 7\r\n" in first and script.seen[0].body == b'{"x":1}'
        assert "\r\ncontent-length: 0\r\n" in script.seen[1].head.decode("latin-1")

    run(loop, lambda: with_server(script, test))


def test_framing_headers_come_from_the_client_not_the_caller() -> None:
    origin, target = h1.split_url("http://example.test:8080/a/b%3Ac?x=1")
    assert (origin.host, origin.port, origin.netloc, target) == (
        "example.test", 8080, "example.test:8080", "/a/b%3Ac?x=1"
    )  # fmt: skip
    head = h1.request_head("POST", target, origin, [
        ("Host", "evil"), ("Content-Length", "1"), ("Transfer-Encoding", "chunked"),
        ("Connection", "close"), ("x-a", "b"),
    ], 3)  # fmt: skip
    assert head == (b"POST /a/b%3Ac?x=1 HTTP/1.1\r\nhost: example.test:8080\r\nx-a: b\r\n"
                    b"content-length: 3\r\n\r\n")  # fmt: skip
    assert h1.split_url("https://[::1]/v1")[0] == h1.Origin("https", "::1", 443, "[::1]")
    assert h1.split_url("https://api.anthropic.com?q")[1] == "/?q"
    # a model name from a client's path can hold anything: never a second request line
    assert h1.split_url("http://h/v1beta/models/x\r\nhost: evil y:gen?a=b c")[1] == (
        "/v1beta/models/x%0D%0Ahost:%20evil%20y:gen?a=b%20c"
    )
    assert h1.split_url("http://h/model/a%3Ab/invoke")[1] == "/model/a%3Ab/invoke"  # kept
    assert h1.split_url("http://h/caf\xe9#frag")[1] == "/caf%C3%A9%23frag"
    for bad in ("ftp://x/", "http:///nohost", "nohost", "http://h:80a/"):
        with pytest.raises(ValueError):
            h1.split_url(bad)
    for name, value in (("x-a", "b\r\nx-injected: 1"), ("x-a\n", "b"), ("x:a", "b")):
        with pytest.raises(ValueError, match="line break"):
            h1.request_head("GET", "/", origin, [(name, value)], 0)


def test_a_header_with_a_line_break_is_refused_before_anything_is_sent(loop: str) -> None:
    script = Script(answers=[[ok(b"never")]])

    async def test(p: HTTPProvider) -> None:
        bad = UpstreamRequest(
            dialect=ANTHROPIC, method="POST", path="/v1/messages", query=b"",
            headers=[("x-a", "b\r\nx-api-key: stolen")], body=b"{}", stream=False, model="m",
        )  # fmt: skip
        with pytest.raises(UpstreamError, match="cannot send to provider anthropic: header"):
            await p.send(bad, KEY)
        assert script.connections == 0

    run(loop, lambda: with_server(script, test))


def test_connection_close_and_a_server_that_hangs_up_get_a_new_connection(loop: str) -> None:
    script = Script(
        answers=[[ok(b"a", b"connection: close\r\n")], [ok(b"b")], [ok(b"c")]],
        close_after={1, 2},
    )

    async def test(p: HTTPProvider) -> None:
        assert await exchange(p) == (200, b"a")
        assert await exchange(p) == (200, b"b")
        await asyncio.sleep(0.05)  # the server's close after "b" reaches the idle connection
        assert await exchange(p) == (200, b"c")
        assert script.connections == 3

    run(loop, lambda: with_server(script, test))


def test_every_legal_framing_reads_whole(loop: str) -> None:
    chunked = (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
               b"3\r\nabc\r\n1;ext=1\r\nd\r\n0\r\nx-trailer: t\r\n\r\n")  # fmt: skip
    early = b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n"
    until_close = b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nto the end"
    script = Script(
        answers=[[chunked], [early, ok(b"after hints")], [b"HTTP/1.1 204 No Content\r\n\r\n"],
                 [until_close]],
    )  # fmt: skip

    async def test(p: HTTPProvider) -> None:
        assert await exchange(p) == (200, b"abcd")
        resp = await p.send(request(), KEY)
        assert resp.status == 200 and (b"link", b"</a>") not in resp.headers
        assert await resp.read() == b"after hints"
        resp.close()
        assert await exchange(p) == (204, b"")
        assert await exchange(p) == (200, b"to the end")
        assert script.connections == 1

    run(loop, lambda: with_server(script, test))


def test_a_head_request_ends_at_the_head(loop: str) -> None:
    script = Script(answers=[[b"HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n"], [ok(b"next")]])

    async def test(p: HTTPProvider) -> None:
        assert await exchange(p, request(b"", method="HEAD")) == (200, b"")
        assert script.seen[0].head.startswith(b"HEAD /v1/messages HTTP/1.1\r\n")
        assert b"content-length" not in script.seen[0].head
        assert await exchange(p) == (200, b"next")  # on a new connection: HEAD's is not kept
        assert script.connections == 2

    run(loop, lambda: with_server(script, test))


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        # before the head: the request could not be answered
        ([], "cannot reach provider anthropic at http://127.0.0.1:.*: the connection closed "
             "before the response head"),
        ([b"HTTP/1.1 200 OK\r\ncontent-"], "closed before the response head"),
        ([b"SMTP ready\r\n\r\n"], "the upstream sent malformed HTTP"),
        ([b"HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\nconnection: upgrade\r\n\r\n"],
         "the upstream switched protocols"),
        # after it: the stream broke
        ([b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort"],
         "the upstream stream broke: the connection closed before the body ended"),
        ([b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab"],
         "the upstream stream broke: the connection closed before the body ended"),
        ([b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n"],
         "the upstream stream broke: the upstream sent malformed HTTP"),
    ],
)  # fmt: skip
def test_a_missing_cut_or_garbled_answer_is_an_upstream_error_not_a_timeout(
    loop: str, answer: list[bytes], message: str
) -> None:
    script = Script(answers=[answer], close_after={1})

    async def test(p: HTTPProvider) -> None:
        with pytest.raises(UpstreamError, match=message) as info:
            await exchange(p)
        assert not isinstance(info.value, UpstreamTimeout)

    run(loop, lambda: with_server(script, test))


def test_a_refused_connection_names_the_provider(loop: str) -> None:
    async def main() -> None:
        server = await serve(Script())
        p = provider(server)
        server.close()
        await server.wait_closed()
        with pytest.raises(UpstreamError, match=r"cannot reach provider anthropic at "
                           r"http://127.0.0.1:\d+: ConnectionRefusedError"):  # fmt: skip
            await exchange(p)
        await p.close()

    run(loop, main)


def test_bytes_nobody_asked_for_drop_the_idle_connection(loop: str) -> None:
    script = Script(answers=[[ok(b"a") + b"HTTP/1.1 408 Request Timeout\r\n\r\n"], [ok(b"b")]])

    async def test(p: HTTPProvider) -> None:
        assert await exchange(p) == (200, b"a")
        assert await exchange(p) == (200, b"b")
        assert script.connections == 2

    run(loop, lambda: with_server(script, test))


def test_a_body_read_half_way_closes_its_connection(loop: str) -> None:
    big = b"x" * (3 << 20)
    script = Script(answers=[[ok(big)], [ok(b"next")]])

    async def test(p: HTTPProvider) -> None:
        resp = await p.send(request(), KEY)
        first = await anext(aiter(resp.chunks()))
        assert 0 < len(first) < len(big)
        resp.close()
        assert await exchange(p) == (200, b"next")
        assert script.connections == 2

    run(loop, lambda: with_server(script, test, limits=UpstreamLimits(max_response_bytes=8 << 20)))


def test_a_slow_reader_pauses_the_socket_instead_of_queueing_the_body(loop: str) -> None:
    big = b"y" * (12 << 20)
    script = Script(answers=[[ok(big)]])

    async def test(p: HTTPProvider) -> None:
        resp = await p.send(request(), KEY)
        await asyncio.sleep(0.3)  # the server writes all it can meanwhile
        conn = resp._conn  # noqa: SLF001 - the queue is what is bounded
        assert conn._paused and conn._queued <= h1.HIGH_WATER + (1 << 20)  # noqa: SLF001
        assert await resp.read() == big
        resp.close()

    run(loop, lambda: with_server(script, test, limits=UpstreamLimits(max_response_bytes=16 << 20)))


def test_a_cancelled_exchange_is_not_kept(loop: str) -> None:
    script = Script(answers=[[], [ok(b"b")]], close_after=set())

    async def test(p: HTTPProvider) -> None:
        task = asyncio.ensure_future(exchange(p))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await exchange(p) == (200, b"b")
        assert script.connections == 2

    run(loop, lambda: with_server(script, test))


def test_idle_connections_expire(loop: str) -> None:
    script = Script(answers=[[ok(b"a")], [ok(b"b")]])

    async def test(p: HTTPProvider) -> None:
        p._pool.keepalive_s = 0.05  # noqa: SLF001
        assert await exchange(p) == (200, b"a")
        await asyncio.sleep(0.2)
        assert await exchange(p) == (200, b"b")
        assert script.connections == 2

    run(loop, lambda: with_server(script, test))


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = tmp / "cert.pem", tmp / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))  # fmt: skip
    return cert_file, key_file


def test_https_is_verified_and_kept_alive(loop: str, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))
    script = Script(answers=[[ok(b"secure")], [ok(b"again")], [ok(b"never")]])

    async def main() -> None:
        server = await serve(script, server_ctx)
        base = f"https://127.0.0.1:{port(server)}"
        good = HTTPProvider("anthropic", kind="anthropic", base_url=base, keys=[KEY],
                            ssl_context=trusting)  # fmt: skip
        assert await exchange(good) == (200, b"secure")
        assert await exchange(good) == (200, b"again")
        assert script.connections == 1
        default = HTTPProvider("anthropic", kind="anthropic", base_url=base, keys=[KEY])
        with pytest.raises(UpstreamError, match="SSLCertVerificationError"):
            await exchange(default)
        await good.close()
        await default.close()
        server.close()

    run(loop, main)


@settings(max_examples=60)
@given(
    body=st.binary(min_size=0, max_size=3000),
    sizes=st.lists(st.integers(1, 700), min_size=1, max_size=8),
    cuts=st.lists(st.integers(1, 400), min_size=0, max_size=12),
    chunked=st.booleans(),
    loop_name=st.sampled_from(sorted(LOOPS)),
)
def test_any_framing_cut_anywhere_on_the_wire_reads_back_exactly(
    body: bytes, sizes: list[int], cuts: list[int], chunked: bool, loop_name: str
) -> None:
    """A property over what an upstream may legally send: the body in chunks of any size,
    the bytes in TCP pieces cut anywhere (head included), then a second answer on the same
    connection. The client reads both exactly and keeps the one connection."""
    if chunked:
        parts, at, i = [], 0, 0
        while at < len(body):
            n = sizes[i % len(sizes)]
            parts.append(b"%x\r\n" % len(body[at : at + n]) + body[at : at + n] + b"\r\n")
            at, i = at + n, i + 1
        wire = (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + b"".join(parts)
                + b"0\r\n\r\n")  # fmt: skip
    else:
        wire = ok(body)
    pieces, at = [], 0
    for n in cuts:
        if at >= len(wire):
            break
        pieces.append(wire[at : at + n])
        at += n
    pieces.append(wire[at:])
    script = Script(answers=[[p for p in pieces if p], [ok(b"second")]])

    async def test(p: HTTPProvider) -> None:
        assert await exchange(p) == (200, body)
        assert await exchange(p) == (200, b"second")
        assert script.connections == 1

    run(loop_name, lambda: with_server(script, test))


def test_a_response_closed_twice_or_read_after_close_cannot_share_its_connection(
    loop: str,
) -> None:
    script = Script(answers=[[ok(b"a")], [ok(b"b")], [ok(b"c")]])

    async def test(p: HTTPProvider) -> None:
        resp = await p.send(request(), KEY)
        chunks = resp.chunks()
        assert await anext(chunks) == b"a"
        resp.close()
        resp.close()  # one connection in the pool, not two
        assert len(p._pool._idle[next(iter(p._pool._idle))]) == 1  # noqa: SLF001
        other = await p.send(request(), KEY)
        with pytest.raises(UpstreamError, match="stream broke: end of body"):
            await anext(chunks)  # the closed response does not read the next one's bytes
        assert await other.read() == b"b"
        other.close()
        assert await exchange(p) == (200, b"c")
        assert script.connections == 1

    run(loop, lambda: with_server(script, test))


def test_a_body_larger_than_the_socket_buffers_goes_out_whole(
    loop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = bytes(range(256)) * (20 << 12)  # 20 MiB: the transport pauses the writer
    script = Script(answers=[[ok(b"got it")], [ok(b"next")]])
    pauses: list[int] = []
    pause = h1.Connection.pause_writing

    def counted(self: h1.Connection) -> None:
        pauses.append(1)
        pause(self)

    monkeypatch.setattr(h1.Connection, "pause_writing", counted)

    async def test(p: HTTPProvider) -> None:
        assert await exchange(p, request(big)) == (200, b"got it")
        assert pauses  # the send waited for the socket to drain
        assert script.seen[0].body == big
        assert await exchange(p) == (200, b"next")
        assert script.connections == 1

    run(loop, lambda: with_server(script, test))
