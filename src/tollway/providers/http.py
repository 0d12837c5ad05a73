"""HTTP upstreams over a pool of kept-alive connections each; the provider modules build on this.

Every exchange is bounded: in time by four deadlines (``UpstreamLimits``: connect, first
byte, idle between bytes, total), in size by ``max_response_bytes`` decoded (gzip and
deflate are decoded here, piece by piece, see ``decode.py``). A broken limit raises
``UpstreamTimeout`` (504) or ``UpstreamError`` (502), before the response starts or from
``chunks()`` in the middle of a stream, so the relay can end it with the dialect's error.

The idle and total deadlines share one timer per response, re-armed only when it fires
(a read just records the loop time): when it finds a deadline passed it closes the
connection, and the pending read fails with the reason. Idle time counts only while the
gateway waits for the upstream, so a client that reads slowly is not blamed on it.

The wire is ``h1.py``: HTTP/1.1 parsed by httptools, which costs a stream about 40% less
CPU than aiohttp's client did (docs/benchmarks.md, "fourth pass: the upstream client").
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from tollway.errors import UpstreamError, UpstreamTimeout
from tollway.providers import h1
from tollway.providers.base import (
    ANTHROPIC,
    OPENAI_CHAT,
    OPENAI_RESPONSES,
    KeyChoice,
    UpstreamResponse,
)
from tollway.providers.base import UpstreamRequest as UpstreamRequest
from tollway.providers.decode import BoundedDecoder


@dataclass(frozen=True, slots=True)
class UpstreamLimits:
    """Per-provider deadlines (seconds) and the largest response accepted (decoded bytes)."""

    connect_s: float = 10.0
    first_byte_s: float = 600.0  # until the response head: a non-streamed answer's whole time
    idle_s: float = 600.0  # between two chunks of the body
    total_s: float = 3600.0  # the whole exchange, head and body
    max_response_bytes: int = 32 * 1024 * 1024


# Response headers that describe the hop, not the message.
_DROP_RESPONSE = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"content-length",
     b"content-encoding", b"server", b"date"}
)  # fmt: skip


def _kind(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, h1.Broken) else exc.__class__.__name__


class HTTPResponse:
    """An upstream's answer on one pooled connection, with its deadlines and decoder."""

    def __init__(
        self, conn: h1.Connection, status: int,
        raw_headers: list[tuple[bytes, bytes]], name: str, limits: UpstreamLimits,
        started: float,
    ) -> None:  # fmt: skip
        self._conn = conn
        self._name = name
        self._limits = limits
        self.status = status
        self.headers = []
        encoding = b""
        for k, v in raw_headers:
            k = k.lower()
            if k == b"content-encoding":
                encoding = v
            if k not in _DROP_RESPONSE:
                self.headers.append((k, v))
        self._decoder = BoundedDecoder(
            encoding.decode("latin-1"), limit=limits.max_response_bytes, provider=name
        )
        self._loop = asyncio.get_running_loop()
        self._deadline = started + limits.total_s
        self._last = self._loop.time()
        self._reading = True  # until the body is first read, the head was just read
        self._expired: str | None = None
        self._closed = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer = self._loop.call_at(self._next_check(), self._check)

    def _next_check(self) -> float:
        since = self._last if self._reading else self._loop.time()
        return min(since + self._limits.idle_s, self._deadline)

    def _check(self) -> None:
        now = self._loop.time()
        if now >= self._deadline:
            self._expire(f"did not finish within {self._limits.total_s:g} s (total_timeout_s)")
        elif self._reading and now - self._last >= self._limits.idle_s:
            self._expire(f"sent nothing for {self._limits.idle_s:g} s (timeout_s)")
        else:
            self._timer = self._loop.call_at(self._next_check(), self._check)

    def _expire(self, why: str) -> None:
        self._timer = None
        self._expired = f"provider {self._name} {why}"
        self._conn.abort()

    def _failure(self, exc: BaseException | None) -> UpstreamError:
        if self._expired is not None:
            return UpstreamTimeout(self._expired)
        return UpstreamError(f"the upstream stream broke: {_kind(exc) if exc else 'end of body'}")

    async def chunks(self) -> AsyncIterator[bytes]:
        conn = self._conn
        try:
            while True:
                if self._closed:  # its connection may serve another request by now
                    raise self._failure(None)
                # Idle is the upstream's silence while we wait for it, not a slow client's.
                self._last = self._loop.time()
                self._reading = True
                data = await conn.read()
                self._reading = False
                if not data:
                    break
                pieces = 0
                for piece in self._decoder.feed(data):
                    if pieces:
                        await asyncio.sleep(0)  # a chunk that inflates a lot: let others run
                    pieces += 1
                    yield piece
        except (h1.Broken, OSError) as exc:
            raise self._failure(exc) from exc
        if self._expired is not None:
            raise self._failure(None)
        self._decoder.finish()

    async def read(self) -> bytes:
        return b"".join([piece async for piece in self.chunks()])

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._conn.release()  # kept only if its answer was read whole


