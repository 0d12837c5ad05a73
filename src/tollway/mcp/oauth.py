"""OAuth 2.0 client credentials for an upstream MCP server, held by the gateway.

The token is fetched from ``token_url`` on first use, reused until shortly before it
expires, and fetched again once when the upstream answers 401. Neither the secret nor
the token ever leaves the gateway except towards ``token_url`` and the upstream.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator

import anyio
import httpx2

from tollway.errors import UpstreamError

_EARLY_S = 30  # refresh this long before the token's stated expiry


class ClientCredentialsAuth(httpx2.Auth):
    """``httpx2.AsyncClient(auth=ClientCredentialsAuth(url, id, secret, scope))``."""

    def __init__(self, token_url: str, client_id: str, client_secret: str, scope: str | None):
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope
        self.token: str | None = None
        self._expires = 0.0
        self._lock = anyio.Lock()

    async def _fetch(self) -> str:
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        async with httpx2.AsyncClient(timeout=30) as client:
            resp = await client.post(
                self.token_url, data=form, auth=(self.client_id, self.client_secret)
            )
        if resp.status_code != 200:
            raise UpstreamError(f"OAuth token endpoint answered {resp.status_code}")
        try:
            doc = resp.json()
            token = str(doc["access_token"])
        except (ValueError, KeyError, TypeError):
            raise UpstreamError("OAuth token endpoint sent no access_token") from None
        expires_in = doc.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else 3600.0
        self.token, self._expires = token, time.monotonic() + max(lifetime - _EARLY_S, 1.0)
        return token

    async def _current(self, stale: str | None = None) -> str:
        async with self._lock:
            if self.token is None or self.token == stale or time.monotonic() >= self._expires:
                return await self._fetch()
            return self.token

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        token = await self._current()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            token = await self._current(stale=token)
            request.headers["Authorization"] = f"Bearer {token}"
            yield request
