"""Admin API for the MCP gateway: upstream servers with their health, and the call log.

Credentials are never returned: header names are shown, values are not; ``bearer`` and
``oauth.client_secret`` are shown as ``env.NAME`` when written that way, else redacted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, Body, Query, Response

from tollway.errors import NotFound
from tollway.mcp.upstream import Upstream
from tollway.storage.tool_calls import list_tool_calls

if TYPE_CHECKING:
    from tollway.services import Services


def _shown(value: str | None) -> str | None:
    if value is None:
        return None
    return value if value.startswith("env.") else "<redacted>"


def _url(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))  # no userinfo, no query


def describe(up: Upstream, source: str) -> dict[str, Any]:
    cfg, health = up.cfg, up.health()
    auth = "bearer" if cfg.bearer else "oauth_client_credentials" if cfg.oauth else None
    return {
        "name": up.name,
        "source": source,
        "transport": cfg.transport,
        "url": _url(cfg.url),
        "command": cfg.command,
        "args": cfg.args if cfg.command else None,
        "headers": sorted(cfg.headers),
        "env": sorted(cfg.env),
        "auth": auth,
        "bearer": _shown(cfg.bearer),
        "oauth": None if cfg.oauth is None else {
            "token_url": _url(cfg.oauth.token_url), "client_id": cfg.oauth.client_id,
            "client_secret": _shown(cfg.oauth.client_secret), "scope": cfg.oauth.scope},
        "price_per_call": str(cfg.price_per_call),
        "state": health.state,
        "since": datetime.fromtimestamp(health.since, UTC).isoformat(),
        "last_error": health.last_error,
        "failures": health.failures,
        "tools": sorted(t.name for t in up.tools),
    }  # fmt: skip


def mcp_routes(services: Services) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["mcp"])
    gw = services.mcp.gateway

    def one(name: str) -> dict[str, Any]:
        up = gw.upstreams.get(name)
        if up is None:
            raise NotFound(f"no MCP server {name!r}")
        return describe(up, gw.sources.get(name, "api"))

    @router.get("/mcp-servers")
    async def list_servers() -> list[dict[str, Any]]:
        return [one(name) for name in sorted(gw.upstreams)]

    @router.get("/mcp-servers/{name}")
    async def get_server(name: str) -> dict[str, Any]:
        return one(name)

    @router.put("/mcp-servers/{name}")
    async def put_server(
        name: str, response: Response, body: Annotated[dict[str, Any], Body()]
    ) -> dict[str, Any]:
        """Add or replace an upstream (stored); it connects in the background."""
        if await services.mcp.put_server(name, body):
            response.status_code = 201
        return one(name)

    @router.delete("/mcp-servers/{name}", status_code=204)
    async def delete_server(name: str) -> None:
        await services.mcp.delete_server(name)

    @router.get("/mcp-access")
    async def get_access() -> dict[str, Any]:
        """The config's groups and rules (read-only) and the API's (stored)."""
        cfg = gw.config
        stored = await services.mcp.stored_access()
        return {"config": {"groups": cfg.groups, "access": cfg.access.model_dump()},
                "stored": stored.model_dump()}  # fmt: skip

    @router.put("/mcp-access")
    async def put_access(body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        """Replace the stored groups and rules: ``{"groups": {...}, "access": {"keys":
        {"alice": {"allow": [...], "deny": [...], "groups": [...]}}, "teams": ..., ...}}``."""
        stored = await services.mcp.put_access(body)
        return stored.model_dump()

    @router.get("/mcp-tool-calls")
    async def tool_calls(
        key: str | None = None, session: str | None = None, server: str | None = None,
        limit: int = Query(100, ge=1, le=1000),
    ) -> list[dict[str, Any]]:  # fmt: skip
        return await list_tool_calls(services.store, key=key, session=session, server=server,
                                     limit=limit)  # fmt: skip

    return router