@dataclass(frozen=True, slots=True)
class Outgoing:
    """What goes on the wire for one attempt: a subclass's ``prepare`` builds it."""

    url: str  # sent as written: already encoded
    headers: list[tuple[str, str]]
    body: bytes


class HTTPProvider:
    """An upstream reached over HTTP. Subclasses (one module per provider type) override
    ``prepare`` (URL, auth, body) and ``wrap`` (their answer as the dialect's bytes)."""

    def __init__(
        self,
        name: str,
        *,
        kind: str,
        base_url: str,
        keys: Sequence[KeyChoice],
        limits: UpstreamLimits | None = None,
        dialects: frozenset[str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.keys = list(keys)
        self.base_url = base_url.rstrip("/")
        if dialects is not None:
            self.dialects = dialects
        elif kind == "anthropic":
            self.dialects = frozenset({ANTHROPIC})
        else:
            self.dialects = frozenset({OPENAI_CHAT, OPENAI_RESPONSES})
        self.limits = limits or UpstreamLimits()
        self._pool = h1.Pool(ssl_context=ssl_context)

    def url_for(self, request: UpstreamRequest) -> str:
        path = request.path
        if request.dialect != ANTHROPIC and path.startswith("/v1/"):
            # OpenAI-style base URLs end in /v1 (https://api.openai.com/v1).
            path = path[3:]
        url = self.base_url + path
        if request.query:
            url += "?" + request.query.decode("latin-1")
        return url

    def _auth_headers(self, key: KeyChoice) -> list[tuple[str, str]]:
        if self.kind == "anthropic":
            return [("x-api-key", key.secret)]
        return [("authorization", f"Bearer {key.secret}")]

    async def prepare(self, request: UpstreamRequest, key: KeyChoice) -> Outgoing:
        return Outgoing(self.url_for(request), request.headers + self._auth_headers(key),
                        request.body)  # fmt: skip

    def wrap(self, resp: HTTPResponse, request: UpstreamRequest) -> UpstreamResponse:
        return resp

    async def send(self, request: UpstreamRequest, key: KeyChoice) -> UpstreamResponse:
        out = await self.prepare(request, key)
        limits = self.limits
        try:
            origin, target = h1.split_url(out.url)
            head = h1.request_head(request.method, target, origin, out.headers, len(out.body))
        except ValueError as exc:
            raise UpstreamError(f"cannot send to provider {self.name}: {exc}") from exc
        started = asyncio.get_running_loop().time()
        conn: h1.Connection | None = None
        try:
            async with asyncio.timeout(min(limits.first_byte_s, limits.total_s)):
                conn = await self._connect(origin)
                await conn.send(head, out.body, method=request.method)
                status, raw_headers = await conn.head()
        except _ConnectTimeout as exc:
            raise UpstreamTimeout(
                f"cannot connect to provider {self.name} at {self.base_url} within "
                f"{limits.connect_s:g} s (connect_timeout_s)"
            ) from exc
        except TimeoutError as exc:  # connect_s's own expiry is _ConnectTimeout
            if conn is not None:
                conn.abort()
            raise UpstreamTimeout(
                f"provider {self.name} did not answer within "
                f"{min(limits.first_byte_s, limits.total_s):g} s (first_byte_timeout_s)"
            ) from exc
        except (h1.Broken, OSError) as exc:
            if conn is not None:
                conn.abort()
            raise UpstreamError(
                f"cannot reach provider {self.name} at {self.base_url}: {_kind(exc)}"
            ) from exc
        except BaseException:  # cancelled (the client left): the connection is not reusable
            if conn is not None:
                conn.abort()
            raise
        try:
            resp = HTTPResponse(conn, status, raw_headers, self.name, limits, started)
        except UpstreamError:
            conn.abort()
            raise
        try:
            return self.wrap(resp, request)
        except UpstreamError:
            conn.abort()  # first: closing the response must not pool the connection
            resp.close()
            raise

    async def _connect(self, origin: h1.Origin) -> h1.Connection:
        try:
            return await self._pool.connect(origin, connect_s=self.limits.connect_s)
        except TimeoutError as exc:
            # Its own error: the first-byte deadline outside is a TimeoutError too.
            raise _ConnectTimeout from exc

    async def close(self) -> None:
        self._pool.close()


class _ConnectTimeout(Exception):
    pass
