"""HTTP upstreams over one aiohttp session each; the provider modules build on this.

Every exchange is bounded: in time by four deadlines (``UpstreamLimits``: connect, first
byte, idle between bytes, total), in size by ``max_response_bytes`` decoded (gzip and
deflate are decoded here, piece by piece, see ``decode.py``). A broken limit raises
``UpstreamTimeout`` (504) or ``UpstreamError`` (502), before the response starts or from
``chunks()`` in the middle of a stream, so the relay can end it with the dialect's error.

The idle and total deadlines share one timer per response, re-armed only when it fires
(a read just records the loop time): when it finds a deadline passed it closes the
connection, and the pending read fails with the reason. Idle time counts only while the
gateway waits for the upstream, so a client that reads slowly is not blamed on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import aiohttp
from yarl import URL

from tollway.errors import UpstreamError, UpstreamTimeout
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


class AiohttpResponse:
    def __init__(
        self, resp: aiohttp.ClientResponse, name: str, limits: UpstreamLimits, started: float
    ) -> None:
        self._resp = resp
        self._name = name
        self._limits = limits
        self.status = resp.status
        self.headers = [
            (k.lower(), v) for k, v in resp.raw_headers if k.lower() not in _DROP_RESPONSE
        ]
        self._decoder = BoundedDecoder(
            resp.headers.get("content-encoding", ""),
            limit=limits.max_response_bytes,
            provider=name,
        )
        self._loop = asyncio.get_running_loop()
        self._deadline = started + limits.total_s
        self._last = self._loop.time()
        self._reading = True  # until the body is first read, the head was just read
        self._expired: str | None = None
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
        self._resp.close()

    def _failure(self, exc: BaseException | None) -> UpstreamError:
        if self._expired is not None:
            return UpstreamTimeout(self._expired)
        kind = exc.__class__.__name__ if exc is not None else "end of body"
        return UpstreamError(f"the upstream stream broke: {kind}")

    async def chunks(self) -> AsyncIterator[bytes]:
        content = self._resp.content
        try:
            while True:
                # Idle is the upstream's silence while we wait for it, not a slow client's.
                self._last = self._loop.time()
                self._reading = True
                data = await content.readany()
                self._reading = False
                if not data:
                    break
                pieces = 0
                for piece in self._decoder.feed(data):
                    if pieces:
                        await asyncio.sleep(0)  # a chunk that inflates a lot: let others run
                    pieces += 1
                    yield piece
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._failure(exc) from exc
        if self._expired is not None:
            raise self._failure(None)
        self._decoder.finish()

    async def read(self) -> bytes:
        return b"".join([piece async for piece in self.chunks()])

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._resp.release()


@dataclass(frozen=True, slots=True)
class Outgoing:
    """What goes on the wire for one attempt: a subclass's ``prepare`` builds it."""

    url: str | URL
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
        session_factory: type[aiohttp.ClientSession] = aiohttp.ClientSession,
        dialects: frozenset[str] | None = None,
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
        # Only the connect phase is left to aiohttp; the other deadlines are ours (above).
        self._timeout = aiohttp.ClientTimeout(total=None, connect=self.limits.connect_s)
        self._session_factory = session_factory
        self._session: aiohttp.ClientSession | None = None

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, enable_cleanup_closed=True)
            self._session = self._session_factory(
                connector=connector, timeout=self._timeout, auto_decompress=False,
                skip_auto_headers=("User-Agent", "Content-Type"),
            )  # fmt: skip
        return self._session

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

    def wrap(self, resp: AiohttpResponse, request: UpstreamRequest) -> UpstreamResponse:
        return resp

    async def send(self, request: UpstreamRequest, key: KeyChoice) -> UpstreamResponse:
        out = await self.prepare(request, key)
        limits = self.limits
        started = asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(min(limits.first_byte_s, limits.total_s)):
                resp = await self._session_now().request(
                    request.method, out.url, data=out.body,
                    headers=out.headers, allow_redirects=False, compress=None,
                )  # fmt: skip
        except aiohttp.ConnectionTimeoutError as exc:
            raise UpstreamTimeout(
                f"cannot connect to provider {self.name} at {self.base_url} within "
                f"{limits.connect_s:g} s (connect_timeout_s)"
            ) from exc
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"provider {self.name} did not answer within "
                f"{min(limits.first_byte_s, limits.total_s):g} s (first_byte_timeout_s)"
            ) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(
                f"cannot reach provider {self.name} at {self.base_url}: {exc.__class__.__name__}"
            ) from exc
        try:
            return self.wrap(AiohttpResponse(resp, self.name, limits, started), request)
        except UpstreamError:
            resp.close()
            raise

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
