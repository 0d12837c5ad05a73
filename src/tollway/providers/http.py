"""HTTP upstreams (Anthropic, OpenAI and OpenAI-compatible) over one aiohttp session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import aiohttp

from tollway.errors import UpstreamError, UpstreamTimeout
from tollway.providers.base import ANTHROPIC, OPENAI_CHAT, OPENAI_RESPONSES, KeyChoice
from tollway.providers.base import UpstreamRequest as UpstreamRequest

# Response headers that describe the hop, not the message.
_DROP_RESPONSE = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"content-length",
     b"content-encoding", b"server", b"date"}
)  # fmt: skip


class _AiohttpResponse:
    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp
        self.status = resp.status
        self.headers = [
            (k.lower(), v) for k, v in resp.raw_headers if k.lower() not in _DROP_RESPONSE
        ]

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._resp.content.iter_any():
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise UpstreamError(f"the upstream stream broke: {exc.__class__.__name__}") from exc

    async def read(self) -> bytes:
        try:
            return await self._resp.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise UpstreamError(f"reading the upstream response failed: {exc}") from exc

    def close(self) -> None:
        self._resp.release()


class HTTPProvider:
    """An upstream reached over HTTP; ``auth`` says how its key is sent."""

    def __init__(
        self,
        name: str,
        *,
        kind: str,
        base_url: str,
        keys: Sequence[KeyChoice],
        timeout_s: float,
        session_factory: type[aiohttp.ClientSession] = aiohttp.ClientSession,
    ) -> None:
        self.name = name
        self.kind = kind
        self.keys = list(keys)
        self.base_url = base_url.rstrip("/")
        if kind == "anthropic":
            self.dialects = frozenset({ANTHROPIC})
        else:
            self.dialects = frozenset({OPENAI_CHAT, OPENAI_RESPONSES})
        self._timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=timeout_s)
        self._session_factory = session_factory
        self._session: aiohttp.ClientSession | None = None

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, enable_cleanup_closed=True)
            self._session = self._session_factory(
                connector=connector, timeout=self._timeout, auto_decompress=True,
                skip_auto_headers=("User-Agent", "Content-Type"),
            )  # fmt: skip
        return self._session

    def url_for(self, request: UpstreamRequest) -> str:
        path = request.path
        if self.kind != "anthropic" and path.startswith("/v1/"):
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

    async def send(self, request: UpstreamRequest, key: KeyChoice) -> _AiohttpResponse:
        headers = request.headers + self._auth_headers(key)
        try:
            resp = await self._session_now().request(
                request.method, self.url_for(request), data=request.body, headers=headers,
                allow_redirects=False, compress=None,
            )  # fmt: skip
        except TimeoutError as exc:
            raise UpstreamTimeout(f"provider {self.name} did not answer in time") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(
                f"cannot reach provider {self.name} at {self.base_url}: {exc.__class__.__name__}"
            ) from exc
        return _AiohttpResponse(resp)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
