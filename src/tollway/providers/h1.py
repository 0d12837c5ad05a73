"""The upstream HTTP/1.1 client: kept-alive connections per origin, parsed by httptools.

One ``Pool`` per provider holds its idle connections, newest first, each closed after
``keepalive_s`` unused or as soon as the server closes it. A request is written in one
piece (head and body), and its answer is read by ``httptools`` (llhttp, the parser uvicorn
serves with) straight from the socket's callback: no stream objects, no per-chunk tasks.
The answer's body queues in the connection, bounded: past ``HIGH_WATER`` bytes not yet
taken, the socket stops being read until the relay catches up.

    pool = Pool(keepalive_s=15.0)
    conn = await pool.connect(origin, connect_s=10.0)       # OSError, TimeoutError
    await conn.send(head, body)                             # the head from request_head()
    status, headers = await conn.head()                     # Broken, OSError
    while data := await conn.read(): ...                    # b"" at the end, or Broken
    conn.release()                                          # back to the pool, or closed

It keeps only what an upstream exchange needs: no redirects, no cookies, no proxies, no
``Expect: 100-continue`` (1xx answers are skipped), no HTTP/2. The caller maps the errors,
bounds the time (``HTTPProvider``) and decodes the content (``decode.py``).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast
from urllib.parse import quote

import httptools

HIGH_WATER = 1 << 20  # bytes of an answer queued before the socket is paused
_HOP = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive"})
# What a request target may hold as it is (RFC 9112 origin-form, percent-escapes kept);
# anything else (spaces, controls, CR/LF, non-ASCII) is percent-encoded.
_TARGET_SAFE = "/?:@!$&'()*+,;=%~-._"


class Broken(Exception):
    """The exchange failed at the HTTP level; the text says how, for the error message."""


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str  # without brackets for IPv6
    port: int
    netloc: str  # as written in the URL: the Host header

    @property
    def tls(self) -> bool:
        return self.scheme == "https"


def split_url(url: str) -> tuple[Origin, str]:
    """``https://host:port/path?q`` as its origin and request target, left as encoded."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("http", "https"):
        raise ValueError(f"not an http(s) URL: {url!r}")
    slash = rest.find("/")
    query = rest.find("?")
    cut = min(i for i in (slash, query, len(rest)) if i >= 0)
    netloc, target = rest[:cut], quote(rest[cut:], safe=_TARGET_SAFE)
    if not target.startswith("/"):
        target = "/" + target
    if netloc.startswith("["):  # [::1]:8080
        host, _, tail = netloc[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else ""
    else:
        host, _, port_text = netloc.rpartition(":") if ":" in netloc else (netloc, "", "")
    if not host:
        raise ValueError(f"no host in URL: {url!r}")
    if port_text and not port_text.isdigit():
        raise ValueError(f"the port in URL {url!r} is not a number")
    port = int(port_text) if port_text else (443 if scheme == "https" else 80)
    return Origin(scheme, host, port, netloc), target


def request_head(
    method: str, target: str, origin: Origin, headers: Sequence[tuple[str, str]], length: int
) -> bytes:
    """The request line and headers; the framing headers are always this module's own."""
    lines = [f"{method} {target} HTTP/1.1\r\nhost: {origin.netloc}\r\n"]
    for name, value in headers:
        if name.lower() in _HOP:
            continue
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name or ":" in name:
            raise ValueError(f"header {name!r} holds a line break or a colon in its name")
        lines.append(f"{name}: {value}\r\n")
    if length or method not in ("GET", "HEAD"):
        lines.append(f"content-length: {length}\r\n")
    lines.append("\r\n")
    text = "".join(lines)
    try:
        return text.encode("latin-1")  # headers arrive decoded as latin-1: the same bytes
    except UnicodeEncodeError:
        return text.encode("utf-8")


class Connection(asyncio.Protocol):
    """One TCP (or TLS) connection; one exchange on it at a time."""

    def __init__(self, pool: Pool, origin: Origin) -> None:
        self._pool = pool
        self.origin = origin
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._closed = False
        self._busy = False  # an exchange is under way (not idle in the pool)
        self._headers: list[tuple[bytes, bytes]] = []
        self._head: asyncio.Future[None] | None = None
        self._status = 0
        self._informational = False
        self._framed = False  # the answer has a length or is chunked (not ended by close)
        self._body: deque[bytes] = deque()
        self._queued = 0
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._done = False
        self._error: BaseException | None = None
        self._keep_alive = False
        self._head_only = False
        self._surplus = False  # a second answer began: nobody asked for it
        self.idle_timer: asyncio.TimerHandle | None = None

    # -- the exchange, from the caller's side

    async def send(self, head: bytes, body: bytes, *, method: str = "POST") -> None:
        transport = self._transport
        if transport is None or self._closed:
            raise Broken("the connection closed before the request was sent")
        self._busy = True
        self._head = self._loop.create_future()
        self._head_only = method == "HEAD"
        transport.writelines((head, body))
        if self._drain is not None:
            await self._drain

    async def head(self) -> tuple[int, list[tuple[bytes, bytes]]]:
        assert self._head is not None, "send() first"
        await self._head
        return self._status, self._headers

    async def read(self) -> bytes:
        """The body bytes that have arrived (waiting for some), b"" once it ended whole."""
        while not self._body:
            if self._done:
                return b""
            if self._error is not None:
                raise self._error
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        body = self._body
        data = body.popleft() if len(body) == 1 else b"".join(body)
        body.clear()
        self._queued = 0
        if self._paused and self._transport is not None and not self._closed:
            self._paused = False
            self._transport.resume_reading()
        return data

    @property
    def reusable(self) -> bool:
        return self._done and self._keep_alive and not self._body and not self._closed

    def release(self) -> None:
        """Back to its pool if its answer was read whole and it may be kept, else closed."""
        self._pool.release(self)

    def abort(self) -> None:
        """Close now; a pending read or head fails with why it was closed."""
        if self._transport is not None and not self._closed:
            self._transport.abort()
        self._lost(None)

    def reset(self) -> None:
        """Ready for the next exchange (the connection goes back to the pool)."""
        self._busy = False
        self._headers = []
        self._head = None
        self._status = 0
        self._done = False
        self._framed = False
        self._keep_alive = False

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._transport is not None:
            return
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if not self._busy or self._done:
            self.abort()  # bytes nobody asked for: the connection cannot be trusted again
            return
        try:
            self._parser.feed_data(data)
            if self._surplus:
                self.abort()  # the answer before it stays readable; the connection goes
        except httptools.HttpParserUpgrade:
            self._fail(Broken("the upstream switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(Broken(f"the upstream sent malformed HTTP ({exc})"))

    def eof_received(self) -> bool:
        if self._busy and self._head is not None and self._head.done() and not self._framed:
            self.on_message_complete()  # a body that ends when the connection does
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost(exc)

    def pause_writing(self) -> None:
        if self._drain is None:
            self._drain = self._loop.create_future()

    def resume_writing(self) -> None:
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    # -- httptools callbacks

    def on_message_begin(self) -> None:
        if self._done:
            self._surplus = True
        else:
            self._headers = []

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._surplus:
            self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self._surplus:
            return
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            self._informational = True
            return
        self._status = status
        self._keep_alive = self._parser.should_keep_alive()
        self._framed = status in (204, 304) or any(
            k.lower() in (b"content-length", b"transfer-encoding") for k, _ in self._headers
        )
        if self._head is not None and not self._head.done():
            self._head.set_result(None)
        if self._head_only:
            self._keep_alive = False
            self.on_message_complete()

    def on_body(self, body: bytes) -> None:
        if self._done or self._surplus:
            return
        self._body.append(body)
        self._queued += len(body)
        if self._queued > HIGH_WATER and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._surplus:
            return
        if self._informational:
            self._informational = False
            return
        self._done = True
        self._wake()

    # -- internals

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        if self._transport is not None and not self._closed:
            self._transport.abort()
        self._lost(None)

    def _lost(self, exc: BaseException | None) -> None:
        first = not self._closed
        self._closed = True
        if self._error is None:
            if exc is not None:
                self._error = exc
            elif self._head is not None and self._head.done():
                self._error = Broken("the connection closed before the body ended")
            else:
                self._error = Broken("the connection closed before the response head")
        if self._head is not None and not self._head.done():
            self._head.set_exception(self._error)
            self._head.exception()  # retrieved: nobody may be waiting for it
        self._wake()
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)
        if first:
            self._pool.forget(self)


class Pool:
    """Idle connections per origin, newest first; every open one, to close them all."""

    def __init__(self, *, keepalive_s: float = 15.0, max_idle: int = 100,
                 ssl_context: ssl.SSLContext | None = None) -> None:  # fmt: skip
        self.keepalive_s = keepalive_s
        self.max_idle = max_idle
        self._ssl = ssl_context
        self._idle: dict[Origin, list[Connection]] = {}
        self._open: set[Connection] = set()
        self._closed = False

    def _context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    async def connect(self, origin: Origin, *, connect_s: float) -> Connection:
        """An idle connection to ``origin`` if one is open, else a new one."""
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if conn.idle_timer is not None:
                conn.idle_timer.cancel()
                conn.idle_timer = None
            if not conn.reusable:
                conn.abort()
                continue
            conn.reset()
            return conn
        if self._closed:
            raise Broken("the gateway is shutting down")
        loop = asyncio.get_running_loop()
        conn = Connection(self, origin)
        context = self._context() if origin.tls else None
        async with asyncio.timeout(connect_s):
            transport, _ = await loop.create_connection(
                lambda: conn, origin.host, origin.port,
                ssl=context, server_hostname=origin.host if context else None,
            )  # fmt: skip
        conn.connection_made(transport)  # uvloop may call it only after returning
        self._open.add(conn)
        return conn

    def release(self, conn: Connection) -> None:
        """Back to the pool if its answer was read whole and it may be kept, else closed."""
        if conn.idle_timer is not None:
            return  # already back
        if self._closed or not conn.reusable:
            conn.abort()
            return
        idle = self._idle.setdefault(conn.origin, [])
        if len(idle) >= self.max_idle:
            idle.pop(0).abort()
        idle.append(conn)
        conn.idle_timer = asyncio.get_running_loop().call_later(self.keepalive_s, conn.abort)

    def forget(self, conn: Connection) -> None:
        self._open.discard(conn)
        idle = self._idle.get(conn.origin)
        if idle and conn in idle:
            idle.remove(conn)
        if conn.idle_timer is not None:
            conn.idle_timer.cancel()
            conn.idle_timer = None

    def close(self) -> None:
        self._closed = True
        for conn in list(self._open):
            conn.abort()
        self._idle.clear()
